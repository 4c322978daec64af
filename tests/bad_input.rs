//! Bad pushes through the Rust API, each with the error kind and the
//! words its message must contain. Also odd but valid JSON, which is
//! accepted in normalized form, and `open` calls that must fail with the
//! path or the option in the message.
//!
//! After every rejected push the same producer keeps working, and each
//! line pushed before and after reaches the output exactly once.

use std::path::Path;

use diskq::{Consumer, ConsumerOptions, ErrorKind, Producer, ProducerOptions, Transition};
use serde_json::{json, Value};

/// The producer's maximum line length in these tests.
const MAX_LINE: usize = 4096;

fn transition(seq: u64) -> Transition {
    Transition {
        obs: vec![0.25, -1.0, 2.0, 3.5],
        mask: vec![1, 0, 1],
        action: 2,
        reward: 0.0,
        done: false,
        game_id: "g1".to_string(),
        player_id: "pA".to_string(),
        seq,
    }
}

fn producer_opts() -> ProducerOptions {
    ProducerOptions {
        // Small lots, so rotations happen between the rejected pushes.
        max_lot_lines: 3,
        max_line_bytes: MAX_LINE,
        max_lot_age: None,
        ..ProducerOptions::default()
    }
}

/// A push that must fail.
enum BadPush {
    Typed(Transition),
    Json(Vec<u8>),
}

struct Case {
    label: &'static str,
    push: BadPush,
    kind: ErrorKind,
    message: &'static str,
}

fn typed(
    label: &'static str,
    edit: fn(&mut Transition),
    kind: ErrorKind,
    message: &'static str,
) -> Case {
    let mut t = transition(999);
    edit(&mut t);
    Case {
        label,
        push: BadPush::Typed(t),
        kind,
        message,
    }
}

fn raw(label: &'static str, line: &[u8], kind: ErrorKind, message: &'static str) -> Case {
    Case {
        label,
        push: BadPush::Json(line.to_vec()),
        kind,
        message,
    }
}

