//! File-system steps that crash safety depends on: exclusive creation,
//! no-replace renames, directory syncs and advisory locks.
//!
//! Every rename that publishes, claims or archives a lot goes through
//! [`rename_noreplace`], so an existing file is never silently replaced.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Renames `from` to `to`, failing with `AlreadyExists` if `to` exists.
///
/// Uses `renameat2(RENAME_NOREPLACE)`. File systems without it get
/// `link` + `unlink`, which is also atomic with respect to the target
/// name; a crash between the two leaves both names, which every scan in
/// this crate treats by checking the destination first.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let c_from = cstring(from)?;
    let c_to = cstring(to)?;

    // SAFETY: both pointers come from live CStrings, so they are valid,
    // NUL-terminated and outlive the call; AT_FDCWD makes them resolve
    // like ordinary paths.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            c_from.as_ptr(),
            libc::AT_FDCWD,
            c_to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
            std::fs::hard_link(from, to)?;
            std::fs::remove_file(from)
        }
        _ => Err(err),
    }
}

/// Flushes a directory's entries to stable storage, so a rename or a
/// creation inside it survives power loss.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Takes an exclusive `flock` without blocking. Returns false when another
/// open file description holds it. The kernel drops the lock when the
/// last descriptor of the holder closes, including when the process dies.
pub(crate) fn try_lock(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;

    // SAFETY: the descriptor belongs to `file`, which is open for the
    // whole call; flock takes no pointers.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Creates `path` exclusively for writing. Fails with `AlreadyExists`
/// rather than opening or truncating a file that is there.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// Opens `path` for reading only if it is a regular file: symbolic links
/// are not followed and FIFOs or devices are rejected without blocking.
pub(crate) fn open_regular(path: &Path, write: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(io::ErrorKind::InvalidInput, "is a symbolic link")
            } else {
                e
            }
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a regular file",
        ));
    }
    Ok(file)
}

/// Returns true if `file` is still the inode that `path` names.
pub(crate) fn same_inode(file: &File, path: &Path) -> io::Result<bool> {
    let a = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(b) => Ok(a.dev() == b.dev() && a.ino() == b.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes all of `buf` at `offset`. On failure, returns how many bytes
/// did reach the file, so the caller can cut them off again.
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> Result<(), (usize, io::Error)> {
    use std::os::unix::fs::FileExt;

    let mut done = 0;
    while done < buf.len() {
        match file.write_at(&buf[done..], offset + done as u64) {
            Ok(0) => {
                let err = io::Error::new(io::ErrorKind::WriteZero, "write returned 0 bytes");
                return Err((done, err));
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((done, e)),
        }
    }
    Ok(())
}
