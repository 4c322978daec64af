//! The Prometheus exposition of `diskq stat --prometheus` and `diskq
//! metrics`: a strict parser of the text format (version 0.0.4) reads it
//! back, the values match the queue, and `promtool check metrics` accepts
//! it when promtool is installed (Debian package `prometheus`).

#![cfg(feature = "cli")]

mod ops_support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use ops_support::{both, diskq, send_signal, wait_until, write_ready_lot, TestQueue};

/// One sample line: metric name, labels and value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition: families by name with their type and help, and
/// every sample in order.
#[derive(Debug, Default)]
struct Exposition {
    types: HashMap<String, String>,
    helps: HashMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    /// Returns the value of the one sample of `name` whose labels include
    /// `labels`; panics if there is none or more than one.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
            })
            .collect();
        assert_eq!(found.len(), 1, "samples of {name} {labels:?}: {found:?}");
        found[0].value
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// Parses a value as Prometheus does (Go's ParseFloat plus the special
/// spellings).
fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" | "Inf" => return Ok(f64::INFINITY),
        "-Inf" => return Ok(f64::NEG_INFINITY),
        "NaN" => return Ok(f64::NAN),
        _ => {}
    }
    let ok = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    if !ok {
        return Err(format!("invalid value {text:?}"));
    }
    text.parse()
        .map_err(|e| format!("invalid value {text:?}: {e}"))
}

/// Reads the text after `# HELP name `, undoing `\\` and `\n`.
fn unescape_help(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            other => return Err(format!("invalid escape \\{other:?} in help")),
        }
    }
    Ok(out)
}

/// Parses `{a="x",b="y"}` at the start of `text`; returns the labels and
/// the rest of the line.
fn parse_labels(text: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = text.strip_prefix('{').ok_or("expected {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value without quote")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next().ok_or("unterminated label value")?;
            match c {
                '"' => break i,
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => return Err(format!("invalid escape \\{other:?} in label value")),
                },
                '\n' => return Err("raw newline in label value".into()),
                c => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} repeated"));
        }
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

