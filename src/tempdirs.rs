//! `series`' temporary directories never outlive the run.
//!
//! `series` works in directories under the system's temporary directory
//! named `gmemforge-series-…-<pid>-…` (the private repository, the tree
//! with the series applied for its own review). They are removed when the
//! run ends normally. Two things cover the rest:
//!
//! - [`on_signal_remove_ours`]: SIGINT and SIGTERM remove this process's
//!   directories, then the process dies of the signal as it would have.
//!   The handler only writes a byte to a pipe (all a signal handler may
//!   safely do); a thread waiting on the pipe first freezes the main
//!   thread (so it cannot create a directory behind the removal), then
//!   removes, then re-raises the signal. The checker's children die with
//!   their parent (`PR_SET_PDEATHSIG`).
//! - [`sweep_stale`]: a run first removes the directories of processes
//!   that no longer exist (killed with SIGKILL, a machine that went down).
//!
//! SIGKILL cannot be caught; the sweep is what cleans up after it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};

/// The prefix of every temporary directory `series` makes.
pub const PREFIX: &str = "gmemforge-series-";

/// The pid a temporary directory's name carries. Only the two exact
/// forms `series` makes are recognised — `gmemforge-series-<pid>-<hex>`
/// (the private repository) and `gmemforge-series-result-<pid>` — so no
/// other file that happens to share the prefix is ever touched.
pub fn owner(name: &str) -> Option<i32> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let rest = name.strip_prefix(PREFIX)?;
    let pid = match rest.strip_prefix("result-") {
        Some(pid) if digits(pid) => pid,
        Some(_) => return None,
        None => {
            let (pid, hex) = rest.split_once('-')?;
            if !digits(pid) || hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            pid
        }
    };
    pid.parse().ok()
}

fn ours_and(keep: impl Fn(i32) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| owner(&e.file_name().to_string_lossy()).is_some_and(&keep))
        .map(|e| e.path())
        .collect()
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes the temporary directories of processes that are gone.
pub fn sweep_stale() {
    for dir in ours_and(|pid| pid > 0 && !alive(pid)) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Removes this process's temporary directories.
pub fn remove_ours() {
    let me = std::process::id() as i32;
    for dir in ours_and(|pid| pid == me) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Write end of the signal pipe (-1: not installed).
static PIPE: AtomicI32 = AtomicI32::new(-1);
/// Write end of the pipe the frozen main thread acknowledges on.
static FROZEN: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE.load(Ordering::Relaxed);
    let byte = sig as u8;
    // SAFETY: write(2) is async-signal-safe; fd is the pipe's write end.
    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
}

/// Runs on the main thread when the cleanup thread asks: says so, then
/// waits for the process to end. The main thread may be about to create
/// a temporary directory; frozen here it cannot, so nothing reappears
/// after the removal.
extern "C" fn freeze(_: libc::c_int) {
    let fd = FROZEN.load(Ordering::Relaxed);
    let byte = 1u8;
    // SAFETY: write(2) and pause(2) are async-signal-safe.
    unsafe {
        libc::write(fd, (&byte as *const u8).cast(), 1);
        loop {
            libc::pause();
        }
    }
}

/// Installs the SIGINT / SIGTERM handling described above. Call it from
/// the main thread: that is the thread frozen during the removal.
pub fn on_signal_remove_ours() {
    let (mut sig_fds, mut ack_fds) = ([0; 2], [0; 2]);
    // SAFETY: each is an array of two ints.
    if unsafe { libc::pipe(sig_fds.as_mut_ptr()) } != 0
        || unsafe { libc::pipe(ack_fds.as_mut_ptr()) } != 0
    {
        return;
    }
    PIPE.store(sig_fds[1], Ordering::Relaxed);
    FROZEN.store(ack_fds[1], Ordering::Relaxed);
    // SAFETY: pthread_self has no preconditions.
    let main = unsafe { libc::pthread_self() };
    let (read_sig, read_ack) = (sig_fds[0], ack_fds[0]);
    std::thread::spawn(move || {
        let mut byte = 0u8;
        // SAFETY: reading one byte from our pipe's read end.
        if unsafe { libc::read(read_sig, (&mut byte as *mut u8).cast(), 1) } != 1 {
            return;
        }
        let sig = libc::c_int::from(byte);
        let mut ack = 0u8;
        // SAFETY: freeze the main thread and wait until it says it is.
        unsafe {
            if libc::pthread_kill(main, libc::SIGUSR2) == 0 {
                libc::read(read_ack, (&mut ack as *mut u8).cast(), 1);
            }
        }
        remove_ours();
        // SAFETY: restore the default action and die of the signal, so
        // the caller sees what it sent (exit status 128 + sig).
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    });
    // SAFETY: the handlers only call write(2) and pause(2).
    unsafe {
        libc::signal(libc::SIGUSR2, freeze as *const () as libc::sighandler_t);
        for sig in [libc::SIGINT, libc::SIGTERM] {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_the_first_number() {
        assert_eq!(owner("gmemforge-series-4242-69a1b2c0"), Some(4242));
        assert_eq!(owner("gmemforge-series-result-77"), Some(77));
        assert_eq!(owner("gmemforge-series-result"), None);
        assert_eq!(owner("something-else-12"), None);
        // A test's or a user's directory that shares the prefix.
        assert_eq!(owner("gmemforge-series-test-612-99"), None);
        assert_eq!(owner("gmemforge-series-12-notes"), None);
    }

    #[test]
    fn sweep_removes_only_the_dead() {
        // A pid that cannot be live (above pid_max's ceiling of 2^22).
        let dead = std::env::temp_dir().join(format!("{PREFIX}result-{}", 4_194_304 + 17));
        let live = std::env::temp_dir().join(format!("{PREFIX}result-{}", std::process::id()));
        std::fs::create_dir_all(&dead).expect("dead");
        std::fs::create_dir_all(&live).expect("live");
        sweep_stale();
        assert!(!dead.exists(), "a dead process's directory is removed");
        assert!(live.exists(), "a live process's directory stays");
        let _ = std::fs::remove_dir_all(&live);
    }
}
