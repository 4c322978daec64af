//! Binary output files (`OutputFormat::Binary`): the same transitions as
//! JSON output, rollover, quarantine of lines that are no transitions,
//! recovery of torn files, the command-line tools, and a consumer killed
//! while it copies a lot.

mod common;

use std::path::{Path, PathBuf};

use common::{keys, procs, scan, Scene};
use diskq::{
    Consumer, ConsumerOptions, LotFormat, OutputFormat, Producer, ProducerOptions, Transition,
};
use proptest::prelude::*;

fn queue_in(root: &Path, name: &str) -> PathBuf {
    let queue = root.join(name);
    std::fs::create_dir(&queue).unwrap();
    queue
}

fn producer_opts(format: LotFormat, lot_lines: u64) -> ProducerOptions {
    ProducerOptions {
        format,
        max_lot_lines: lot_lines,
        max_lot_age: None,
        ..ProducerOptions::default()
    }
}

fn consumer_opts(out: &Path, format: OutputFormat, max_lines: u64) -> ConsumerOptions {
    ConsumerOptions {
        output_dir: out.to_path_buf(),
        output_format: format,
        max_output_lines: max_lines,
        recover_interval: None,
        ..ConsumerOptions::default()
    }
}

/// Pushes `ts` into a new queue `name` under `root` as lots of `format`.
fn queue_with(root: &Path, name: &str, format: LotFormat, ts: &[Transition]) -> PathBuf {
    let queue = queue_in(root, name);
    let producer = Producer::open(&queue, producer_opts(format, 7)).unwrap();
    for t in ts {
        producer.push(t).unwrap();
    }
    producer.close().unwrap();
    queue
}

/// Consumes everything in `queue` in one poll and returns the stats.
fn consume(queue: &Path, opts: ConsumerOptions) -> diskq::ConsumerStats {
    let mut consumer = Consumer::open(queue, opts).unwrap();
    consumer.poll().unwrap();
    consumer.close().unwrap();
    consumer.stats()
}

/// Returns the files of `dir`, sorted by name.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Decodes one binary output file to JSON lines, checking its magic.
fn decode(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(diskq::BINARY_LOT_MAGIC),
        "{} does not start with the magic",
        path.display()
    );
    let mut out = Vec::new();
    diskq::lot_to_json_lines(&bytes[..], &mut out)
        .unwrap_or_else(|e| panic!("decode {}: {e}", path.display()));
    out
}

/// Returns the decoded lines of every file in `out`, which must all be
/// finished binary output files, one Vec per file in name order.
fn decoded_files(out: &Path) -> Vec<Vec<u8>> {
    files_in(out)
        .iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(
                name.starts_with(diskq::OUTPUT_PREFIX)
                    && name.ends_with(diskq::BINARY_OUTPUT_SUFFIX),
                "unexpected file {name} in the output"
            );
            decode(path)
        })
        .collect()
}

fn sample(game: &str, seq: u64, done: bool) -> Transition {
    Transition {
        obs: vec![0.5, -1.25, seq as f32],
        mask: vec![1, 0, 1],
        action: (seq % 5) as i64,
        reward: if done { 1.0 } else { 0.0 },
        done,
        game_id: game.into(),
        player_id: "pA".into(),
        seq,
    }
}

fn json_lines(ts: &[Transition]) -> String {
    ts.iter()
        .map(|t| serde_json::to_string(t).unwrap() + "\n")
        .collect()
}

