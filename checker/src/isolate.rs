//! Running C under test where a crash or a hang cannot take the checker down.
//!
//! [`run`] forks; the child runs the work and sends its result back through
//! a pipe as JSON, then `_exit`s. Before each call into C the work stores
//! the vector's index in a shared-memory word ([`Progress`]), so when the
//! child dies of a signal or stops making progress the parent knows which
//! vector did it, and reports that as a finding.
//!
//! A child confines itself ([`crate::confine::enter`]) before it runs any
//! work: a system call outside the allowed list is stopped, recorded in
//! the child's slot beside its progress word, and reported as
//! [`Abnormal::Forbidden`].

use std::io::Read;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::confine::{self, Stopped, Trap};

/// One child's part of the shared mapping: its progress word, and what
/// the SIGSYS handler recorded. A cache line each, so children on
/// different cores do not share the line their progress word is on.
#[repr(C, align(64))]
struct Slot {
    at: AtomicU64,
    trap: Trap,
}

/// Shared progress word: the index of the vector being run.
pub struct Progress {
    word: *mut AtomicU64,
    trap: *mut Trap,
}

impl Progress {
    /// Records that vector `index` is about to run.
    #[inline]
    pub fn at(&self, index: u64) {
        // SAFETY: word points into a live MAP_SHARED mapping of one u64.
        unsafe { (*self.word).store(index, Ordering::Relaxed) }
    }

    /// The index last recorded.
    pub fn get(&self) -> u64 {
        // SAFETY: as above.
        unsafe { (*self.word).load(Ordering::Relaxed) }
    }
}

/// How isolated work ended, when it did not return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abnormal {
    /// Killed by a signal (SIGSEGV, SIGABRT, ...) while running vector `at`.
    Crashed {
        /// Signal number.
        signal: i32,
        /// Vector index.
        at: u64,
    },
    /// No progress for the stall limit while running vector `at`.
    Hung {
        /// Vector index.
        at: u64,
    },
    /// The C ended the process itself (`exit()`, `_exit()`) with `status`
    /// while running vector `at`.
    Exited {
        /// Exit status.
        status: i32,
        /// Vector index.
        at: u64,
    },
    /// The C made a system call a confined child may not make; it was
    /// stopped before it ran, while running vector `at`.
    Forbidden {
        /// The call.
        call: Stopped,
        /// Vector index.
        at: u64,
    },
    /// The checker's own work panicked in the child (a bug of ours).
    Panicked(String),
    /// No result, or the result did not parse.
    Lost(String),
}

impl std::fmt::Display for Abnormal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Abnormal::Crashed { signal, .. } => write!(f, "crashed (signal {signal})"),
            Abnormal::Hung { .. } => write!(f, "hung (no progress for {}s)", STALL_LIMIT.as_secs()),
            Abnormal::Exited { status, .. } => {
                write!(f, "ended the process itself (exit status {status})")
            }
            Abnormal::Forbidden { call, .. } => write!(
                f,
                "made a system call a confined child may not make: {}; stopped before it ran",
                call.describe()
            ),
            Abnormal::Panicked(m) => write!(f, "panicked in the checker: {m}"),
            Abnormal::Lost(m) => write!(f, "was lost: {m}"),
        }
    }
}

/// Work gives up when one vector has not finished within this long.
pub const STALL_LIMIT: Duration = Duration::from_secs(10);

/// No progress recorded yet.
pub const NOT_STARTED: u64 = u64::MAX;

/// Runs `work` in a child process.
pub fn run<T: Serialize + DeserializeOwned>(work: impl Fn(&Progress) -> T) -> Result<T, Abnormal> {
    run_sharded(1, |_, p| work(p))
        .pop()
        .unwrap_or_else(|| Err(Abnormal::Lost("no child".into())))
}

struct Child {
    pid: libc::pid_t,
    reader: Option<std::thread::JoinHandle<Vec<u8>>>,
    last: (u64, Instant),
    result: Option<Result<Vec<u8>, Abnormal>>,
}