fn bad_cases() -> Vec<Case> {
    use ErrorKind::{InvalidField, InvalidJson, LineTooLong, NonFinite};

    let long_json = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_LINE));
    vec![
        typed(
            "NaN in obs",
            |t| t.obs[3] = f32::NAN,
            NonFinite,
            "obs[3] is NaN",
        ),
        typed(
            "+inf in obs",
            |t| t.obs[0] = f32::INFINITY,
            NonFinite,
            "obs[0] is inf",
        ),
        typed(
            "-inf in obs",
            |t| t.obs[1] = f32::NEG_INFINITY,
            NonFinite,
            "obs[1] is -inf",
        ),
        typed(
            "NaN reward",
            |t| t.reward = f64::NAN,
            NonFinite,
            "reward is NaN",
        ),
        // 0.0 / 0.0 computed at run time, as C code does, gives a NaN with
        // the sign bit set on x86, unlike f64::NAN.
        typed(
            "0/0 reward",
            |t| {
                let (num, den) = std::hint::black_box((0.0f64, 0.0f64));
                t.reward = num / den;
            },
            NonFinite,
            "reward is NaN",
        ),
        typed(
            "-inf reward",
            |t| t.reward = f64::NEG_INFINITY,
            NonFinite,
            "reward is -inf",
        ),
        typed(
            "mask entry 2",
            |t| t.mask[1] = 2,
            InvalidField,
            "mask[1] is 2, expected 0 or 1",
        ),
        typed(
            "typed line over max_line_bytes",
            |t| t.obs = vec![0.125; 1000],
            LineTooLong,
            "exceeds the maximum of 4096 bytes",
        ),
        raw(
            "NaN token",
            br#"{"reward":NaN}"#,
            NonFinite,
            "`NaN` in field `reward`",
        ),
        raw(
            "nan token",
            br#"{"reward":nan}"#,
            NonFinite,
            "in field `reward`",
        ),
        raw(
            "Infinity token",
            br#"{"reward":Infinity}"#,
            NonFinite,
            "`Infinity` in field `reward`",
        ),
        raw(
            "-Infinity token",
            br#"{"reward":-Infinity}"#,
            NonFinite,
            "in field `reward`",
        ),
        raw(
            "NaN in obs array",
            br#"{"obs":[0.5,1,2,NaN]}"#,
            NonFinite,
            "in field `obs[3]`",
        ),
        raw("array", b"[1]", InvalidJson, "expected a JSON object"),
        raw("number", b"1", InvalidJson, "expected a JSON object"),
        raw("string", br#""s""#, InvalidJson, "expected a JSON object"),
        raw("null", b"null", InvalidJson, "expected a JSON object"),
        raw("empty", b"", InvalidJson, "empty"),
        raw("whitespace only", b" \t\r\n ", InvalidJson, "empty"),
        raw(
            "two objects on one line",
            br#"{"a":1}{"b":2}"#,
            InvalidJson,
            "trailing characters",
        ),
        raw(
            "two objects on two lines",
            b"{\"a\":1}\n{\"b\":2}\n",
            InvalidJson,
            "trailing characters",
        ),
        raw(
            "trailing garbage",
            br#"{"a":1} x"#,
            InvalidJson,
            "trailing characters",
        ),
        raw(
            "trailing NUL",
            b"{\"a\":1}\0",
            InvalidJson,
            "trailing characters",
        ),
        raw(
            "trailing comma",
            br#"{"a":1,}"#,
            InvalidJson,
            "trailing comma",
        ),
        raw(
            "unterminated object",
            br#"{"a":1"#,
            InvalidJson,
            "EOF while parsing",
        ),
        raw(
            "invalid UTF-8",
            b"{\"playerId\":\"p\xff\"}",
            InvalidJson,
            "not valid UTF-8 at byte 14",
        ),
        raw(
            "raw newline in a string",
            b"{\"s\":\"a\nb\"}",
            InvalidJson,
            "control character",
        ),
        raw(
            "json line over max_line_bytes",
            long_json.as_bytes(),
            LineTooLong,
            "exceeds the maximum of",
        ),
    ]
}

/// Reads every output line as a JSON value, checking that each physical
/// line is one object with no `\r` and no raw U+2028 or U+2029.
fn read_output(out: &Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut values = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        values.extend(check_lines(&file.display().to_string(), &bytes));
    }
    values
}

/// Checks that `bytes` is whole JSON-object lines in UTF-8, with no `\r`
/// and no raw U+2028 or U+2029, and returns them.
fn check_lines(name: &str, bytes: &[u8]) -> Vec<Value> {
    assert_eq!(bytes.last(), Some(&b'\n'), "{name} ends in a partial line");
    assert!(!bytes.contains(&b'\r'), "{name} contains a raw \\r");
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        !text.contains('\u{2028}') && !text.contains('\u{2029}'),
        "{name} contains a raw line or paragraph separator"
    );
    for token in ["NaN", "nan", "Infinity", "inf"] {
        assert!(!text.contains(token), "{name} contains {token}");
    }
    text.lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line:?}"));
            assert!(value.is_object(), "{name}: not an object: {line}");
            value
        })
        .collect()
}

/// Returns the contents of the `.ready` lots in `incoming/`, in name
/// order, each checked like an output file.
fn read_ready_lots(queue: &Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(queue.join("incoming"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".ready"))
        .collect();
    files.sort();
    let mut values = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        values.extend(check_lines(&file.display().to_string(), &bytes));
    }
    values
}

fn consume_all(queue: &Path, out: &Path) -> Vec<Value> {
    let opts = ConsumerOptions {
        output_dir: out.to_path_buf(),
        recover_interval: None,
        ..ConsumerOptions::default()
    };
    let mut consumer = Consumer::open(queue, opts).unwrap();
    let report = consumer.poll().unwrap();
    consumer.close().unwrap();
    assert_eq!(report.quarantined, 0);
    read_output(out)
}