fn transition_strategy() -> impl Strategy<Value = Transition> {
    (
        prop::collection::vec(-1e6f32..1e6f32, 0..40),
        prop::collection::vec(0u8..=1, 0..20),
        any::<i64>(),
        -10.0f64..10.0,
        any::<bool>(),
        "[a-z0-9\u{e9}\u{2028}\"\\\\]{0,12}",
        "p[AB]",
        any::<u64>(),
    )
        .prop_map(
            |(obs, mask, action, reward, done, game_id, player_id, seq)| Transition {
                obs,
                mask,
                action,
                reward,
                done,
                game_id,
                player_id,
                seq,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn binary_output_decodes_to_json_output(ts in prop::collection::vec(transition_strategy(), 1..40)) {
        let root = tempfile::tempdir().unwrap();
        let reference = queue_with(root.path(), "ref", LotFormat::Json, &ts);
        let json_lots = queue_with(root.path(), "jq", LotFormat::Json, &ts);
        let binary_lots = queue_with(root.path(), "bq", LotFormat::Binary, &ts);

        let ref_out = root.path().join("ref-out");
        consume(&reference, consumer_opts(&ref_out, OutputFormat::JsonLines, 5000));
        let expected: Vec<u8> = files_in(&ref_out)
            .iter()
            .flat_map(|p| std::fs::read(p).unwrap())
            .collect();
        prop_assert_eq!(expected.iter().filter(|&&b| b == b'\n').count(), ts.len());

        for (queue, name) in [(&json_lots, "json lots"), (&binary_lots, "binary lots")] {
            let out = root.path().join(format!("{name}-out"));
            let stats = consume(queue, consumer_opts(&out, OutputFormat::Binary, 5000));
            prop_assert_eq!(stats.lines, ts.len() as u64, "{}", name);
            prop_assert_eq!(stats.quarantined, 0, "{}", name);
            let files = decoded_files(&out);
            prop_assert_eq!(files.len(), 1, "{}", name);
            prop_assert_eq!(&files[0], &expected, "{}", name);
        }
    }
}

#[test]
fn binary_output_rolls_over_at_max_records() {
    let root = tempfile::tempdir().unwrap();
    let queue = queue_in(root.path(), "q");
    // Five lots of three records: two JSON lots, two binary, one JSON.
    let ts: Vec<Transition> = (0..15).map(|s| sample("g", s, s == 14)).collect();
    let formats = [LotFormat::Json, LotFormat::Binary, LotFormat::Json];
    for (chunk, format) in ts.chunks(6).zip(formats) {
        let producer = Producer::open(&queue, producer_opts(format, 3)).unwrap();
        for t in chunk {
            producer.push(t).unwrap();
        }
        producer.close().unwrap();
    }
    // A lot longer than the limit gets a file of its own.
    let long: Vec<Transition> = (0..9).map(|s| sample("long", s, s == 8)).collect();
    let producer = Producer::open(&queue, producer_opts(LotFormat::Binary, 100)).unwrap();
    for t in &long {
        producer.push(t).unwrap();
    }
    producer.close().unwrap();

    let out = root.path().join("out");
    let opts = consumer_opts(&out, OutputFormat::Binary, 7);
    let mut consumer = Consumer::open(&queue, opts).unwrap();
    let report = consumer.poll().unwrap();
    assert_eq!(report.lots, 6);
    assert_eq!(report.lines, 24);
    // 3 + 3, then 3 + 3, then 3 (the long lot would pass 7), then 9.
    assert_eq!(
        report.finished_files.len(),
        4,
        "{:?}",
        report.finished_files
    );
    assert_eq!(report.current_output, None);
    consumer.close().unwrap();

    let mut files: Vec<String> = decoded_files(&out)
        .into_iter()
        .map(|f| String::from_utf8(f).unwrap())
        .collect();
    files.sort_by_key(|f| (f.lines().count(), f.clone()));
    let counts: Vec<usize> = files.iter().map(|f| f.lines().count()).collect();
    assert_eq!(counts, [3, 6, 6, 9]);
    assert_eq!(files[3], json_lines(&long));
    let mut got: Vec<&str> = files[..3].iter().flat_map(|f| f.lines()).collect();
    got.sort_unstable();
    let expected = json_lines(&ts);
    let mut expected: Vec<&str> = expected.lines().collect();
    expected.sort_unstable();
    assert_eq!(got, expected);

    let stats = diskq::stat(&queue).unwrap();
    assert_eq!(stats.output_files, 4);
    assert_eq!(stats.output_lines, 24);
}

#[test]
fn line_that_is_no_transition_quarantines_its_lot() {
    let root = tempfile::tempdir().unwrap();
    let queue = queue_in(root.path(), "q");
    let incoming = queue.join("incoming");
    std::fs::create_dir(&incoming).unwrap();
    let valid = serde_json::to_string(&sample("g", 0, false)).unwrap();
    // Hand-made lots sort by name: a good one, one whose second line is
    // JSON but no transition (after a line that was already copied),
    // one with a field a record cannot hold, and a good one.
    let lots = [
        ("a1.ready", format!("{valid}\n")),
        (
            "a2.ready",
            format!("{valid}\n{{\"not\":\"a transition\"}}\n"),
        ),
        ("a3.ready", valid.replace("}", ",\"value\":0.5}") + "\n"),
        ("a4.ready", format!("{valid}\n{valid}\n")),
    ];
    for (name, text) in &lots {
        std::fs::write(incoming.join(name), text).unwrap();
    }

    let out = root.path().join("out");
    let stats = consume(&queue, consumer_opts(&out, OutputFormat::Binary, 5000));
    assert_eq!(stats.lots, 2);
    assert_eq!(stats.lines, 3);
    assert_eq!(stats.quarantined, 2);
    for (name, field) in [
        ("a2.ready", "line 2"),
        ("a3.ready", "unknown field `value`"),
    ] {
        let reason_path = queue.join("quarantine").join(format!("{name}.reason"));
        let reason = std::fs::read_to_string(reason_path).unwrap();
        assert!(
            reason.contains("binary output holds transitions only"),
            "{reason}"
        );
        assert!(reason.contains(field), "{reason}");
        assert!(queue.join("quarantine").join(name).exists(), "{name}");
    }

    // The first line of a2 was cut from the output again.
    let files = decoded_files(&out);
    assert_eq!(files.len(), 1);
    assert_eq!(
        String::from_utf8(files[0].clone()).unwrap(),
        format!("{valid}\n").repeat(3)
    );
}

#[test]
fn json_output_keeps_lines_that_binary_output_rejects() {
    let root = tempfile::tempdir().unwrap();
    let queue = queue_in(root.path(), "q");
    let line = "{\"not\":\"a transition\"}\n";
    std::fs::create_dir(queue.join("incoming")).unwrap();
    std::fs::write(queue.join("incoming").join("a.ready"), line).unwrap();
    let out = root.path().join("out");
    let stats = consume(&queue, consumer_opts(&out, OutputFormat::JsonLines, 5000));
    assert_eq!((stats.lines, stats.quarantined), (1, 0));
    let files = files_in(&out);
    assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), line);
}

