//! One run at a time: an advisory lock on `<state_dir>/lock`.
//!
//! The lock is a `flock(2)` exclusive lock taken through the standard library
//! (`File::try_lock`, stable since Rust 1.89), so no crate is needed. It belongs to the open
//! file, so it is released when the [`RunLock`] is dropped or the process dies, however it dies.
//! The holder writes its pid into the file, so that a run that has to give up can say who holds
//! it; the pid is cleared when the lock is released normally.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::errors::LockError;

/// How often a waiting run retries the lock.
const POLL: Duration = Duration::from_millis(50);

/// The run lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Best effort: clear our pid, then unlock (closing the file would unlock anyway).
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Takes the run lock in `state_dir` (created `0700` if missing), waiting up to `wait` for
/// another run to finish. A `wait` of zero tries once.
pub fn acquire(state_dir: &Path, wait: Duration) -> Result<RunLock, LockError> {
    let path = state_dir.join(super::LOCK_FILE);
    let io_err = |source| LockError::Io { path: path.clone(), source };
    super::create_state_dirs(state_dir).map_err(|(p, source)| LockError::Io { path: p, source })?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        // A link planted where the lock file goes is never opened (and never truncated).
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(io_err)?;

    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                let waited = start.elapsed();
                if waited >= wait {
                    return Err(LockError::Busy { holder: read_holder(&mut file), path, waited });
                }
                thread::sleep(POLL.min(wait - waited));
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
    }

    let record = |file: &mut File| -> std::io::Result<()> {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())?;
        file.flush()
    };
    record(&mut file).map_err(io_err)?;
    Ok(RunLock { file, path })
}

fn read_holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn second_taker_waits_then_fails_naming_the_file_and_pid() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = tmp.path().join("state");
        let first = acquire(&state, Duration::ZERO).expect("first");
        assert_eq!(
            std::fs::read_to_string(first.path()).expect("pid").trim(),
            std::process::id().to_string()
        );

        let (tx, rx) = mpsc::channel();
        let state2 = state.clone();
        let handle = thread::spawn(move || {
            let start = Instant::now();
            let result = acquire(&state2, Duration::from_millis(400));
            tx.send(start.elapsed()).expect("send");
            result.map(|_| ())
        });
        let waited = rx.recv().expect("recv");
        let err = handle.join().expect("join").expect_err("busy");
        assert!(waited >= Duration::from_millis(400), "{waited:?}");
        let msg = err.to_string();
        assert!(msg.contains(&state.join("lock").display().to_string()), "{msg}");
        assert!(msg.contains(&format!("(pid {})", std::process::id())), "{msg}");
        assert!(matches!(err, LockError::Busy { holder: Some(_), .. }));

        drop(first);
        let again = acquire(&state, Duration::ZERO).expect("free after drop");
        drop(again);
    }

    #[test]
    fn a_waiting_taker_gets_the_lock_when_it_is_released() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = tmp.path().to_path_buf();
        let first = acquire(&state, Duration::ZERO).expect("first");
        let state2 = state.clone();
        let handle = thread::spawn(move || acquire(&state2, Duration::from_secs(20)).map(|_| ()));
        thread::sleep(Duration::from_millis(200));
        drop(first);
        handle.join().expect("join").expect("second gets it");
    }

    #[test]
    fn a_link_where_the_lock_goes_is_not_followed_or_truncated() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = tmp.path().join("s");
        crate::actions::ensure_state_dir(&state).expect("state");
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "keep me").expect("victim");
        std::os::unix::fs::symlink(&victim, state.join("lock")).expect("link");
        let err = acquire(&state, Duration::ZERO).expect_err("refused");
        assert!(matches!(err, LockError::Io { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep me");
    }

    #[test]
    fn lock_file_is_private() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = tmp.path().join("s");
        let l = acquire(&state, Duration::ZERO).expect("lock");
        assert_eq!(crate::actions::test_support::mode_of(l.path()), 0o600);
        assert_eq!(crate::actions::test_support::mode_of(&state), 0o700);
    }
}
