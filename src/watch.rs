//! An inotify watch on `incoming/`, so an idle consumer sleeps until a
//! lot is published instead of waking up to list the folder.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// A watch for files that appear in one folder by rename or creation.
#[derive(Debug)]
pub(crate) struct Watch {
    fd: OwnedFd,
}

impl Watch {
    /// Starts watching `dir`.
    pub fn new(dir: &Path) -> io::Result<Watch> {
        use std::os::unix::ffi::OsStrExt;

        // SAFETY: inotify_init1 takes only flags and returns a new
        // descriptor or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we just opened and own alone.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        let mask = libc::IN_MOVED_TO | libc::IN_CLOSE_WRITE | libc::IN_ONLYDIR;
        // SAFETY: `fd` is a live inotify descriptor and `path` a live
        // NUL-terminated string.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Watch { fd })
    }

    /// Waits up to `timeout` for an event and drains all pending ones.
    /// Returns true if there was any. A signal ends the wait early.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let mut pollfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `pollfd` is one valid struct, matching the count of 1.
        let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
        if ready < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(err)
            };
        }
        if ready == 0 {
            return Ok(false);
        }

        // Events only wake us; the caller lists the folder anyway, so
        // their content is read and dropped.
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: the pointer and length describe `buf`.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn watch_wakes_on_rename_into_folder() {
        let dir = tempfile::tempdir().unwrap();
        let watched = dir.path().join("incoming");
        std::fs::create_dir(&watched).unwrap();
        let watch = Watch::new(&watched).unwrap();
        assert!(!watch.wait(Duration::from_millis(10)).unwrap());

        std::fs::write(dir.path().join("lot"), b"{}\n").unwrap();
        std::fs::rename(dir.path().join("lot"), watched.join("lot.ready")).unwrap();
        let start = Instant::now();
        assert!(watch.wait(Duration::from_secs(5)).unwrap());
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
