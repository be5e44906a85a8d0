//! Confinement of the children that run C under test.
//!
//! `review` runs a tree's own functions, and reviewers point it at trees
//! they did not write. So every child of [`crate::isolate`] confines itself
//! before the first call into C, for good: no new privileges, rlimits, and
//! a seccomp filter that allows only the system calls the harness itself
//! makes in a child ([`ALLOWED`], found with `strace -f` on `check`,
//! `check --exhaustive` and `review`). Any other call is stopped before it
//! runs: the filter answers `SECCOMP_RET_TRAP`, the kernel sends SIGSYS,
//! and our handler writes the call's number, arguments and (for calls that
//! take one) path into the child's shared slot ([`Trap`]), then ends the
//! child. The parent reads the slot and reports the call as a finding.
//!
//! The filter is compiled once, in the parent ([`prepare`]); a child only
//! copies it, writes its own pid into the one rule that names it, and
//! installs it: one `seccomp()` per child, nothing per vector.

use std::collections::BTreeMap;
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, Ordering};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The largest single mapping a child may ask for (`mmap`, `mremap`): the
/// harness's largest allocation is a few MiB; a request beyond this is
/// stopped and named with its size, rather than failing inside malloc.
pub const MAX_MAPPING: u64 = 1 << 30;

/// Address space a child may add to what it inherits from the checker
/// (which fork copies: the checker's heap, its libraries, the loaded C).
pub const ADDRESS_SPACE_HEADROOM: u64 = 4 << 30;

/// CPU seconds a child may use. A hang in one vector is caught sooner by
/// the stall limit ([`crate::isolate::STALL_LIMIT`]); this is the
/// backstop for a child whose progress word moves but never finishes, and
/// must stay above the longest legitimate shard (`--random 100000000` of
/// the slowest operation on one core).
pub const CPU_SECONDS: u64 = 3600;

/// The system calls a confined child may make, and why the harness needs
/// each (ARCHITECTURE.md lists the same).
pub const ALLOWED: &[(&str, &str)] = &[
    (
        "write",
        "the result back to the checker through the pipe; what the C prints goes to /dev/null",
    ),
    ("exit_group", "the child's end (_exit)"),
    ("brk", "malloc growing the heap (vectors, results)"),
    (
        "mmap",
        "malloc's large allocations; only up to MAX_MAPPING bytes at once",
    ),
    ("munmap", "free() of a large allocation"),
    (
        "mprotect",
        "malloc in a thread's own arena (a child forked from a thread other than main: \
         the test harness, series) grows its heap by making reserved pages accessible",
    ),
    (
        "madvise",
        "free() in such an arena gives pages back (MADV_DONTNEED) when its heap shrinks",
    ),
    (
        "mremap",
        "realloc() of a large allocation (a growing result list); only up to MAX_MAPPING",
    ),
    (
        "rt_sigprocmask",
        "abort() blocks signals before raising SIGABRT: C that aborts is reported as SIGABRT",
    ),
    ("getpid", "abort()'s raise() names its own process"),
    ("gettid", "abort()'s raise() names its own thread"),
    ("tgkill", "abort()'s raise(); only to the child itself"),
    (
        "futex",
        "a lock another thread of the checker held when it forked reads as contended: its wake",
    ),
    (
        "getrandom",
        "std's HashMap seeds its hasher on first use in a thread",
    ),
];

/// Stands for the child's pid in the compiled filter; no pid is this large
/// (pid_max is at most 2^22), so no other constant of the filter is.
const PID_PLACEHOLDER: u32 = 0x7fff_fffe;

/// Bytes of a path argument kept in a [`Trap`].
pub const PATH_BYTES: usize = 240;

/// What the SIGSYS handler records about the call it stopped. Lives in
/// the child's slot of the shared mapping, read by the parent once the
/// child is gone.
#[repr(C)]
pub struct Trap {
    /// The call's number plus one; 0 while nothing was stopped.
    nr_plus_one: u64,
    /// Its six arguments.
    args: [u64; 6],
    /// Bytes of its path argument read so far (the path may be a bad
    /// pointer: the handler records the number first, then copies).
    path_len: u64,
    path: [u8; PATH_BYTES],
}

/// A system call the filter stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Its number.
    pub nr: u64,
    /// Its arguments.
    pub args: [u64; 6],
    /// Its path argument, for calls that take one (as far as it was read).
    pub path: Option<String>,
}

impl Trap {
    /// A slot with nothing recorded.
    pub const EMPTY: Trap = Trap {
        nr_plus_one: 0,
        args: [0; 6],
        path_len: 0,
        path: [0; PATH_BYTES],
    };

