//! Running C under test where a crash or a hang cannot take the checker down.
//!
//! [`run`] forks; the child runs the work and sends its result back through
//! a pipe as JSON, then `_exit`s. Before each call into C the work stores
//! the vector's index in a shared-memory word ([`Progress`]), so when the
//! child dies of a signal or stops making progress the parent knows which
//! vector did it, and reports that as a finding.

use std::io::Read;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Shared progress word: the index of the vector being run.
pub struct Progress {
    word: *mut AtomicU64,
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
    /// The checker's own work panicked in the child (a bug of ours).
    Panicked(String),
    /// No result, or the result did not parse.
    Lost(String),
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
    let words = (k as usize).max(1);
    // SAFETY: an anonymous shared mapping of `words` u64s, unmapped below.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            8 * words,
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
        .map(|i| Progress {
            word: map.cast::<AtomicU64>().wrapping_add(i),
        })
        .collect();
    let mut children = Vec::new();
    for shard in 0..k {
        let p = &progress[shard as usize];
        p.at(NOT_STARTED);
        children.push(spawn(shard, p, &work));
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
                child.result = Some(if libc::WIFSIGNALED(status) {
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
    unsafe { libc::munmap(map, 8 * words) };
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

/// What a child that exited normally sent: its result, its panic, or
/// nothing — then the C under test ended the process itself.
fn decode(buf: &[u8], status: i32, at: u64) -> Result<Vec<u8>, Abnormal> {
    match buf.split_first() {
        Some((&TAG_RESULT, rest)) if status == 0 => Ok(rest.to_vec()),
        Some((&TAG_PANIC, rest)) => Err(Abnormal::Panicked(String::from_utf8_lossy(rest).into())),
        _ if at != NOT_STARTED => Err(Abnormal::Exited { status, at }),
        _ => Err(Abnormal::Lost(format!(
            "child exited with status {status} before running any vector"
        ))),
    }
}

fn spawn<T: Serialize>(
    shard: u64,
    progress: &Progress,
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
        // SAFETY: child side: close the read end; point stdout and stderr
        // at /dev/null so C that prints cannot corrupt the checker's
        // output (`--json`); write a tagged result; _exit without running
        // the parent's destructors or atexit handlers.
        unsafe {
            libc::close(fds[0]);
            // ^C or a TERM ends the child at once, whatever handler the
            // parent installed for its own cleanup.
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            libc::signal(libc::SIGUSR2, libc::SIG_DFL);
            // A child never outlives the checker (killed, ^C).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            if null >= 0 {
                libc::dup2(null, 1);
                libc::dup2(null, 2);
                libc::close(null);
            }
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
                let n = libc::write(fds[1], out[off..].as_ptr().cast(), out.len() - off);
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
    fn what_the_child_prints_does_not_reach_our_stdout() {
        // The child's fd 1 is /dev/null: a write there succeeds and goes
        // nowhere (the parent's stdout is the test harness's).
        let r = run(|_| {
            let msg = b"noise\n";
            // SAFETY: writing a buffer to fd 1.
            let n = unsafe { libc::write(1, msg.as_ptr().cast(), msg.len()) };
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: fstat on fd 1 into a zeroed stat.
            unsafe { libc::fstat(1, &mut st) };
            (n, st.st_mode & libc::S_IFMT == libc::S_IFCHR)
        });
        assert_eq!(r, Ok((6, true)));
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