/// Runs `work(shard, progress)` for shards `0..k` in `k` child processes at
/// once; one result per shard, in shard order.
pub fn run_sharded<T: Serialize + DeserializeOwned>(
    k: u64,
    work: impl Fn(u64, &Progress) -> T,
) -> Vec<Result<T, Abnormal>> {
    let prepared = match confine::prepare() {
        Ok(p) => p,
        Err(e) => {
            return (0..k)
                .map(|_| Err(Abnormal::Lost(format!("cannot confine a child: {e}"))))
                .collect();
        }
    };
    let words = (k as usize).max(1);
    let bytes = std::mem::size_of::<Slot>() * words;
    // SAFETY: an anonymous shared mapping of `words` slots (zeroed by the
    // kernel: no progress, nothing trapped), unmapped below.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if map == libc::MAP_FAILED {
        return (0..k)
            .map(|_| Err(Abnormal::Lost("mmap of the progress words failed".into())))
            .collect();
    }
    let progress: Vec<Progress> = (0..words)
        .map(|i| {
            let slot = map.cast::<Slot>().wrapping_add(i);
            Progress {
                word: slot.cast::<AtomicU64>(),
                // SAFETY: inside the mapping (i < words).
                trap: unsafe { &raw mut (*slot).trap },
            }
        })
        .collect();
    let mut children = Vec::new();
    for shard in 0..k {
        let p = &progress[shard as usize];
        p.at(NOT_STARTED);
        children.push(spawn(shard, p, &prepared, &work));
    }
    // Poll every child: reap, watch for stalls.
    loop {
        let mut running = 0;
        for (i, c) in children.iter_mut().enumerate() {
            let Ok(child) = c else { continue };
            if child.result.is_some() {
                continue;
            }
            running += 1;
            let mut status = 0;
            // SAFETY: pid is our child.
            let r = unsafe { libc::waitpid(child.pid, &mut status, libc::WNOHANG) };
            let at = progress[i].get();
            if r == child.pid {
                let buf = child
                    .reader
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
                // SAFETY: the slot is in the live mapping; its child is gone.
                let stopped = unsafe { Trap::read(progress[i].trap) };
                // A stopped call decides, however the child then ended
                // (the handler's _exit, or a fault copying a bad path).
                child.result = Some(if let Some(call) = stopped {
                    Err(Abnormal::Forbidden { call, at })
                } else if libc::WIFSIGNALED(status) {
                    Err(Abnormal::Crashed {
                        signal: libc::WTERMSIG(status),
                        at,
                    })
                } else {
                    decode(&buf, libc::WEXITSTATUS(status), at)
                });
            } else if at != child.last.0 {
                child.last = (at, Instant::now());
            } else if child.last.1.elapsed() > STALL_LIMIT {
                // SAFETY: killing and reaping our own child.
                unsafe {
                    libc::kill(child.pid, libc::SIGKILL);
                    libc::waitpid(child.pid, &mut status, 0);
                }
                let _ = child.reader.take().map(|h| h.join());
                child.result = Some(Err(Abnormal::Hung { at }));
            }
        }
        if running == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: map is the mapping created above; children are gone.
    unsafe { libc::munmap(map, bytes) };
    children
        .into_iter()
        .map(|c| match c {
            Err(e) => Err(e),
            Ok(child) => match child.result {
                Some(Ok(buf)) => serde_json::from_slice(&buf)
                    .map_err(|e| Abnormal::Lost(format!("child result unreadable: {e}"))),
                Some(Err(e)) => Err(e),
                None => Err(Abnormal::Lost("child never reaped".into())),
            },
        })
        .collect()
}

/// First byte of what a child sends: a result follows.
const TAG_RESULT: u8 = b'R';
/// First byte of what a child sends: a panic message follows.
const TAG_PANIC: u8 = b'P';
/// First byte of what a child sends: it could not confine itself (the
/// reason follows) and ran nothing.
const TAG_UNCONFINED: u8 = b'U';

