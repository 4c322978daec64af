//! The C ABI as a C program sees it: tests/c/api_test.c and
//! tests/c/header_twice.c are compiled with the system C and C++
//! compilers against the libdiskq.so and libdiskq.a that cargo built for
//! this test run, then run (under valgrind too, when it is installed).
//! The exported symbols and the committed header are checked against
//! the sources.
//!
//! Needs gcc, g++ and nm (binutils); `CC` and `CXX` override the
//! compilers. Valgrind is optional: without it, that test prints a note
//! and passes.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Warnings that every C and C++ build here turns into errors.
const WARNINGS: [&str; 4] = ["-Wall", "-Wextra", "-Werror", "-pedantic"];

fn include_dir() -> PathBuf {
    Path::new(MANIFEST_DIR).join("include")
}

fn c_source(name: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join("tests").join("c").join(name)
}

/// Returns the folder holding libdiskq.so and libdiskq.a for this test
/// run.
///
/// `cargo test` writes the libraries it builds for this run into
/// `<target>/<profile>/deps/`, next to this test binary, and copies them
/// up to `<target>/<profile>/` only on `cargo build`, so the copy up
/// there may predate the sources under test. Falls back to that folder,
/// then to running `cargo build --lib`.
fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("path of the test binary");
        let deps = exe.parent().expect("the test binary sits in a folder");
        let profile = deps
            .parent()
            .expect("the test binary sits in <target>/<profile>/deps");
        let have_libs =
            |dir: &Path| dir.join("libdiskq.so").is_file() && dir.join("libdiskq.a").is_file();
        if have_libs(deps) {
            return deps.to_path_buf();
        }
        if !have_libs(profile) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
            let mut build = Command::new(cargo);
            build.current_dir(MANIFEST_DIR).args(["build", "--lib"]);
            if profile.file_name().is_some_and(|name| name == "release") {
                build.arg("--release");
            }
            let output = build.output().expect("run cargo build --lib");
            assert!(
                output.status.success(),
                "cargo build --lib failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert!(
            have_libs(profile),
            "libdiskq.so and libdiskq.a are missing from {} even after cargo build --lib",
            profile.display()
        );
        profile.to_path_buf()
    })
}

fn tool(env_var: &str, default: &str) -> String {
    std::env::var(env_var).unwrap_or_else(|_| default.to_string())
}

/// Runs `cmd`, panicking with its output unless it exits with 0.
fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {cmd:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Compiles api_test.c into `dir`. `link` lists the library arguments.
fn build_api_test(dir: &Path, name: &str, link: &[&str]) -> PathBuf {
    let exe = dir.join(name);
    let mut cc = Command::new(tool("CC", "gcc"));
    cc.arg("-std=c99")
        .args(WARNINGS)
        .arg("-pthread")
        .arg("-I")
        .arg(include_dir())
        .arg(c_source("api_test.c"))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(lib_dir())
        .args(link)
        .arg("-lm");
    run_ok(&mut cc, "compiling api_test.c");
    exe
}

fn build_api_test_shared(dir: &Path) -> PathBuf {
    let rpath = format!("-Wl,-rpath,{}", lib_dir().display());
    build_api_test(dir, "api_test", &["-ldiskq", &rpath])
}

/// Runs api_test (behind `prefix`, such as valgrind) on a fresh queue
/// folder and returns its stdout. Fails unless it exits with 0 and
/// reports no failed check.
fn run_api_test(prefix: &[&str], exe: &Path) -> String {
    let queue = tempfile::tempdir().expect("temp queue folder");
    let mut cmd = match prefix.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(exe);
            cmd
        }
        None => Command::new(exe),
    };
    // cargo test puts <target>/<profile> on LD_LIBRARY_PATH, which the
    // loader searches before the binary's runpath; the libdiskq.so there
    // may be older than the one this run built into deps/.
    cmd.arg(queue.path()).env("LD_LIBRARY_PATH", lib_dir());
    let output = run_ok(&mut cmd, "api_test");

    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or_default();
    let counts: Vec<&str> = last.split_whitespace().collect();
    assert!(
        matches!(counts.as_slice(), [n, "passed,", "0", "failed"] if n.parse::<u32>().is_ok_and(|n| n > 0)),
        "api_test's last line should read `N passed, 0 failed`:\n{stdout}"
    );
    stdout
}

#[test]
fn api_test_passes_with_shared_library() {
    let build = tempfile::tempdir().expect("temp build folder");
    let exe = build_api_test_shared(build.path());
    let stdout = run_api_test(&[], &exe);
    println!("{stdout}");
}

#[test]
fn api_test_is_clean_under_valgrind() {
    match Command::new("valgrind").arg("--version").output() {
        Ok(output) if output.status.success() => {}
        _ => {
            println!("note: valgrind is not on PATH; skipping the valgrind run of api_test");
            return;
        }
    }
    let build = tempfile::tempdir().expect("temp build folder");
    let exe = build_api_test_shared(build.path());
    // Exit status 99 means valgrind found errors or definite leaks; any
    // other failure is a failed check in api_test itself.
    let stdout = run_api_test(
        &[
            "valgrind",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--quiet",
        ],
        &exe,
    );
    println!("{stdout}");
}

#[test]
fn api_test_passes_with_static_library() {
    let build = tempfile::tempdir().expect("temp build folder");
    let exe = build_api_test(
        build.path(),
        "api_test_static",
        &["-l:libdiskq.a", "-lpthread", "-ldl"],
    );

    // The program must carry diskq itself, not load libdiskq.so.
    let nm = run_ok(
        Command::new(tool("NM", "nm"))
            .arg("--defined-only")
            .arg(&exe),
        "nm on the static build",
    );
    let symbols = String::from_utf8_lossy(&nm.stdout);
    assert!(
        symbols
            .lines()
            .any(|line| line.ends_with(" T dq_producer_open")),
        "dq_producer_open is not defined in the statically linked api_test"
    );

    let stdout = run_api_test(&[], &exe);
    println!("{stdout}");
}