    /// What was recorded, if anything.
    ///
    /// # Safety
    /// `t` points at a live `Trap` no process writes any more.
    pub unsafe fn read(t: *const Trap) -> Option<Stopped> {
        // SAFETY: per the contract; volatile since another process wrote it.
        unsafe {
            let nr = std::ptr::read_volatile(&raw const (*t).nr_plus_one).checked_sub(1)?;
            let args = std::ptr::read_volatile(&raw const (*t).args);
            let len = (std::ptr::read_volatile(&raw const (*t).path_len) as usize).min(PATH_BYTES);
            let bytes = std::ptr::read_volatile(&raw const (*t).path);
            let path = path_arg(nr).map(|_| String::from_utf8_lossy(&bytes[..len]).into_owned());
            Some(Stopped { nr, args, path })
        }
    }
}

/// Which argument of call `nr` is a path (x86-64 numbering).
fn path_arg(nr: u64) -> Option<usize> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    Some(match nr {
        // open, stat, lstat, access, execve, truncate, chdir, rename,
        // mkdir, rmdir, creat, link, unlink, symlink, readlink, chmod,
        // chown, lchown
        2 | 4 | 6 | 21 | 59 | 76 | 80 | 82 | 83 | 84 | 85 | 86 | 87 | 88 | 89 | 90 | 92 | 94 => 0,
        // openat, mkdirat, fchownat, newfstatat, unlinkat, renameat,
        // fchmodat, faccessat, execveat, statx, openat2
        257 | 258 | 260 | 262 | 263 | 264 | 268 | 269 | 322 | 332 | 437 => 1,
        _ => return None,
    })
}

impl Stopped {
    /// The call in words: its name, its path, and what it would have done.
    pub fn describe(&self) -> String {
        let name = crate::syscalls::name(self.nr)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("system call {}", self.nr));
        let a = self.args;
        let what = match name.as_str() {
            "open" | "openat" | "openat2" | "creat" => {
                let flags = match name.as_str() {
                    "open" => a[1],
                    "creat" => (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u64,
                    "openat" => a[2],
                    _ => 0,
                } as i32;
                let mut how = vec![match flags & libc::O_ACCMODE {
                    libc::O_RDONLY => "for reading",
                    libc::O_WRONLY => "for writing",
                    _ => "for reading and writing",
                }];
                if flags & libc::O_CREAT != 0 {
                    how.push("creating it");
                }
                if flags & libc::O_TRUNC != 0 {
                    how.push("truncating it");
                }
                format!("open a file {}", how.join(", "))
            }
            "execve" | "execveat" => "run a program".into(),
            "fork" | "vfork" | "clone" | "clone3" => "start a process".into(),
            "socket" | "socketpair" | "connect" | "bind" | "sendto" | "sendmsg" => {
                "use the network".into()
            }
            "mmap" => format!("map {} bytes", a[1]),
            "mremap" => format!("grow a mapping to {} bytes", a[2]),
            "kill" | "tkill" | "tgkill" => "signal another process".into(),
            "unlink" | "unlinkat" | "rmdir" => "remove a file".into(),
            "rt_sigaction" => format!("change how signal {} is handled", a[0]),
            _ => String::new(),
        };
        let path = self
            .path
            .as_ref()
            .map(|p| format!(" {p:?}"))
            .unwrap_or_default();
        if what.is_empty() {
            format!("{name}{path}")
        } else {
            format!("{name}{path} (to {what})")
        }
    }
}

/// What a child needs to confine itself, made in the parent before it
/// forks.
pub struct Prepared {
    program: &'static BpfProgram,
    address_space: u64,
}

#[cfg(target_arch = "x86_64")]
const ARCH: Option<TargetArch> = Some(TargetArch::x86_64);
#[cfg(target_arch = "aarch64")]
const ARCH: Option<TargetArch> = Some(TargetArch::aarch64);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH: Option<TargetArch> = None;

fn sysno(name: &str) -> Option<i64> {
    Some(match name {
        "write" => libc::SYS_write,
        "exit_group" => libc::SYS_exit_group,
        "brk" => libc::SYS_brk,
        "mmap" => libc::SYS_mmap,
        "munmap" => libc::SYS_munmap,
        "mprotect" => libc::SYS_mprotect,
        "madvise" => libc::SYS_madvise,
        "mremap" => libc::SYS_mremap,
        "rt_sigprocmask" => libc::SYS_rt_sigprocmask,
        "getpid" => libc::SYS_getpid,
        "gettid" => libc::SYS_gettid,
        "tgkill" => libc::SYS_tgkill,
        "futex" => libc::SYS_futex,
        "getrandom" => libc::SYS_getrandom,
        _ => return None,
    })
}

