//! Child processes: Rust workers, the C producer, the `diskq` command,
//! strace wrappers, and kills.

use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::worker::{WorkerSpec, WORKER_ENV, WORKER_TEST};

/// Returns a command running the `diskq` command-line tool.
pub fn diskq_cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_diskq"))
}

/// Returns a command that re-executes the current test binary as the
/// worker described by `spec`. The binary must define the ignored test
/// [`WORKER_TEST`] calling [`super::worker::run_if_requested`].
///
/// The program is `/proc/<this pid>/exe`, which names the running binary
/// even after a rebuild in the same tree replaced its file.
pub fn rust_worker(spec: &WorkerSpec) -> Command {
    let exe = format!("/proc/{}/exe", std::process::id());
    let mut cmd = Command::new(exe);
    cmd.args([
        WORKER_TEST,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ]);
    cmd.env(
        WORKER_ENV,
        serde_json::to_string(spec).expect("spec to JSON"),
    );
    cmd
}

/// A child process whose stdout and stderr go to files.
#[derive(Debug)]
pub struct Proc {
    /// Name used in file names and messages.
    pub name: String,
    /// The child.
    pub child: Child,
    /// File receiving stdout.
    pub stdout: PathBuf,
    /// File receiving stderr.
    pub stderr: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr in `<log_dir>/<name>.out` and
    /// `.err`.
    pub fn spawn(mut cmd: Command, log_dir: &Path, name: &str) -> Proc {
        let stdout = log_dir.join(format!("{name}.out"));
        let stderr = log_dir.join(format!("{name}.err"));
        let create = |p: &Path| File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        cmd.stdin(Stdio::null())
            .stdout(create(&stdout))
            .stderr(create(&stderr));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({:?}): {e}", cmd.get_program()));
        Proc {
            name: name.to_string(),
            child,
            stdout,
            stderr,
        }
    }

    /// Returns the exit status if the process has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for a child")
    }

    /// Sends SIGKILL and reaps the process. Returns true if it was still
    /// running, so the kill interrupted it.
    pub fn kill(&mut self) -> bool {
        if self.try_wait().is_some() {
            return false;
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("reap a killed child");
        status.signal() == Some(libc::SIGKILL)
    }

    /// Sends `signal` to process `pid` (this child, or a process it
    /// started).
    pub fn signal(pid: u32, signal: i32) {
        // SAFETY: kill takes no pointers; a stale pid at worst signals
        // nothing, since the test reaps its children itself.
        unsafe {
            libc::kill(pid as libc::pid_t, signal);
        }
    }

    /// Waits up to `timeout` for the process to end.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits up to `timeout`, then kills the process; panics with its
    /// stderr if it did not end by itself.
    pub fn wait_or_kill(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_timeout(timeout) {
            Some(status) => status,
            None => {
                self.kill();
                panic!(
                    "{} did not end within {timeout:?}; stderr: {}",
                    self.name,
                    self.stderr_tail()
                );
            }
        }
    }

    /// Returns the `event ...` lines the process printed, without the
    /// prefix.
    pub fn events(&self) -> Vec<String> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("event "))
            .map(str::to_string)
            .collect()
    }

    /// Returns the last 2000 bytes of stderr and the last 2000 of stdout.
    pub fn stderr_tail(&self) -> String {
        let tail = |p: &Path| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let mut start = text.len().saturating_sub(2000);
            while !text.is_char_boundary(start) {
                start += 1;
            }
            text[start..].to_string()
        };
        format!(
            "[stderr] {} [stdout] {}",
            tail(&self.stderr),
            tail(&self.stdout)
        )
    }

    /// Returns the pid of the first child of this process: the traced
    /// program when this process is strace.
    pub fn first_child_pid(&self) -> Option<u32> {
        let pid = self.child.id();
        let path = format!("/proc/{pid}/task/{pid}/children");
        let text = std::fs::read_to_string(path).ok()?;
        text.split_whitespace().next()?.parse().ok()
    }
}

