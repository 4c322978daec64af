//! System helpers: an inotify watcher that timestamps renames into
//! folders, and child processes measured with `wait4` for their CPU time
//! and peak memory.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A file name that appeared in a watched folder by a rename.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// When the watcher read the event: at or after the rename.
    pub at: Instant,
    /// The same moment as [`mono_ns`] reads it, to compare with times
    /// taken in other processes.
    pub mono_ns: u64,
    /// Index of the folder in the list given to [`Watcher::start`].
    pub dir: usize,
    pub name: String,
}

/// Records `IN_MOVED_TO` events of some folders on a thread of its own.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<io::Result<Vec<Arrival>>>,
}

impl Watcher {
    /// Starts watching `dirs`. With `limit`, the thread stops by itself
    /// after that many arrivals, so it costs nothing while a measured
    /// process renames thousands more files.
    pub fn start(dirs: &[PathBuf], limit: Option<usize>) -> io::Result<Watcher> {
        // SAFETY: plain system call with flag arguments only.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut wds = Vec::new();
        for dir in dirs {
            let c = CString::new(dir.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
            // SAFETY: fd is our inotify descriptor and c a live C string.
            let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_MOVED_TO) };
            if wd < 0 {
                let err = io::Error::last_os_error();
                // SAFETY: fd is open and owned here.
                unsafe { libc::close(fd) };
                return Err(err);
            }
            wds.push(wd);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("bench-watch".into())
            .spawn(move || {
                let result = read_events(fd, &wds, &flag, limit);
                // SAFETY: fd is open and owned by this thread.
                unsafe { libc::close(fd) };
                result
            })?;
        Ok(Watcher { stop, handle })
    }

    /// Stops the thread after it has read the events already queued, and
    /// returns every arrival in the order read.
    pub fn finish(self) -> io::Result<Vec<Arrival>> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .expect("the watcher thread does not panic")
    }
}

fn read_events(
    fd: i32,
    wds: &[i32],
    stop: &AtomicBool,
    limit: Option<usize>,
) -> io::Result<Vec<Arrival>> {
    let mut arrivals = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: pfd is one valid pollfd that outlives the call.
        unsafe { libc::poll(&mut pfd, 1, if stopping { 0 } else { 5 }) };
        // SAFETY: buf is writable for its whole length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock {
                return Err(err);
            }
            if stopping {
                return Ok(arrivals);
            }
            continue;
        }
        let at = Instant::now();
        let at_ns = mono_ns();
        let mut off = 0usize;
        let header = std::mem::size_of::<libc::inotify_event>();
        while off + header <= n as usize {
            // SAFETY: the kernel wrote a whole event header at `off`;
            // read_unaligned copes with the byte buffer's alignment.
            let event: libc::inotify_event =
                unsafe { std::ptr::read_unaligned(buf[off..].as_ptr().cast()) };
            let name_bytes = &buf[off + header..off + header + event.len as usize];
            let end = name_bytes
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(name_bytes.len());
            off += header + event.len as usize;
            if event.mask & libc::IN_Q_OVERFLOW != 0 {
                continue;
            }
            let Some(dir) = wds.iter().position(|&w| w == event.wd) else {
                continue;
            };
            arrivals.push(Arrival {
                at,
                mono_ns: at_ns,
                dir,
                name: String::from_utf8_lossy(&name_bytes[..end]).into_owned(),
            });
        }
        if limit.is_some_and(|l| arrivals.len() >= l) {
            return Ok(arrivals);
        }
    }
}

/// Reads `CLOCK_MONOTONIC`, which every process on the machine shares,
/// in nanoseconds.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec that outlives the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Resource usage of a measured child process.
#[derive(Debug, Clone, Copy)]
pub struct ChildUsage {
    /// [`mono_ns`] just before the helper started the program.
    pub spawned_ns: u64,
    /// [`mono_ns`] just after the helper reaped it.
    pub exited_ns: u64,
    /// User plus system CPU time.
    pub cpu: Duration,
    /// Peak resident set size, in KiB.
    pub max_rss_kib: u64,
    pub success: bool,
}