#[test]
fn bad_push_leaves_producer_usable() {
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    std::fs::create_dir(&queue).unwrap();
    let producer = Producer::open(&queue, producer_opts()).unwrap();

    let mut expected = Vec::new();
    let mut seq = 0;
    let mut push_good = |producer: &Producer, expected: &mut Vec<Value>| {
        let t = transition(seq);
        producer.push(&t).unwrap();
        expected.push(serde_json::to_value(&t).unwrap());
        seq += 1;
    };

    // Every case is tried before the test fails, so one run lists all
    // the cases that behave wrongly.
    let mut wrong = Vec::new();
    for (i, case) in bad_cases().into_iter().enumerate() {
        push_good(&producer, &mut expected);
        let before = producer.stats();
        let result = match &case.push {
            BadPush::Typed(t) => producer.push(t),
            BadPush::Json(line) => producer.push_json(line),
        };
        let after = producer.stats();
        match result {
            Ok(()) => wrong.push(format!("{}: accepted", case.label)),
            Err(err) => {
                let message = err.to_string();
                if err.kind() != case.kind || !message.contains(case.message) {
                    wrong.push(format!(
                        "{}: got {:?} {message:?}, expected {:?} containing {:?}",
                        case.label,
                        err.kind(),
                        case.kind,
                        case.message
                    ));
                }
                assert!(err.is_input_error(), "{}: {message}", case.label);
                assert_eq!(
                    before.lines_pending + before.lines_published,
                    after.lines_pending + after.lines_published,
                    "{}: a rejected push left a line behind",
                    case.label
                );
            }
        }

        // The producer still works, and a flush between the failures
        // publishes what was accepted so far.
        push_good(&producer, &mut expected);
        if i % 4 == 3 {
            producer.flush().unwrap();
        }
    }
    assert!(wrong.is_empty(), "wrong outcomes:\n{}", wrong.join("\n"));
    producer.close().unwrap();
    assert_eq!(producer.stats().lines_published, expected.len() as u64);

    let out = root.path().join("out");
    assert_eq!(read_ready_lots(&queue), expected, "lots in incoming/");
    assert_eq!(consume_all(&queue, &out), expected, "output");
}

/// Pushes `case` between two good transitions on a fresh queue and checks
/// the error and that exactly the good ones are delivered.
fn assert_rejected_alone(case: Case) {
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    std::fs::create_dir(&queue).unwrap();
    let producer = Producer::open(&queue, producer_opts()).unwrap();
    producer.push(&transition(0)).unwrap();
    let result = match &case.push {
        BadPush::Typed(t) => producer.push(t),
        BadPush::Json(line) => producer.push_json(line),
    };
    producer.push(&transition(1)).unwrap();
    producer.close().unwrap();

    let err = result.expect_err(case.label);
    let message = err.to_string();
    assert_eq!(err.kind(), case.kind, "{}: {message}", case.label);
    assert!(
        message.contains(case.message),
        "{}: message {message:?} does not contain {:?}",
        case.label,
        case.message
    );
    let expected: Vec<Value> = (0..2)
        .map(|seq| serde_json::to_value(transition(seq)).unwrap())
        .collect();
    let out = root.path().join("out");
    assert_eq!(consume_all(&queue, &out), expected);
}

#[test]
fn number_beyond_f64_is_rejected() {
    // Python's and JavaScript's JSON readers turn 1e999 into an infinity,
    // and serde_json rejects it as out of range.
    assert_rejected_alone(raw(
        "number beyond f64",
        br#"{"reward":1e999}"#,
        ErrorKind::NonFinite,
        "`reward`",
    ));
}

#[test]
fn negative_number_beyond_f64_is_rejected() {
    assert_rejected_alone(raw(
        "negative number beyond f64 in an array",
        br#"{"obs":[0.5,-1e999]}"#,
        ErrorKind::NonFinite,
        "`obs[1]`",
    ));
}