fn compile_filter() -> Result<BpfProgram, String> {
    let arch = ARCH.ok_or("no seccomp filter for this architecture")?;
    let cond = |arg, len, op, v| {
        SeccompCondition::new(arg, len, op, v).map_err(|e| format!("seccomp condition: {e}"))
    };
    let rule =
        |c: Vec<SeccompCondition>| SeccompRule::new(c).map_err(|e| format!("seccomp rule: {e}"));
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (name, _) in ALLOWED {
        let nr = sysno(name).ok_or_else(|| format!("no system call number for {name}"))?;
        let conditions = match *name {
            "mmap" => vec![rule(vec![cond(
                1,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::Le,
                MAX_MAPPING,
            )?])?],
            "mremap" => vec![rule(vec![cond(
                2,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::Le,
                MAX_MAPPING,
            )?])?],
            // Patched to the child's own pid in `enter`.
            "tgkill" => vec![rule(vec![cond(
                0,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                u64::from(PID_PLACEHOLDER),
            )?])?],
            // Unconditional.
            _ => Vec::new(),
        };
        rules.insert(nr, conditions);
    }
    let filter = SeccompFilter::new(rules, SeccompAction::Trap, SeccompAction::Allow, arch)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    BpfProgram::try_from(filter).map_err(|e| format!("seccomp filter: {e}"))
}

/// Compiles the filter (once per process) and sizes the address-space
/// limit from the checker's own size now.
pub fn prepare() -> Result<Prepared, String> {
    static PROGRAM: OnceLock<Result<BpfProgram, String>> = OnceLock::new();
    let program = PROGRAM
        .get_or_init(compile_filter)
        .as_ref()
        .map_err(Clone::clone)?;
    // The first field of statm is the whole virtual size, in pages.
    let inherited = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(|pages| {
            // SAFETY: sysconf has no preconditions.
            pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64
        });
    Ok(Prepared {
        program,
        // Unknown size: no address-space limit; the mapping cap still holds.
        address_space: inherited.map_or(libc::RLIM_INFINITY, |s| {
            s.saturating_add(ADDRESS_SPACE_HEADROOM)
        }),
    })
}

/// Where the SIGSYS handler records; set by `enter`, in the child only.
static TRAP: AtomicPtr<Trap> = AtomicPtr::new(std::ptr::null_mut());

/// Exit status of a child the handler ended (the parent reads the slot,
/// not this; it only has to be something `_exit` can say).
const TRAPPED_EXIT: c_int = 125;