/// What a child that exited normally sent: its result, its panic, or
/// nothing — then the C under test ended the process itself.
fn decode(buf: &[u8], status: i32, at: u64) -> Result<Vec<u8>, Abnormal> {
    match buf.split_first() {
        Some((&TAG_RESULT, rest)) if status == 0 => Ok(rest.to_vec()),
        Some((&TAG_PANIC, rest)) => Err(Abnormal::Panicked(String::from_utf8_lossy(rest).into())),
        Some((&TAG_UNCONFINED, rest)) => Err(Abnormal::Lost(format!(
            "the child could not confine itself, so no C ran: {}",
            String::from_utf8_lossy(rest)
        ))),
        _ if at != NOT_STARTED => Err(Abnormal::Exited { status, at }),
        _ => Err(Abnormal::Lost(format!(
            "child exited with status {status} before running any vector"
        ))),
    }
}

fn spawn<T: Serialize>(
    shard: u64,
    progress: &Progress,
    prepared: &confine::Prepared,
    work: &impl Fn(u64, &Progress) -> T,
) -> Result<Child, Abnormal> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(Abnormal::Lost("pipe failed".into()));
    }
    // SAFETY: the checker forks from its main thread while no other thread
    // of its own runs (reader threads of earlier children have finished or
    // only read a pipe); the child computes, writes the pipe and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Abnormal::Lost("fork failed".into()));
    }
    if pid == 0 {
        // SAFETY: child side: close the read end; confine (stdio on
        // /dev/null so C that prints cannot corrupt the checker's output,
        // rlimits, the seccomp filter); write a tagged result; _exit
        // without running the parent's destructors or atexit handlers.
        unsafe {
            libc::close(fds[0]);
            // ^C or a TERM ends the child at once, whatever handler the
            // parent installed for its own cleanup.
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            libc::signal(libc::SIGUSR2, libc::SIG_DFL);
            // A fault in the C kills the child at once. Rust's own SIGSEGV
            // and SIGBUS handler (stack-overflow detection) would, for a
            // fault outside a guard page, reset itself with rt_sigaction
            // and return, a call the filter stops and would blame on the C.
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::signal(libc::SIGBUS, libc::SIG_DFL);
            // A child never outlives the checker (killed, ^C).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // A panic of ours comes back through catch_unwind; the default
            // hook could read files for a backtrace (RUST_BACKTRACE),
            // which the filter would stop and blame on the C.
            std::panic::set_hook(Box::new(|_| {}));
            let out_fd = match confine::enter(prepared, progress.trap, fds[1]) {
                Ok(fd) => fd,
                Err((fd, e)) => {
                    let mut v = vec![TAG_UNCONFINED];
                    v.extend(e.into_bytes());
                    libc::write(fd, v.as_ptr().cast(), v.len());
                    libc::_exit(0);
                }
            };
            let out = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                work(shard, progress)
            })) {
                Ok(r) => {
                    let mut v = vec![TAG_RESULT];
                    v.extend(serde_json::to_vec(&r).unwrap_or_default());
                    v
                }
                Err(p) => {
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".into());
                    let mut v = vec![TAG_PANIC];
                    v.extend(msg.into_bytes());
                    v
                }
            };
            let mut off = 0;
            while off < out.len() {
                let n = libc::write(out_fd, out[off..].as_ptr().cast(), out.len() - off);
                if n <= 0 {
                    break;
                }
                off += n as usize;
            }
            libc::_exit(0);
        }
    }
    // SAFETY: parent side: close the write end, read until EOF.
    unsafe { libc::close(fds[1]) };
    let rfd = fds[0];
    let reader = std::thread::spawn(move || {
        // SAFETY: rfd is ours to own from here on.
        let mut f = unsafe { std::fs::File::from_raw_fd(rfd) };
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        buf
    });
    Ok(Child {
        pid,
        reader: Some(reader),
        last: (progress.get(), Instant::now()),
        result: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_childs_result() {
        assert_eq!(
            run(|p| {
                p.at(3);
                vec![1u32, 2, 3]
            }),
            Ok(vec![1, 2, 3])
        );
    }

    #[test]
    fn c_that_exits_is_reported_with_its_vector() {
        let r: Result<u32, _> = run(|p| {
            p.at(7);
            // SAFETY: deliberately end the child, as C calling exit() does.
            unsafe { libc::exit(0) };
        });
        assert_eq!(r, Err(Abnormal::Exited { status: 0, at: 7 }));
    }

    #[test]
    fn what_the_child_prints_goes_nowhere() {
        // The child's fd 1 is /dev/null: a write there succeeds (the
        // filter allows write) and goes nowhere.
        let r = run(|_| {
            let msg = b"noise\n";
            // SAFETY: writing a buffer to fd 1.
            unsafe { libc::write(1, msg.as_ptr().cast(), msg.len()) }
        });
        assert_eq!(r, Ok(6));
    }

    fn stopped(r: Result<i64, Abnormal>) -> (String, u64) {
        match r {
            Err(Abnormal::Forbidden { call, at }) => (call.describe(), at),
            other => panic!("not stopped: {other:?}"),
        }
    }

    #[test]
    fn opening_a_file_for_writing_is_stopped_and_named() {
        let dir = std::env::temp_dir().join(format!("gmf-confine-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).expect("path");
        let (what, at) = stopped(run(|p| {
            p.at(9);
            // SAFETY: an open(2) the filter must stop before it runs.
            i64::from(unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CREAT, 0o600) })
        }));
        assert_eq!(at, 9);
        assert!(
            what.starts_with("openat") && what.contains(&*dir.to_string_lossy()),
            "{what}"
        );
        assert!(what.contains("for writing, creating it"), "{what}");
        assert!(!dir.exists(), "the file was created");
    }

    #[test]
    fn starting_a_process_is_stopped() {
        let (what, _) = stopped(run(|p| {
            p.at(0);
            // SAFETY: a fork the filter must stop.
            i64::from(unsafe { libc::fork() })
        }));
        assert!(what.contains("start a process"), "{what}");
    }

    #[test]
    fn a_huge_mapping_is_stopped_with_its_size() {
        let (what, _) = stopped(run(|p| {
            p.at(0);
            // SAFETY: an anonymous mapping the filter must stop.
            let m = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    64 << 30,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            m as i64
        }));
        assert_eq!(what, format!("mmap (to map {} bytes)", 64u64 << 30));
    }

    #[test]
    fn the_address_space_is_limited_past_what_the_checker_uses() {
        // Heap growth (brk is allowed) past the headroom fails: the
        // address-space limit holds, though no single call asked for much.
        let r = run(|p| {
            p.at(0);
            let step: libc::intptr_t = 256 << 20;
            let mut grown: u64 = 0;
            // SAFETY: growing our own heap; nothing touches the pages.
            while grown < 2 * confine::ADDRESS_SPACE_HEADROOM
                && unsafe { libc::sbrk(step) } != usize::MAX as *mut libc::c_void
            {
                grown += step as u64;
            }
            grown
        });
        let grown = r.expect("the child returns");
        assert!(
            grown < confine::ADDRESS_SPACE_HEADROOM + (256 << 20),
            "grew {grown} bytes"
        );
        assert!(grown > 0, "the heap can grow at all");
    }

    #[test]
    fn a_panic_in_the_child_is_ours_not_the_cs() {
        let r: Result<u32, _> = run(|p| {
            p.at(1);
            panic!("checker bug");
        });
        assert_eq!(r, Err(Abnormal::Panicked("checker bug".into())));
    }

    #[test]
    fn a_crash_is_reported_with_its_vector() {
        let r: Result<u32, _> = run(|p| {
            p.at(41);
            // Rust's own SIGSEGV handler would swallow a raised SIGSEGV
            // (it only acts on guard-page faults): abort instead.
            // SAFETY: deliberately kill the child.
            unsafe { libc::abort() };
        });
        assert_eq!(
            r,
            Err(Abnormal::Crashed {
                signal: libc::SIGABRT,
                at: 41
            })
        );
    }
}