/// Returns `ts` as a binary file: the magic, then one record each.
fn binary_file(ts: &[Transition]) -> Vec<u8> {
    let mut bytes = diskq::BINARY_LOT_MAGIC.to_vec();
    let root = tempfile::tempdir().unwrap();
    let queue = queue_with(root.path(), "q", LotFormat::Binary, ts);
    for lot in files_in(&queue.join("incoming")) {
        bytes.extend_from_slice(&std::fs::read(lot).unwrap()[diskq::BINARY_LOT_MAGIC.len()..]);
    }
    bytes
}

#[test]
fn recovery_cuts_torn_binary_output_to_whole_records() {
    let root = tempfile::tempdir().unwrap();
    let queue = queue_in(root.path(), "q");
    let out = root.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let ts: Vec<Transition> = (0..4).map(|s| sample("g", s, s == 3)).collect();
    let whole = binary_file(&ts[..3]);
    let mut torn = binary_file(&ts);
    torn.truncate(torn.len() - 5);

    let open = |time: &str, id: &str| format!("queue_transitions_{time}_{id}.dqb.open");
    let files = [
        (open("20260101T000000.000001Z", "main"), torn.clone()),
        (open("20260101T000000.000002Z", "main"), b"DQ".to_vec()),
        (
            open("20260101T000000.000003Z", "main"),
            diskq::BINARY_LOT_MAGIC.to_vec(),
        ),
        (open("20260101T000000.000004Z", "other"), torn.clone()),
    ];
    for (name, bytes) in &files {
        std::fs::write(out.join(name), bytes).unwrap();
    }

    let paths = diskq::QueuePaths::prepare(&queue).unwrap();
    let report = diskq::recover_consumer(&paths, "main", &out, false).unwrap();
    assert_eq!(report.returned, 0);

    let finished = out.join("queue_transitions_20260101T000000.000001Z_main.dqb");
    assert_eq!(std::fs::read(&finished).unwrap(), whole);
    assert_eq!(decode(&finished), json_lines(&ts[..3]).into_bytes());
    for (name, _) in &files[1..3] {
        assert!(!out.join(name).exists(), "{name} holds no record and stays");
        let finished = name.strip_suffix(".open").unwrap();
        assert!(!out.join(finished).exists(), "{finished} was made");
    }
    assert_eq!(
        std::fs::read(out.join(&files[3].0)).unwrap(),
        torn,
        "another id's file"
    );
}