#[test]
fn lone_surrogate_escape_is_rejected() {
    // serde_json, the reader the crate documents for its output, fails on
    // the whole line.
    assert_rejected_alone(raw(
        "lone surrogate escape",
        br#"{"playerId":"p\ud800"}"#,
        ErrorKind::InvalidJson,
        "invalid JSON line",
    ));
}

#[test]
fn deep_nesting_is_rejected() {
    // serde_json stops at 128 levels and fails on the whole line.
    let deep = format!("{{\"obs\":{}{}}}", "[".repeat(200), "]".repeat(200));
    assert_rejected_alone(raw(
        "nesting 200 levels deep",
        deep.as_bytes(),
        ErrorKind::InvalidJson,
        "invalid JSON line",
    ));
}

#[test]
fn nan_string_not_called_non_finite() {
    // The NaN is a string value, so the error is the trailing comma.
    assert_rejected_alone(raw(
        "trailing comma after a string holding NaN",
        br#"{"note":"NaN",}"#,
        ErrorKind::InvalidJson,
        "trailing comma",
    ));
}

#[test]
fn line_too_long_names_configured_max() {
    let long_json = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_LINE));
    assert_rejected_alone(raw(
        "json line over max_line_bytes",
        long_json.as_bytes(),
        ErrorKind::LineTooLong,
        "exceeds the maximum of 4096 bytes",
    ));
}

#[test]
fn rejected_push_keeps_buffered_lines() {
    // With a large buffer nothing reaches the file until the flush, so a
    // rejected push must not disturb the lines that wait in memory.
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    std::fs::create_dir(&queue).unwrap();
    let opts = ProducerOptions {
        max_lot_lines: 1000,
        write_buffer_bytes: 1 << 20,
        ..producer_opts()
    };
    let producer = Producer::open(&queue, opts).unwrap();
    let mut expected = Vec::new();
    for seq in 0..10 {
        let t = transition(seq);
        producer.push(&t).unwrap();
        expected.push(serde_json::to_value(&t).unwrap());
        let err = producer.push_json(br#"{"reward":NaN}"#).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NonFinite);
        let mut bad = transition(100 + seq);
        bad.obs[2] = f32::NAN;
        let err = producer.push(&bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NonFinite);
    }
    assert_eq!(producer.stats().lines_pending, 10);
    producer.close().unwrap();

    let out = root.path().join("out");
    assert_eq!(consume_all(&queue, &out), expected);
}

#[test]
fn odd_but_valid_json_is_normalized() {
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    std::fs::create_dir(&queue).unwrap();
    let producer = Producer::open(&queue, producer_opts()).unwrap();

    let pretty = serde_json::to_string_pretty(&transition(0)).unwrap();
    assert!(pretty.contains('\n'));
    let pretty_crlf = pretty.replace('\n', "\r\n") + "\r\n";
    let inputs: Vec<(&str, Vec<u8>, Value)> = vec![
        (
            "pretty-printed over several lines",
            pretty.clone().into_bytes(),
            serde_json::to_value(transition(0)).unwrap(),
        ),
        (
            "pretty-printed with CRLF",
            pretty_crlf.into_bytes(),
            serde_json::to_value(transition(0)).unwrap(),
        ),
        ("ends in \\r\\n", b"{\"a\":1}\r\n".to_vec(), json!({"a": 1})),
        ("ends in \\n", b"{\"a\":2}\n".to_vec(), json!({"a": 2})),
        (
            "raw U+2028 and U+2029 in a string",
            "{\"s\":\"x\u{2028}y\u{2029}z\"}".as_bytes().to_vec(),
            json!({"s": "x\u{2028}y\u{2029}z"}),
        ),
        (
            "escaped newline in a string",
            br#"{"s":"a\nb\r"}"#.to_vec(),
            json!({"s": "a\nb\r"}),
        ),
    ];
    for (label, line, _) in &inputs {
        producer
            .push_json(line)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
    }
    producer.close().unwrap();

    let expected: Vec<Value> = inputs.iter().map(|(_, _, v)| v.clone()).collect();
    assert_eq!(read_ready_lots(&queue), expected);

    // The lot holds one line per push and the separators as escapes.
    let mut lot_text = String::new();
    for entry in std::fs::read_dir(queue.join("incoming")).unwrap() {
        lot_text += &std::fs::read_to_string(entry.unwrap().path()).unwrap();
    }
    assert_eq!(lot_text.lines().count(), inputs.len());
    assert!(lot_text.contains(r#""x\u2028y\u2029z""#), "{lot_text}");

    let out = root.path().join("out");
    assert_eq!(consume_all(&queue, &out), expected);
}

#[test]
fn limit_applies_to_compacted_line() {
    // The limit applies to the compacted line, not to the bytes pushed.
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    std::fs::create_dir(&queue).unwrap();
    let producer = Producer::open(&queue, producer_opts()).unwrap();
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_LINE - 20));
    assert!(body.len() <= MAX_LINE);
    let mut padded = body.clone().replace('{', "{\r\n").into_bytes();
    padded.extend_from_slice(b"\r\n");
    producer.push_json(&padded).unwrap();
    let too_long = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_LINE - 9));
    assert_eq!(too_long.len(), MAX_LINE + 1);
    let err = producer.push_json(too_long.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LineTooLong);
    producer.close().unwrap();

    let out = root.path().join("out");
    let expected: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(consume_all(&queue, &out), vec![expected]);
}