/// The six argument registers of the stopped call.
#[cfg(target_arch = "x86_64")]
unsafe fn call_args(ctx: *mut c_void) -> [u64; 6] {
    // SAFETY: the kernel passes a ucontext_t to an SA_SIGINFO handler.
    let g = unsafe { &(*ctx.cast::<libc::ucontext_t>()).uc_mcontext.gregs };
    [
        libc::REG_RDI,
        libc::REG_RSI,
        libc::REG_RDX,
        libc::REG_R10,
        libc::REG_R8,
        libc::REG_R9,
    ]
    .map(|r| g[r as usize] as u64)
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn call_args(_ctx: *mut c_void) -> [u64; 6] {
    [0; 6]
}

extern "C" fn on_sigsys(_sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let t = TRAP.load(Ordering::Relaxed);
    // SAFETY: async-signal-safe work only: plain stores into the shared
    // slot and _exit. siginfo for SIGSYS holds, after si_signo, si_errno,
    // si_code and padding (16 bytes on LP64), the call address (8 bytes)
    // and then the call's number (an int).
    unsafe {
        if !t.is_null() {
            let nr = *info.cast::<u8>().add(24).cast::<c_int>();
            let args = call_args(ctx);
            std::ptr::write_volatile(&raw mut (*t).args, args);
            std::ptr::write_volatile(&raw mut (*t).nr_plus_one, nr as u64 + 1);
            // The number is recorded: if the path is a bad pointer, the
            // copy faults and the child dies of SIGSEGV with it said.
            if let Some(i) = path_arg(nr as u64) {
                let p = args[i] as *const u8;
                if !p.is_null() {
                    let mut n = 0;
                    while n < PATH_BYTES {
                        let b = std::ptr::read_volatile(p.add(n));
                        if b == 0 {
                            break;
                        }
                        std::ptr::write_volatile(&raw mut (*t).path[n], b);
                        n += 1;
                        std::ptr::write_volatile(&raw mut (*t).path_len, n as u64);
                    }
                }
            }
        }
        libc::_exit(TRAPPED_EXIT);
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> Result<(), String> {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(resource, &r) } != 0 {
        return Err(format!(
            "setrlimit({resource}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Confines the calling process for good: stdin, stdout and stderr on
/// /dev/null, every other descriptor closed but `keep` (which becomes
/// descriptor 3, returned), rlimits, the SIGSYS handler recording into
/// `trap`, no new privileges, the filter. Call in a freshly forked child
/// (one thread) before any C under test runs.
///
/// # Safety
/// Only in a single-threaded forked child; `trap` must stay mapped for
/// the child's life.
///
/// `Err` carries the descriptor `keep` is on by then (to say why to the
/// parent) and what failed; the caller must then run nothing.
pub unsafe fn enter(p: &Prepared, trap: *mut Trap, keep: c_int) -> Result<c_int, (c_int, String)> {
    // SAFETY: per the contract.
    let mut out = keep;
    unsafe { confine(p, trap, &mut out) }.map_err(|e| (out, e))?;
    Ok(out)
}

/// [`enter`]'s steps; `out` follows the result descriptor as it moves.
unsafe fn confine(p: &Prepared, trap: *mut Trap, out: &mut c_int) -> Result<(), String> {
    let keep = *out;
    // SAFETY: descriptor and signal calls on our own process, per the
    // contract single-threaded.
    unsafe {
        // Out of the way of 0..=3 first: if the checker ran with stdin
        // closed, the pipe may be descriptor 0.
        let high = libc::fcntl(keep, libc::F_DUPFD, 10);
        if high < 0 {
            return Err(format!("dup: {}", std::io::Error::last_os_error()));
        }
        *out = high;
        // C that prints cannot corrupt the checker's output (`--json`),
        // and C that reads gets end of file.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null < 0 {
            return Err(format!("/dev/null: {}", std::io::Error::last_os_error()));
        }
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        if libc::dup2(high, 3) != 3 {
            return Err(format!("dup2: {}", std::io::Error::last_os_error()));
        }
        *out = 3;
        // Nothing the checker has open (the tree's packfiles, a tarball,
        // --report, other children's pipes) stays reachable.
        if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
            // Kernels before 5.9: one by one.
            for fd in 4..65536 {
                libc::close(fd);
            }
        }
        set_limit(libc::RLIMIT_CORE, 0, 0)?;
        set_limit(libc::RLIMIT_FSIZE, 0, 0)?;
        set_limit(libc::RLIMIT_NPROC, 0, 0)?;
        set_limit(libc::RLIMIT_CPU, CPU_SECONDS, CPU_SECONDS + 5)?;
        set_limit(libc::RLIMIT_AS, p.address_space, p.address_space)?;

        TRAP.store(trap, Ordering::Relaxed);
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigfillset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) != 0 {
            return Err(format!("sigaction: {}", std::io::Error::last_os_error()));
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGSYS);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());

        let mut program = p.program.clone();
        let pid = libc::getpid() as u32;
        for i in &mut program {
            if i.k == PID_PLACEHOLDER {
                i.k = pid;
            }
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(format!(
                "PR_SET_NO_NEW_PRIVS: {}",
                std::io::Error::last_os_error()
            ));
        }
        // Installed here rather than through seccompiler::apply_filter,
        // for one flag: SPEC_ALLOW. Without it, kernels before 5.16 (and
        // later ones booted with spec_store_bypass_disable=seccomp) turn
        // on the speculative-store-bypass mitigation for a filtered task,
        // which slows the C under test itself; the filter is here to keep
        // the C from the user's files, not from side channels.
        let fprog = libc::sock_fprog {
            len: u16::try_from(program.len()).map_err(|_| "seccomp filter too long")?,
            // seccompiler's sock_filter is #[repr(C)] with the kernel's
            // layout, as libc's is.
            filter: program.as_mut_ptr().cast::<libc::sock_filter>(),
        };
        let install = |flags: libc::c_ulong| {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &raw const fprog,
            )
        };
        if install(libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) != 0
            && (std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
                || install(0) != 0)
        {
            return Err(format!("seccomp: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allowed_call_has_a_number_and_the_filter_compiles() {
        for (name, why) in ALLOWED {
            assert!(sysno(name).is_some(), "{name}");
            assert!(!why.is_empty());
        }
        assert!(compile_filter().is_ok_and(|p| !p.is_empty()));
    }

    #[test]
    fn a_stopped_open_reads_as_what_it_tried() {
        let s = Stopped {
            nr: libc::SYS_openat as u64,
            args: [0, 0, (libc::O_WRONLY | libc::O_CREAT) as u64, 0, 0, 0],
            path: Some("/tmp/x".into()),
        };
        assert_eq!(
            s.describe(),
            "openat \"/tmp/x\" (to open a file for writing, creating it)"
        );
    }
}