/// Runs the `diskq` tool and returns its status, stdout and stderr.
fn cli(args: &[&std::ffi::OsStr]) -> (std::process::ExitStatus, String, String) {
    let output = procs::diskq_cli().args(args).output().expect("run diskq");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn cli_tools_read_binary_output() {
    let root = tempfile::tempdir().unwrap();
    let mut ts = Vec::new();
    for game in ["g1", "g2"] {
        ts.extend((0..10).map(|s| sample(game, s, s == 9)));
    }
    let queue = queue_with(root.path(), "q", LotFormat::Json, &ts);
    let out = root.path().join("out");
    let (status, _, stderr) = cli(&[
        "consume".as_ref(),
        queue.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--output-format".as_ref(),
        "binary".as_ref(),
        "--max-lines".as_ref(),
        "14".as_ref(),
        "--once".as_ref(),
    ]);
    assert!(status.success(), "{stderr}");
    let files = files_in(&out);
    assert_eq!(files.len(), 2, "{files:?}");

    // cat prints the records as JSON lines, as JSON output would hold them.
    let (status, stdout, stderr) = cli(&["cat".as_ref(), out.as_os_str()]);
    assert!(status.success(), "{stderr}");
    let mut got: Vec<&str> = stdout.lines().collect();
    got.sort_unstable();
    let expected = json_lines(&ts);
    let mut expected: Vec<&str> = expected.lines().collect();
    expected.sort_unstable();
    assert_eq!(got, expected);

    let (status, stdout, stderr) = cli(&["stat".as_ref(), queue.as_os_str(), "--json".as_ref()]);
    assert!(status.success(), "{stderr}");
    let stats: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(stats["output_lines"], 20, "{stdout}");
    assert_eq!(stats["output_files"], 2, "{stdout}");

    let verify = || cli(&["verify".as_ref(), queue.as_os_str(), "--json".as_ref()]);
    let (status, stdout, stderr) = verify();
    assert!(status.success(), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["output_lines"], 20, "{stdout}");
    assert_eq!(report["episodes"], 2, "{stdout}");

    // A flipped payload byte fails its record's checksum.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x10;
    std::fs::write(&files[0], &bytes).unwrap();
    let (status, stdout, _) = verify();
    assert!(!status.success(), "{stdout}");
    assert!(stdout.contains("checksum mismatch"), "{stdout}");

    // A finished file cut mid-record is reported too, and the record
    // lost with it leaves a gap in its episode.
    bytes[at] ^= 0x10;
    bytes.truncate(at);
    std::fs::write(&files[0], &bytes).unwrap();
    let (status, stdout, _) = verify();
    assert!(!status.success(), "{stdout}");
    assert!(stdout.contains("incomplete last record"), "{stdout}");
    assert!(
        stdout.contains("gameId=g2 playerId=pA: missing seq 3"),
        "{stdout}"
    );
}

/// Returns `diskq consume --output-format binary --once` on the scene.
fn consume_binary_once(scene: &Scene) -> std::process::Command {
    let mut cmd = procs::diskq_cli();
    cmd.arg("consume")
        .arg(&scene.queue)
        .arg("--out")
        .arg(&scene.out)
        .args(["--id", "main", "--output-format", "binary", "--once"]);
    cmd
}

/// Checks a drained queue whose output is binary: nothing left in the
/// queue, no open output file, every output file decodes, and every
/// acknowledged key is in the output exactly once.
fn check_binary_drained(scene: &Scene, context: &str) {
    let left = scan::leftovers(&scene.queue);
    assert!(left.is_empty(), "{context}: left in the queue: {left:#?}");
    let decoded = scene.root.path().join("decoded");
    std::fs::create_dir_all(&decoded).unwrap();
    for path in files_in(&scene.out) {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            name.ends_with(diskq::BINARY_OUTPUT_SUFFIX),
            "{context}: {name} in the output"
        );
        let json = decode(&path);
        std::fs::write(
            decoded.join(format!("{name}{}", diskq::OUTPUT_SUFFIX)),
            json,
        )
        .unwrap();
    }
    let output = scan::scan_outputs(&[&decoded]);
    assert!(
        output.problems.is_empty(),
        "{context}: {:#?}",
        output.problems
    );
    let ledger = keys::Ledger::read(&scene.logs);
    let verdict = scan::Verdict::new(&ledger, &output);
    verdict.assert_exactly_once(context);
    assert_eq!(verdict.acked, 48, "{context}: {}", verdict.summary());
}