impl Drop for Proc {
    /// Kills a process that is still running when its test ends (or
    /// panics), along with its first child (the tracee under strace).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            if let Some(pid) = self.first_child_pid() {
                Proc::signal(pid, libc::SIGKILL);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Describes an exit status as `code N` or `signal N`.
pub fn describe(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("code {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "unknown status".to_string(),
    }
}

/// Returns true if `status` is death by SIGKILL.
pub fn was_killed(status: &ExitStatus) -> bool {
    status.signal() == Some(libc::SIGKILL)
}

/// Checks once per process that strace runs and may trace children
/// (ptrace can be forbidden in containers). Returns why not otherwise.
pub fn strace_usable() -> Result<(), String> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            let out = Command::new("strace")
                .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=getpid", "true"])
                .output()
                .map_err(|e| format!("strace is not runnable: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "strace cannot trace here ({}): {}",
                    describe(&out.status),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        })
        .clone()
}

/// Returns true if strace is usable; otherwise prints a note that
/// `test` is skipped and why, and returns false.
pub fn strace_or_note(test: &str) -> bool {
    match strace_usable() {
        Ok(()) => true,
        Err(note) => {
            println!("note: {test} skipped: {note}");
            false
        }
    }
}

/// Returns `cmd` run under `strace -f -y` with the given `-e` expressions
/// (such as `inject=renameat2:signal=KILL:when=3`). Only the syscalls in
/// `trace` are traced, to `trace_out` (or nowhere), with descriptor
/// paths and strings cut to 32 bytes (see [`super::trace::parse`]).
///
/// NOTE: `--seccomp-bpf` would make tracing cheaper, but strace 6.1
/// silently skips `inject=` expressions when it is given.
pub fn under_strace(
    cmd: &Command,
    trace: &str,
    exprs: &[String],
    trace_out: Option<&Path>,
) -> Command {
    let mut strace = Command::new("strace");
    let out = trace_out.map_or("/dev/null".into(), |p| p.display().to_string());
    strace.args(["-f", "-qq", "-y", "-s", "32", "-o", &out]);
    strace.args(["-e", &format!("trace={trace}")]);
    for e in exprs {
        strace.args(["-e", e]);
    }
    strace.arg("--").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => strace.env(k, v),
            None => strace.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        strace.current_dir(dir);
    }
    strace
}

/// Runs `cmd` to completion under strace and returns how many calls of
/// each syscall in `syscalls` (comma-separated) it made, all threads
/// together, as (name, count) pairs in the order given.
pub fn count_syscalls(cmd: &Command, syscalls: &str, scratch: &Path) -> Vec<(String, usize)> {
    let trace = scratch.join("count.trace");
    let mut traced = under_strace(cmd, syscalls, &[], Some(&trace));
    let status = traced
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run a traced process");
    assert!(
        status.success(),
        "the traced dry run failed: {}",
        describe(&status)
    );
    let text = std::fs::read_to_string(&trace).expect("read the trace");
    syscalls
        .split(',')
        .map(|name| {
            let call = format!(" {name}(");
            let n = text
                .lines()
                .filter(|l| l.contains(&call) && !l.contains("resumed>"))
                .count();
            (name.to_string(), n)
        })
        .collect()
}

/// Returns the newest `libdiskq.so` in the target folder: `cargo test`
/// refreshes `deps/libdiskq.so`, `cargo build` the one beside the
/// binaries.
pub fn libdiskq_so() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_diskq"));
    let dir = bin.parent().expect("the binary sits in the target folder");
    let candidates = [
        dir.join("libdiskq.so"),
        dir.join("deps").join("libdiskq.so"),
    ];
    candidates
        .into_iter()
        .filter_map(|p| {
            let modified = std::fs::metadata(&p).ok()?.modified().ok()?;
            Some((modified, p))
        })
        .max()
        .map(|(_, p)| p)
        .expect("libdiskq.so is built by cargo test (crate-type cdylib)")
}