/// Parses a text exposition, rejecting anything the format does not
/// allow: unknown comment forms, bad names, bad escapes, a TYPE after its
/// samples or twice, a family split into two groups, duplicate series,
/// a sample name that differs from its gauge family.
fn parse(text: &str) -> Result<Exposition, String> {
    if !text.ends_with('\n') {
        return Err("the exposition must end with a newline".into());
    }
    let mut exp = Exposition::default();
    let mut closed: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<(String, BTreeMap<String, String>)> = HashSet::new();
    let mut enter = |name: &str, current: &mut Option<String>| -> Result<(), String> {
        if current.as_deref() != Some(name) {
            if closed.contains(name) {
                return Err(format!("family {name} appears in two groups"));
            }
            if let Some(previous) = current.take() {
                closed.insert(previous);
            }
            *current = Some(name.to_string());
        }
        Ok(())
    };

    for (i, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", i + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let (keyword, rest) = comment
                .split_once(' ')
                .ok_or_else(|| at("bare comment".into()))?;
            let (name, text) = rest.split_once(' ').ok_or_else(|| at("no text".into()))?;
            if !is_metric_name(name) {
                return Err(at(format!("invalid metric name {name:?}")));
            }
            enter(name, &mut current).map_err(at)?;
            match keyword {
                "HELP" => {
                    let help = unescape_help(text).map_err(at)?;
                    if exp.helps.insert(name.to_string(), help).is_some() {
                        return Err(at("second HELP".into()));
                    }
                }
                "TYPE" => {
                    let known = ["counter", "gauge", "histogram", "summary", "untyped"];
                    if !known.contains(&text) {
                        return Err(at(format!("unknown type {text:?}")));
                    }
                    if exp.samples.iter().any(|s| s.name == name) {
                        return Err(at("TYPE after samples".into()));
                    }
                    if exp
                        .types
                        .insert(name.to_string(), text.to_string())
                        .is_some()
                    {
                        return Err(at("second TYPE".into()));
                    }
                }
                other => return Err(at(format!("unknown comment {other:?}"))),
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(at("comment without a space after #".into()));
        }

        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(at(format!("invalid metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut fields = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before the value".into()))?
            .split(' ');
        let value = parse_value(fields.next().unwrap_or_default()).map_err(at)?;
        if let Some(stamp) = fields.next() {
            stamp
                .parse::<i64>()
                .map_err(|e| at(format!("invalid timestamp: {e}")))?;
        }
        if fields.next().is_some() {
            return Err(at("text after the timestamp".into()));
        }
        enter(name, &mut current).map_err(at)?;
        if exp.types.get(name).map(String::as_str) != Some("gauge") {
            return Err(at("sample of a family without TYPE gauge".into()));
        }
        if !series.insert((name.to_string(), labels.clone())) {
            return Err(at("duplicate series".into()));
        }
        exp.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(exp)
}

#[test]
fn parser_rejects_malformed_text() {
    let good = "# HELP m A metric.\n# TYPE m gauge\nm{queue=\"a\"} 1\n";
    assert!(parse(good).is_ok());
    let bad = [
        ("no final newline", "# TYPE m gauge\nm 1"),
        ("bad escape", "# TYPE m gauge\nm{q=\"a\\x\"} 1\n"),
        (
            "duplicate series",
            "# TYPE m gauge\nm{q=\"a\"} 1\nm{q=\"a\"} 2\n",
        ),
        (
            "split family",
            "# TYPE m gauge\nm 1\n# TYPE n gauge\nn 1\nm{q=\"b\"} 1\n",
        ),
        ("type after sample", "m 1\n# TYPE m gauge\n"),
        ("bad value", "# TYPE m gauge\nm one\n"),
        ("bad name", "# TYPE 9m gauge\n9m 1\n"),
        ("unterminated label", "# TYPE m gauge\nm{q=\"a} 1\n"),
    ];
    for (what, text) in bad {
        assert!(parse(text).is_err(), "{what} was accepted");
    }
}

/// A queue with two waiting lots (3 and 2 lines), one consumed lot of 4
/// lines and one quarantined lot; its directory name needs escaping.
fn sample_queue() -> (TestQueue, std::path::PathBuf) {
    let q = TestQueue::new();
    let queue = q.root.path().join("queue \"a\\b\"");
    std::fs::create_dir(&queue).unwrap();
    let line = |seq: u32| format!("{{\"gameId\":\"g\",\"playerId\":\"p\",\"seq\":{seq}}}\n");
    let lot = |range: std::ops::Range<u32>| range.map(line).collect::<String>().into_bytes();
    write_ready_lot(&queue, "00000000000000000001-h-1-00000000-0", &lot(0..4));
    write_ready_lot(&queue, "00000000000000000002-h-1-00000000-1", b"not json\n");
    let opts = diskq::ConsumerOptions {
        output_dir: q.out.clone(),
        ..diskq::ConsumerOptions::default()
    };
    let mut consumer = diskq::Consumer::open(&queue, opts).unwrap();
    consumer.poll().unwrap();
    consumer.close().unwrap();
    drop(consumer);
    write_ready_lot(&queue, "00000000000000000003-h-1-00000000-2", &lot(4..7));
    write_ready_lot(&queue, "00000000000000000004-h-1-00000000-3", &lot(7..9));
    (q, queue)
}

#[test]
fn stat_exposition_parses_and_matches_queue() {
    let (_q, queue) = sample_queue();
    let out = diskq(&[&"stat", &queue, &"--prometheus"]);
    assert!(out.status.success(), "{}", both(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let exp = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    let label = std::fs::canonicalize(&queue).unwrap().display().to_string();
    let q = [("queue", label.as_str())];
    assert_eq!(exp.value("diskq_up", &q), 1.0);
    assert_eq!(exp.value("diskq_ready_lots", &q), 2.0);
    assert_eq!(exp.value("diskq_ready_lines", &q), 5.0);
    assert!(exp.value("diskq_ready_bytes", &q) > 0.0);
    assert_eq!(exp.value("diskq_archived_lots", &q), 1.0);
    assert_eq!(exp.value("diskq_archived_lines", &q), 4.0);
    assert_eq!(exp.value("diskq_quarantined_lots", &q), 1.0);
    assert_eq!(exp.value("diskq_processing_lots", &q), 0.0);
    assert_eq!(exp.value("diskq_throughput_window_seconds", &q), 60.0);
    // One lot of 4 lines archived within the last minute.
    assert_eq!(
        exp.value("diskq_throughput_lines_per_second", &q),
        4.0 / 60.0
    );
    // Recent lots: the archived one (4 lines) and the two waiting (5).
    assert_eq!(exp.value("diskq_avg_lot_lines", &q), 3.0);
    assert_eq!(exp.value("diskq_output_lines", &q), 4.0);
    assert_eq!(exp.value("diskq_consumers_running", &q), 0.0);
    let main = [("queue", label.as_str()), ("consumer", "main")];
    assert_eq!(exp.value("diskq_consumer_running", &main), 0.0);
    for name in exp.types.keys() {
        assert!(name.starts_with("diskq_"), "{name}");
        assert!(exp.helps.contains_key(name), "{name} has no HELP");
    }
}

#[test]
fn promtool_accepts_exposition() {
    let (_q, queue) = sample_queue();
    let out = diskq(&[&"stat", &queue, &"--prometheus"]);
    assert!(out.status.success(), "{}", both(&out));
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("promtool is not installed (Debian package prometheus); skipping");
            return;
        }
        Err(e) => panic!("failed to run promtool: {e}"),
    };
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let checked = child.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics:\n{}",
        both(&checked)
    );
}

#[test]
fn metrics_file_is_rewritten_until_sigterm() {
    let q = TestQueue::new();
    let dir = q.root.path().join("textfile");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("diskq.prom");
    let mut child = Command::new(env!("CARGO_BIN_EXE_diskq"))
        .arg("metrics")
        .arg(&q.queue)
        .arg("--prometheus-file")
        .arg(&file)
        .args(["--interval-ms", "100"])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let ready_lots = || {
        let text = std::fs::read_to_string(&file).ok()?;
        let exp = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        exp.samples
            .iter()
            .find(|s| s.name == "diskq_ready_lots")
            .map(|s| s.value)
    };
    wait_until(
        Duration::from_secs(20),
        "the file shows an empty queue",
        || ready_lots() == Some(0.0),
    );
    write_ready_lot(
        &q.queue,
        "00000000000000000001-h-1-00000000-0",
        b"{\"a\":1}\n",
    );
    wait_until(
        Duration::from_secs(20),
        "the file shows the new lot",
        || ready_lots() == Some(1.0),
    );
    // Only the finished file is visible to a collector that globs *.prom.
    let visible: Vec<String> = ops_support::names_in(&dir)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(visible, ["diskq.prom"]);

    send_signal(child.id(), libc::SIGTERM);
    let status = child.wait().unwrap();
    assert!(status.success(), "diskq metrics exited with {status}");
    let leftovers: Vec<String> = ops_support::names_in(&dir)
        .into_iter()
        .filter(|n| n != "diskq.prom")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn metrics_once_reports_missing_queue_as_down() {
    let q = TestQueue::new();
    let missing = q.root.path().join("no-such-queue");
    let file = q.root.path().join("m.prom");
    let out = diskq(&[
        &"metrics",
        &q.queue,
        &missing,
        &"--prometheus-file",
        &file,
        &"--once",
    ]);
    assert!(out.status.success(), "{}", both(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    let exp = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let up = std::fs::canonicalize(&q.queue)
        .unwrap()
        .display()
        .to_string();
    assert_eq!(exp.value("diskq_up", &[("queue", &up)]), 1.0);
    let down = missing.display().to_string();
    assert_eq!(exp.value("diskq_up", &[("queue", &down)]), 0.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-queue"), "{}", both(&out));
}