/// Kills `diskq consume --output-format binary` as it enters its 2nd to
/// 5th pwrite, restarts it and checks that every line arrived once. The
/// first lot holds two records of 40000 obs values, so its copy takes two
/// writes: the third pwrite (after the magic and the first half) leaves a
/// partial copy of the lot in the output, which recovery must cut.
#[test]
fn binary_consumer_killed_while_copying_delivers_once() {
    if !procs::strace_or_note("binary_consumer_killed_while_copying_delivers_once") {
        return;
    }
    for when in 2..=5 {
        let scene = Scene::new();
        common::publish_lots(&scene.queue, &scene.logs, "pre", &[40, 5, 3], 40_000);
        let context = format!("binary consumer killed at pwrite64 #{when}");
        let inject = format!("inject=pwrite64:signal=KILL:when={when}");
        let cmd = procs::under_strace(&consume_binary_once(&scene), "pwrite64", &[inject], None);
        let status =
            procs::Proc::spawn(cmd, &scene.logs, "killed").wait_or_kill(common::WORKER_TIMEOUT);
        assert!(
            procs::was_killed(&status),
            "{context}: {}",
            procs::describe(&status)
        );

        let claims = files_in(&scene.queue.join("processing"));
        assert_eq!(claims.len(), 1, "{context}: claims {claims:?}");
        let open = scan::files_ending(&scene.out, diskq::BINARY_OPEN_SUFFIX);
        assert_eq!(open.len(), 1, "{context}: open files {open:?}");
        if when == 3 {
            let claim = claims[0].file_name().unwrap().to_str().unwrap();
            let offset: u64 = claim.rsplit('~').next().unwrap().parse().unwrap();
            let len = std::fs::metadata(&open[0]).unwrap().len();
            assert!(
                len > offset,
                "{context}: no partial copy past offset {offset} ({len} bytes)"
            );
        }

        let status = procs::Proc::spawn(consume_binary_once(&scene), &scene.logs, "restarted")
            .wait_or_kill(common::WORKER_TIMEOUT);
        assert!(
            status.success(),
            "{context}: restart {}",
            procs::describe(&status)
        );
        check_binary_drained(&scene, &context);
        scene.keep_if_requested();
    }
}

/// Compiles tests/c/binary_output.c against a copy of the newest
/// libdiskq.so and runs it: DQ_OUTPUT_BINARY gives a `.dqb` file, 2 is
/// rejected, and a struct_size from before the field gives JSON lines.
#[test]
fn c_caller_selects_binary_output() {
    let root = tempfile::tempdir().unwrap();
    let lib = root.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    std::fs::copy(procs::libdiskq_so(), lib.join("libdiskq.so")).unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = root.path().join("binary_output");
    let compiled = std::process::Command::new(std::env::var("CC").unwrap_or("gcc".into()))
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(manifest.join("include"))
        .arg(manifest.join("tests/c/binary_output.c"))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-ldiskq")
        .output()
        .expect("run the C compiler");
    assert!(
        compiled.status.success(),
        "{}",
        String::from_utf8_lossy(&compiled.stderr)
    );

    let queue = queue_in(root.path(), "q");
    let (bin_out, json_out) = (root.path().join("bin"), root.path().join("json"));
    let run = std::process::Command::new(&exe)
        .args([&queue, &bin_out, &json_out])
        .output()
        .expect("run the C program");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&run.stdout), "ok\n");

    let expected = json_lines(&[Transition {
        obs: vec![0.5],
        mask: vec![1],
        action: 1,
        reward: 0.0,
        done: true,
        game_id: "c".into(),
        player_id: "pA".into(),
        seq: 0,
    }]);
    let binary = decoded_files(&bin_out);
    assert_eq!(binary, [expected.clone().into_bytes()]);
    let json = files_in(&json_out);
    assert_eq!(json.len(), 1);
    assert!(json[0].to_string_lossy().ends_with(diskq::OUTPUT_SUFFIX));
    assert_eq!(std::fs::read_to_string(&json[0]).unwrap(), expected);
}
