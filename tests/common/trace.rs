//! Reading `strace -f -y` output, and checking the order of writes,
//! syncs and renames that the durable mode promises.

use std::path::Path;

/// The system calls [`check_durable_order`] needs, for `-e trace=`.
pub const ORDER_CALLS: &str = "openat,write,pwrite64,fsync,fdatasync,rename,renameat,renameat2";

/// One system call from an strace log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Line number in the log, from 1.
    pub line: usize,
    /// Name, such as `renameat2`.
    pub name: String,
    /// Path of the first descriptor argument, from `-y` (`5</a/b>`).
    pub fd_path: Option<String>,
    /// The quoted string arguments, in order (paths for renames).
    pub strings: Vec<String>,
    /// True if the call returned 0 or more.
    pub ok: bool,
}

/// Parses the calls of a log written with `strace -f -y -o`. Lines of
/// resumed calls are skipped: their start line carries the arguments.
pub fn parse(text: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.contains("resumed>") || raw.contains("+++") || raw.contains("---") {
            continue;
        }
        // "<pid> name(args) = ret", the pid only with -f.
        let rest = raw.trim_start();
        let rest = match rest.split_once(' ') {
            Some((pid, tail)) if pid.bytes().all(|b| b.is_ascii_digit()) => tail.trim_start(),
            _ => rest,
        };
        let Some(open) = rest.find('(') else { continue };
        let name = rest[..open].to_string();
        let args = &rest[open + 1..];
        let fd_path = args
            .split_once('<')
            .filter(|(before, _)| before.bytes().all(|b| b.is_ascii_digit()) && !before.is_empty())
            .and_then(|(_, after)| after.split_once('>'))
            .map(|(path, _)| path.to_string());
        let ok = match rest.rsplit_once(" = ") {
            Some((_, ret)) => !ret.trim_start().starts_with('-'),
            None => false,
        };
        calls.push(Call {
            line: i + 1,
            name,
            fd_path,
            strings: quoted_strings(args),
            ok,
        });
    }
    calls
}

/// Returns the double-quoted strings of an argument list, unescaped
/// only for `\"` and `\\`.
fn quoted_strings(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(next) = chars.next() {
                        s.push(next);
                    }
                }
                '"' => break,
                _ => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

fn parent(path: &str) -> String {
    Path::new(path)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn is_sync(call: &Call) -> bool {
    call.ok && (call.name == "fsync" || call.name == "fdatasync")
}

/// Returns the index of the first successful sync of `path` among
/// `calls[from..to]`.
fn sync_of(calls: &[Call], path: &str, from: usize, to: usize) -> Option<usize> {
    (from..to).find(|&i| is_sync(&calls[i]) && calls[i].fd_path.as_deref() == Some(path))
}

/// Checks that the file at `path`, if this process wrote to it, was
/// synced after its last write and before call `rename`. Returns a
/// message if not.
fn synced_before(calls: &[Call], path: &str, rename: usize) -> Option<String> {
    let last_write = (0..rename)
        .rev()
        .find(|&i| calls[i].name == "pwrite64" && calls[i].fd_path.as_deref() == Some(path));
    // A file this process did not write has no new data to sync.
    let from = last_write? + 1;
    match sync_of(calls, path, from, rename) {
        Some(_) => None,
        None => Some(format!(
            "line {}: {} renamed without an fsync after its last write",
            calls[rename].line, path
        )),
    }
}

/// Returns the folders a rename moves a name between, which is what
/// makes renames alike: claims go from `incoming/` to `processing/`,
/// archive renames from `processing/` to `archive/`, and so on.
fn rename_kind(call: &Call) -> (String, String) {
    (parent(&call.strings[0]), parent(&call.strings[1]))
}

/// Checks that each folder in `dirs` was synced after call `rename` and
/// before whatever may depend on it: the next write of file data, or the
/// next rename of another kind. Renames of one kind may share the syncs
/// that follow the last of them, as the consumer's group of claims or of
/// archive renames does. Returns a message per folder.
fn dirs_synced_after(calls: &[Call], dirs: &[String], rename: usize) -> Vec<String> {
    let kind = rename_kind(&calls[rename]);
    let next = (rename + 1..calls.len())
        .find(|&i| {
            let call = &calls[i];
            let other_rename = call.name == "renameat2"
                && call.ok
                && call.strings.len() >= 2
                && rename_kind(call) != kind;
            other_rename || call.name == "pwrite64"
        })
        .unwrap_or(calls.len());
    dirs.iter()
        .filter(|dir| sync_of(calls, dir, rename + 1, next).is_none())
        .map(|dir| {
            format!(
                "line {}: no fsync of {dir} after the rename {} -> {} and before the next \
                 write or rename of another kind",
                calls[rename].line, calls[rename].strings[0], calls[rename].strings[1]
            )
        })
        .collect()
}

/// Checks the durable mode's order in one process's log. A rename that
/// publishes, claims, archives, returns or finishes a file must follow
/// an fsync of the file when this process wrote new data to it. Both
/// folders it touches must be synced before the next write of data and
/// before the next rename of another kind. `out_dir`
/// is the consumer's output folder, where the output file of an
/// archived lot is. Returns one message per violation and the number of
/// renames checked.
pub fn check_durable_order(calls: &[Call], out_dir: &Path) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (i, call) in calls.iter().enumerate() {
        if call.name != "renameat2" || !call.ok || call.strings.len() < 2 {
            continue;
        }
        let (from, to) = (&call.strings[0], &call.strings[1]);
        let from_dir = parent(from);
        let to_dir = parent(to);
        let from_name = Path::new(from).file_name().unwrap().to_string_lossy();
        let to_dir_name = Path::new(&to_dir).file_name().unwrap().to_string_lossy();
        if from_name.starts_with('.') && from_name.ends_with(".new") {
            // An empty lot file getting its name: nothing to publish yet.
            continue;
        }
        checked += 1;

        // The file whose contents the rename makes visible or final.
        let data_file = if from.ends_with(".part") || from.ends_with(diskq::OPEN_SUFFIX) {
            Some(from.clone())
        } else if to_dir_name == "archive" {
            from_name
                .split('~')
                .nth(1)
                .map(|output| out_dir.join(output).display().to_string())
        } else {
            None
        };
        if let Some(file) = data_file {
            problems.extend(synced_before(calls, &file, i));
        }

        let mut dirs = vec![to_dir.clone()];
        if from_dir != to_dir {
            dirs.push(from_dir);
        }
        problems.extend(dirs_synced_after(calls, &dirs, i));
    }
    (problems, checked)
}