// ---------------------------------------------------------------------
// open
// ---------------------------------------------------------------------

#[test]
fn open_missing_dir_names_path() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("no-such-queue");
    let err = Producer::open(&missing, producer_opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let message = err.to_string();
    assert!(message.contains(&*missing.to_string_lossy()), "{message}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(
        !missing.exists(),
        "open does not create the queue directory"
    );

    let opts = ConsumerOptions {
        output_dir: root.path().join("out"),
        ..ConsumerOptions::default()
    };
    let err = Consumer::open(&missing, opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(
        err.to_string().contains(&*missing.to_string_lossy()),
        "{err}"
    );
}

#[test]
fn open_regular_file_names_path() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("queue-file");
    std::fs::write(&file, b"not a queue").unwrap();
    let err = Producer::open(&file, producer_opts()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    let message = err.to_string();
    assert!(message.contains(&*file.to_string_lossy()), "{message}");
    assert!(message.contains("not a directory"), "{message}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a queue");
}

#[test]
fn zero_option_named_in_error() {
    let root = tempfile::tempdir().unwrap();
    let queue = root.path().join("q");
    std::fs::create_dir(&queue).unwrap();

    type EditProducer = fn(&mut ProducerOptions);
    let zero_producer: [(&str, EditProducer); 4] = [
        ("max_lot_lines", |o| o.max_lot_lines = 0),
        ("max_lot_bytes", |o| o.max_lot_bytes = 0),
        ("max_line_bytes", |o| o.max_line_bytes = 0),
        ("max_lot_age", |o| {
            o.max_lot_age = Some(std::time::Duration::ZERO)
        }),
    ];
    for (name, edit) in zero_producer {
        let mut opts = ProducerOptions::default();
        edit(&mut opts);
        let err = Producer::open(&queue, opts).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{name}");
        assert!(err.to_string().contains(name), "{name}: {err}");
    }

    type EditConsumer = fn(&mut ConsumerOptions);
    let zero_consumer: [(&str, EditConsumer); 3] = [
        ("max_output_lines", |o| o.max_output_lines = 0),
        ("max_line_bytes", |o| o.max_line_bytes = 0),
        ("consumer id", |o| o.consumer_id = "../x".to_string()),
    ];
    for (name, edit) in zero_consumer {
        let mut opts = ConsumerOptions {
            output_dir: root.path().join("out"),
            ..ConsumerOptions::default()
        };
        edit(&mut opts);
        let err = Consumer::open(&queue, opts).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{name}");
        assert!(err.to_string().contains(name), "{name}: {err}");
    }

    // Options are checked before anything is created.
    assert_eq!(std::fs::read_dir(&queue).unwrap().count(), 0);
    assert!(!root.path().join("out").exists());
}

/// The environment variable that turns
/// [`open_unwritable_dir_as_nobody`] into the child's half.
const CHILD_QUEUE_VAR: &str = "DISKQ_TEST_UNWRITABLE_QUEUE";

/// Opens a producer and a consumer on an unwritable queue directory as
/// user `nobody`, in a child process that runs the ignored helper test
/// below. Root may write anywhere, so the test cannot run in-process.
/// The child runs a copy of the test binary placed beside the queue, since
/// `nobody` may not be allowed into the folder of the build (a checkout
/// under a private temporary folder, for one).
fn open_as_nobody(queue: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;

    let exe = queue.with_file_name("bad_input_as_nobody");
    if !exe.exists() {
        std::fs::copy(std::env::current_exe().unwrap(), &exe).expect("copy the test binary");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = std::process::Command::new(&exe)
        .args([
            "--exact",
            "open_unwritable_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_QUEUE_VAR, queue)
        .uid_gid(65534)
        .output()
        .expect("the test binary runs as user nobody");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

trait UidGid {
    fn uid_gid(&mut self, id: u32) -> &mut Self;
}

impl UidGid for std::process::Command {
    fn uid_gid(&mut self, id: u32) -> &mut Self {
        use std::os::unix::process::CommandExt;
        self.gid(id).uid(id)
    }
}

#[test]
fn open_unwritable_dir_as_nobody() {
    use std::os::unix::fs::PermissionsExt;

    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    // An empty directory where the sub-folders cannot be created.
    let bare = root.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    std::fs::set_permissions(&bare, std::fs::Permissions::from_mode(0o555)).unwrap();
    let report = open_as_nobody(&bare);
    let incoming = bare.join("incoming").display().to_string();
    for handle in ["producer", "consumer"] {
        let line = report
            .lines()
            .find(|l| l.starts_with(&format!("{handle} ")))
            .unwrap_or_else(|| panic!("no {handle} line in {report}"));
        assert!(line.contains("Io"), "{line}");
        assert!(line.contains(&incoming), "{line}");
        assert!(line.contains("ermission denied"), "{line}");
    }

    // A queue whose sub-folders exist but belong to another user.
    let prepared = root.path().join("prepared");
    std::fs::create_dir(&prepared).unwrap();
    drop(Producer::open(&prepared, producer_opts()).unwrap());
    let report = open_as_nobody(&prepared);
    for handle in ["producer", "consumer"] {
        let line = report
            .lines()
            .find(|l| l.starts_with(&format!("{handle} ")))
            .unwrap_or_else(|| panic!("no {handle} line in {report}"));
        assert!(line.contains("InvalidConfig"), "{line}");
        assert!(line.contains("is not writable"), "{line}");
        assert!(line.contains(&*prepared.to_string_lossy()), "{line}");
    }
}

#[test]
#[ignore = "the child half of open_unwritable_dir_as_nobody"]
fn open_unwritable_child() {
    let queue = std::env::var_os(CHILD_QUEUE_VAR).expect("run by the parent test only");
    let queue = Path::new(&queue);
    let err = Producer::open(queue, producer_opts()).unwrap_err();
    println!("\nproducer {:?} {err}", err.kind());
    let opts = ConsumerOptions {
        output_dir: std::env::temp_dir().join("diskq-unwritable-child-out"),
        ..ConsumerOptions::default()
    };
    let err = Consumer::open(queue, opts).unwrap_err();
    println!("\nconsumer {:?} {err}", err.kind());
}