/// Compiles `tests/c/torture_producer.c` with gcc into `dir`, against a
/// copy of the newest `libdiskq.so` (so a rebuild in the middle of a
/// test cannot swap the library under a running worker). Returns the
/// binary's path, or why gcc is unavailable.
pub fn build_c_producer(dir: &Path) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = dir.join("lib");
    std::fs::create_dir_all(&lib_dir).expect("create the library folder");
    std::fs::copy(libdiskq_so(), lib_dir.join("libdiskq.so")).expect("copy libdiskq.so");
    let bin = dir.join("torture_producer");
    let out = Command::new("gcc")
        .args(["-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("tests/c/torture_producer.c"))
        .arg("-o")
        .arg(&bin)
        .arg("-L")
        .arg(&lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-ldiskq")
        .output()
        .map_err(|e| format!("gcc is not runnable: {e}"))?;
    if !out.status.success() {
        panic!(
            "gcc failed on tests/c/torture_producer.c:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(bin)
}

/// Options of one run of the C producer worker, passed as `key=value`
/// arguments.
#[derive(Debug, Clone)]
pub struct CProducerArgs {
    /// Queue directory.
    pub queue: PathBuf,
    /// gameId of every key.
    pub game: String,
    /// Folder of the bookkeeping logs.
    pub logs: PathBuf,
    /// Pushes before closing; 0 runs until `stop`.
    pub count: u64,
    /// Pushes between two flushes.
    pub batch: u64,
    /// Sleep after each batch, in microseconds.
    pub pause_us: u64,
    /// Obs length of every 16th transition; 0 keeps all lines short.
    pub big: u64,
    /// `dq_producer_options.write_through`.
    pub write_through: bool,
    /// `dq_producer_options.durable`.
    pub durable: bool,
    /// `dq_producer_options.max_lot_lines`.
    pub lot_lines: u64,
    /// `dq_producer_options.max_lot_age_ms`; 0 turns the age thread off.
    pub lot_age_ms: u64,
    /// `fail`, `stop` or `retry`, as [`super::worker::OnError`].
    pub on_error: &'static str,
    /// The worker closes and exits once this file exists.
    pub stop: Option<PathBuf>,
}

impl CProducerArgs {
    /// Returns arguments for 100 pushes, flushed every 10, with the
    /// library's default lot size and no age thread.
    pub fn new(queue: PathBuf, logs: PathBuf, game: &str) -> CProducerArgs {
        CProducerArgs {
            queue,
            game: game.to_string(),
            logs,
            count: 100,
            batch: 10,
            pause_us: 0,
            big: 0,
            write_through: false,
            durable: false,
            lot_lines: 500,
            lot_age_ms: 0,
            on_error: "fail",
            stop: None,
        }
    }

    /// Returns the command running `bin` with these arguments.
    pub fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.arg(format!("queue={}", self.queue.display()))
            .arg(format!("game={}", self.game))
            .arg(format!("logs={}", self.logs.display()))
            .arg(format!("count={}", self.count))
            .arg(format!("batch={}", self.batch))
            .arg(format!("pause_us={}", self.pause_us))
            .arg(format!("big={}", self.big))
            .arg(format!("write_through={}", u8::from(self.write_through)))
            .arg(format!("durable={}", u8::from(self.durable)))
            .arg(format!("lot_lines={}", self.lot_lines))
            .arg(format!("lot_age_ms={}", self.lot_age_ms))
            .arg(format!("on_error={}", self.on_error));
        if let Some(stop) = &self.stop {
            cmd.arg(format!("stop={}", stop.display()));
        }
        cmd
    }
}

/// Polls `cond` every 10 ms until it returns true or `timeout` passes.
/// Returns the last result.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sets RLIMIT_FSIZE of the child to `bytes`. A write that crosses the
/// limit is cut short, and the next one raises SIGXFSZ, which kills the
/// process: a real death in the middle of a line. With `ignore_signal`
/// the process survives and gets EFBIG instead.
pub fn limit_file_size(cmd: &mut Command, bytes: u64, ignore_signal: bool) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: the closure runs in the child between fork and exec. It
    // calls only setrlimit and signal, which are async-signal-safe, and
    // it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if ignore_signal {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            }
            Ok(())
        });
    }
}