/// Runs `program` through this executable's `--measure-child` mode and
/// returns its resource usage; the program's output is discarded.
///
/// NOTE: a direct child would report this benchmark's own peak RSS:
/// Linux carries the high-water mark of the memory that a vfork'ed or
/// forked child shares with its parent through `exec`. The helper is a
/// small process whose own child starts from the helper's memory.
pub fn run_measured(program: &Path, args: &[&std::ffi::OsStr]) -> io::Result<ChildUsage> {
    use std::io::BufRead;

    let exe = std::env::current_exe()?;
    let mut helper = KillOnDrop(
        std::process::Command::new(exe)
            .arg("--measure-child")
            .arg(program)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()?,
    );
    let mut out = io::BufReader::new(helper.0.stdout.take().expect("stdout is piped"));
    let mut line = String::new();
    out.read_line(&mut line)?;
    helper.0.wait()?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let [spawned_ns, exited_ns, cpu_us, max_rss_kib, success] = fields[..] else {
        let msg = format!("measuring {} failed: {line:?}", program.display());
        return Err(io::Error::other(msg));
    };
    Ok(ChildUsage {
        spawned_ns,
        exited_ns,
        cpu: Duration::from_micros(cpu_us),
        max_rss_kib,
        success: success == 1,
    })
}

/// Runs `--measure-child PROGRAM ARGS...`: starts the program with its
/// output discarded and reaps it with `wait4`. Then prints one line:
/// `usage`, the start and end times ([`mono_ns`]), the CPU time in
/// microseconds, the peak RSS in KiB, and 1 if the program succeeded.
// wait4 reaps the child, which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn measure_child_main(args: &[String]) {
    use std::io::Write;

    let (program, rest) = args
        .split_first()
        .expect("--measure-child expects a program");
    let spawned_ns = mono_ns();
    let child = std::process::Command::new(program)
        .args(rest)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the measured program");

    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data, so all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our unreaped child; both out-pointers are live.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let err = io::Error::last_os_error();
        assert_eq!(
            err.kind(),
            io::ErrorKind::Interrupted,
            "wait4 failed: {err}"
        );
    }
    let exited_ns = mono_ns();
    let cpu = timeval(usage.ru_utime) + timeval(usage.ru_stime);
    let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    writeln!(
        io::stdout(),
        "usage {spawned_ns} {exited_ns} {} {} {}",
        cpu.as_micros(),
        usage.ru_maxrss,
        u8::from(success)
    )
    .expect("write to the parent");
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Returns the CPU time (user plus system) that the calling thread has
/// used so far.
pub fn thread_cpu() -> Duration {
    // SAFETY: rusage is plain old data, so all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: usage is a valid rusage that outlives the call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(
        rc, 0,
        "getrusage(RUSAGE_THREAD) is available since Linux 2.6.26"
    );
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

/// Returns the CPU time (user plus system) of all reaped child processes
/// of this process.
pub fn children_cpu() -> Duration {
    // SAFETY: rusage is plain old data, so all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: usage is a valid rusage that outlives the call.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(
        rc, 0,
        "getrusage(RUSAGE_CHILDREN) cannot fail with valid arguments"
    );
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

/// Sends SIGTERM to a child process.
pub fn terminate(child: &Child) -> io::Result<()> {
    // SAFETY: plain system call; the pid is our unreaped child.
    if unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Counts the entries of `dir` whose name ends in `suffix`.
pub fn count_suffix(dir: &Path, suffix: &str) -> io::Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        if entry?.file_name().as_bytes().ends_with(suffix.as_bytes()) {
            n += 1;
        }
    }
    Ok(n)
}

/// Syncs a folder's entries, as diskq's durable mode does.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Kills and reaps a child process that is still running when dropped,
/// so a failed assertion leaves no benchmark process behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Frees the space of a finished case's files at once, but unlinks them
/// only when the run ends (with the rest of `work`).
///
/// On the machine of the results page (ext4 without a journal), `perf`
/// showed file creation right after a case was deleted spending up to a
/// sixth of the next case's time in the kernel's inode allocation
/// (`find_inode_bit`, `recently_deleted`). Deleting between cases would
/// charge that to the next case, and more to those that create a file
/// per lot than to peers that do not.
pub fn discard(dir: &Path, work: &Path) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    truncate_files(dir).expect("truncate the files of a finished case");
    let trash = work.join("discarded");
    std::fs::create_dir_all(&trash).expect("create the discard folder");
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::fs::rename(dir, trash.join(n.to_string())).expect("move a finished case aside");
}

fn truncate_files(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            truncate_files(&entry.path())?;
        } else if kind.is_file() {
            std::fs::OpenOptions::new()
                .write(true)
                .open(entry.path())?
                .set_len(0)?;
        }
    }
    Ok(())
}