#[test]
fn header_compiles_twice_as_c99_and_cxx17() {
    let build = tempfile::tempdir().expect("temp build folder");
    let rpath = format!("-Wl,-rpath,{}", lib_dir().display());
    let builds = [
        (
            "CC",
            "gcc",
            vec!["-std=c99", "-Wstrict-prototypes"],
            "header_c99",
        ),
        (
            "CXX",
            "g++",
            vec!["-std=c++17", "-x", "c++"],
            "header_cxx17",
        ),
    ];
    for (env_var, default, flags, name) in builds {
        let exe = build.path().join(name);
        let mut compiler = Command::new(tool(env_var, default));
        compiler
            .args(&flags)
            .args(WARNINGS)
            .arg("-I")
            .arg(include_dir())
            .arg(c_source("header_twice.c"))
            // Ends `-x c++`, so the libraries are read as linker input.
            .args(["-x", "none"])
            .arg("-o")
            .arg(&exe)
            .arg("-L")
            .arg(lib_dir())
            .arg("-ldiskq")
            .arg(&rpath);
        run_ok(&mut compiler, &format!("compiling header_twice.c ({name})"));
        let output = run_ok(&mut Command::new(&exe), name);
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
    }
}

/// Removes `/* */` and `//` comments from C source.
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            let end = after.find("*/").expect("comment in diskq.h is closed");
            rest = &after[end + 2..];
            out.push(' ');
        } else if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |end| &after[end..]);
        } else {
            let c = rest.chars().next().expect("rest is not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Returns the names of the functions diskq.h declares: each `dq_`
/// identifier followed by `(`, comments aside.
fn header_functions(header: &str) -> Vec<String> {
    let code = strip_comments(header);
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut names = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        let word = &code[start..i];
        let next = code[i..].trim_start().chars().next();
        if word.starts_with("dq_") && next == Some('(') {
            names.push(word.to_string());
        }
    }
    names
}

#[test]
fn header_parser_finds_prototypes_only() {
    let header = "/* dq_in_comment() */\n// dq_line_comment(\n\
                  typedef void (*dq_callback)(int);\n\
                  dq_status dq_open(const char *dir,\n    struct dq_x **out);\n\
                  const char *dq_version (void);\n";
    assert_eq!(header_functions(header), ["dq_open", "dq_version"]);
}

#[test]
fn exported_symbols_match_header() {
    let header =
        std::fs::read_to_string(include_dir().join("diskq.h")).expect("read include/diskq.h");
    let declared = header_functions(&header);
    let declared_set: BTreeSet<String> = declared.iter().cloned().collect();
    assert_eq!(
        declared.len(),
        declared_set.len(),
        "include/diskq.h declares a function twice: {declared:?}"
    );
    assert!(
        !declared_set.is_empty(),
        "no dq_ prototypes found in include/diskq.h"
    );

    let so = lib_dir().join("libdiskq.so");
    let output = run_ok(
        Command::new(tool("NM", "nm"))
            .args(["-D", "--defined-only"])
            .arg(&so),
        "nm -D on libdiskq.so",
    );
    let exported: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .filter(|name| name.starts_with("dq_"))
        .map(str::to_string)
        .collect();

    let not_declared: Vec<_> = exported.difference(&declared_set).collect();
    let not_exported: Vec<_> = declared_set.difference(&exported).collect();
    assert!(
        not_declared.is_empty() && not_exported.is_empty(),
        "libdiskq.so and include/diskq.h disagree.\n\
         exported but not in the header: {not_declared:?}\n\
         in the header but not exported: {not_exported:?}"
    );
}

#[test]
fn committed_header_matches_cbindgen_output() {
    let generated_path = Path::new(concat!(env!("OUT_DIR"), "/diskq.h"));
    let committed_path = include_dir().join("diskq.h");
    let generated = std::fs::read(generated_path).unwrap_or_else(|e| {
        panic!(
            "build.rs did not generate {} ({e}); look for a cbindgen warning in the build output",
            generated_path.display()
        )
    });
    let committed = std::fs::read(&committed_path).expect("read include/diskq.h");
    assert!(
        generated == committed,
        "include/diskq.h differs from the header cbindgen generates from src/ffi \
         ({}); run `cargo build` to regenerate it, then commit include/diskq.h",
        generated_path.display()
    );

    // build.rs copies a changed header into include/ during the build, so
    // the comparison above passes even for a header nobody committed.
    // git tells whether the committed copy is current.
    let inside = match Command::new("git")
        .current_dir(MANIFEST_DIR)
        .args(["rev-parse", "--is-inside-work-tree"])
        .output()
    {
        Ok(output) => output.status.success() && output.stdout.starts_with(b"true"),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            println!("note: git is not on PATH; skipping the committed-header check");
            return;
        }
        Err(e) => panic!("cannot run git: {e}"),
    };
    if !inside {
        println!("note: not inside a git work tree; skipping the committed-header check");
        return;
    }
    let diff = Command::new("git")
        .current_dir(MANIFEST_DIR)
        .args(["diff", "--exit-code", "--", "include/diskq.h"])
        .output()
        .expect("run git diff");
    assert!(
        diff.status.success(),
        "include/diskq.h was regenerated from src/ffi but the new header is not \
         committed; commit include/diskq.h together with the C ABI change.\n{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
}
