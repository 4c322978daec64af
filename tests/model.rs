//! Property tests: random sequences of producer and consumer actions
//! against a small in-memory model of what must be delivered, and
//! recovery of `.part` lots cut at a random byte.
//!
//! The model is the list of transitions whose push was accepted. Each
//! gets a unique `seq`, so a duplicate or a loss in the output shows up as
//! a `seq` seen twice or never. After the final close and poll, the output
//! contains exactly the accepted transitions.
//!
//! Output lines are compared as text, with the whitespace between tokens
//! removed, against serde_json's compact form: serde_json's default float
//! parser may be one unit in the last place off, so comparing parsed
//! values would report errors that are not in the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use diskq::{
    Consumer, ConsumerOptions, ErrorKind, Producer, ProducerOptions, QueuePaths, Transition,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------

/// How a transition is handed to the producer.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// `Producer::push`.
    Typed,
    /// `Producer::push_json` of serde_json's compact output.
    Compact,
    /// `push_json` of pretty-printed JSON over several lines.
    Pretty,
    /// Pretty-printed with `\r\n` line ends and a trailing `\r\n`.
    PrettyCrlf,
}

/// A push that must be rejected without effect.
#[derive(Debug, Clone, Copy)]
enum BadPush {
    NanObs,
    InfiniteReward,
    NanToken,
    NotAnObject,
    TwoObjects,
}

#[derive(Debug, Clone)]
enum Action {
    Push(Form, Box<Transition>),
    PushBad(BadPush),
    Flush,
    /// Close the producer and open a new one.
    ReopenProducer,
    /// Drop the producer without calling close; the next push opens one.
    DropProducer,
    Poll,
    /// Drop the consumer without calling close; the next poll opens one.
    DropConsumer,
    /// `diskq::recover_queue`, which leaves live handles alone.
    Recover,
}

#[derive(Debug, Clone)]
struct Limits {
    max_lot_lines: u64,
    max_lot_bytes: u64,
    write_buffer_bytes: usize,
    write_through: bool,
    max_output_lines: u64,
}

fn finite_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(0.0f32),
        Just(-0.0f32),
        Just(1.5f32),
        any::<f32>().prop_filter("finite", |x| x.is_finite()),
    ]
}

fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0f64),
        Just(1.0f64),
        any::<f64>().prop_filter("finite", |x| x.is_finite()),
    ]
}

/// Strings that stress escaping: quotes, backslashes, control
/// characters, raw line and paragraph separators, any Unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{0,6}",
        Just("line\nbreak\r\n\"quoted\"\\".to_string()),
        Just("sep\u{2028}para\u{2029}".to_string()),
        Just("\u{0}\u{1f}\u{7f}".to_string()),
        any::<String>(),
    ]
}

fn transition() -> impl Strategy<Value = Transition> {
    (
        prop::collection::vec(finite_f32(), 0..6),
        prop::collection::vec(0u8..=1, 0..6),
        any::<i64>(),
        finite_f64(),
        any::<bool>(),
        text(),
        text(),
    )
        .prop_map(
            |(obs, mask, action, reward, done, game_id, player_id)| Transition {
                obs,
                mask,
                action,
                reward,
                done,
                game_id,
                player_id,
                // Set by the model to a unique number.
                seq: 0,
            },
        )
}

fn action() -> impl Strategy<Value = Action> {
    let form = prop_oneof![
        Just(Form::Typed),
        Just(Form::Compact),
        Just(Form::Pretty),
        Just(Form::PrettyCrlf),
    ];
    let bad = prop_oneof![
        Just(BadPush::NanObs),
        Just(BadPush::InfiniteReward),
        Just(BadPush::NanToken),
        Just(BadPush::NotAnObject),
        Just(BadPush::TwoObjects),
    ];
    prop_oneof![
        12 => (form, transition()).prop_map(|(f, t)| Action::Push(f, Box::new(t))),
        2 => bad.prop_map(Action::PushBad),
        2 => Just(Action::Flush),
        1 => Just(Action::ReopenProducer),
        1 => Just(Action::DropProducer),
        3 => Just(Action::Poll),
        1 => Just(Action::DropConsumer),
        1 => Just(Action::Recover),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    (1u64..20, 64u64..4096, 1usize..2048, any::<bool>(), 1u64..30).prop_map(
        |(max_lot_lines, max_lot_bytes, write_buffer_bytes, write_through, max_output_lines)| {
            Limits {
                max_lot_lines,
                max_lot_bytes,
                write_buffer_bytes,
                write_through,
                max_output_lines,
            }
        },
    )
}

// ---------------------------------------------------------------------
// The system under test and the model
// ---------------------------------------------------------------------

struct World {
    _root: tempfile::TempDir,
    queue: PathBuf,
    out: PathBuf,
    limits: Limits,
    producer: Option<Producer>,
    consumer: Option<Consumer>,

    /// The model: the expected line of every accepted transition, by
    /// `seq`.
    accepted: BTreeMap<u64, String>,
    /// Seqs that a successful flush or close has acknowledged as
    /// published, so the next poll must deliver them.
    acknowledged: u64,
    next_seq: u64,
}

impl World {
    fn new(limits: Limits) -> World {
        let root = tempfile::tempdir().unwrap();
        let queue = root.path().join("q");
        let out = root.path().join("out");
        std::fs::create_dir(&queue).unwrap();
        World {
            _root: root,
            queue,
            out,
            limits,
            producer: None,
            consumer: None,
            accepted: BTreeMap::new(),
            acknowledged: 0,
            next_seq: 0,
        }
    }

    fn producer(&mut self) -> &Producer {
        if self.producer.is_none() {
            let opts = ProducerOptions {
                max_lot_lines: self.limits.max_lot_lines,
                max_lot_bytes: self.limits.max_lot_bytes,
                write_buffer_bytes: self.limits.write_buffer_bytes,
                write_through: self.limits.write_through,
                max_lot_age: None,
                ..ProducerOptions::default()
            };
            self.producer = Some(Producer::open(&self.queue, opts).unwrap());
        }
        self.producer.as_ref().unwrap()
    }

    fn consumer(&mut self) -> &mut Consumer {
        if self.consumer.is_none() {
            let opts = ConsumerOptions {
                output_dir: self.out.clone(),
                max_output_lines: self.limits.max_output_lines,
                recover_interval: None,
                ..ConsumerOptions::default()
            };
            self.consumer = Some(Consumer::open(&self.queue, opts).unwrap());
        }
        self.consumer.as_mut().unwrap()
    }

    /// Marks every accepted transition as acknowledged.
    fn acknowledge_all(&mut self) {
        self.acknowledged = self.next_seq;
    }

    fn apply(&mut self, action: &Action) -> Result<(), TestCaseError> {
        match action {
            Action::Push(form, t) => {
                let mut t = (**t).clone();
                t.seq = self.next_seq;
                let result = match form {
                    Form::Typed => self.producer().push(&t),
                    Form::Compact => {
                        let line = serde_json::to_vec(&t).unwrap();
                        self.producer().push_json(&line)
                    }
                    Form::Pretty => {
                        let line = serde_json::to_vec_pretty(&t).unwrap();
                        self.producer().push_json(&line)
                    }
                    Form::PrettyCrlf => {
                        let pretty = serde_json::to_string_pretty(&t).unwrap();
                        let line = pretty.replace('\n', "\r\n") + "\r\n";
                        self.producer().push_json(line.as_bytes())
                    }
                };
                prop_assert!(result.is_ok(), "{form:?} push of {t:?}: {result:?}");
                self.accepted.insert(t.seq, expected_line(&t));
                self.next_seq += 1;
            }
            Action::PushBad(bad) => {
                let mut t = Transition {
                    obs: vec![1.0, 2.0],
                    mask: vec![1],
                    action: 0,
                    reward: 0.0,
                    done: false,
                    game_id: "bad".into(),
                    player_id: "bad".into(),
                    seq: u64::MAX,
                };
                let producer = self.producer();
                let (result, kind) = match bad {
                    BadPush::NanObs => {
                        t.obs[1] = f32::NAN;
                        (producer.push(&t), ErrorKind::NonFinite)
                    }
                    BadPush::InfiniteReward => {
                        t.reward = f64::INFINITY;
                        (producer.push(&t), ErrorKind::NonFinite)
                    }
                    BadPush::NanToken => (
                        producer.push_json(br#"{"reward":NaN,"seq":18446744073709551615}"#),
                        ErrorKind::NonFinite,
                    ),
                    BadPush::NotAnObject => (producer.push_json(b"[1]"), ErrorKind::InvalidJson),
                    BadPush::TwoObjects => (
                        producer.push_json(br#"{"seq":1}{"seq":2}"#),
                        ErrorKind::InvalidJson,
                    ),
                };
                let err = result.expect_err("a bad push is rejected");
                prop_assert_eq!(err.kind(), kind, "{:?}: {}", bad, err);
            }
            Action::Flush => {
                self.producer().flush().unwrap();
                self.acknowledge_all();
            }
            Action::ReopenProducer => {
                if let Some(p) = self.producer.take() {
                    p.close().unwrap();
                    self.acknowledge_all();
                }
                self.producer();
            }
            Action::DropProducer => {
                // Drop closes, and logs rather than returns an error; with
                // nothing failing, every line is published.
                if self.producer.take().is_some() {
                    self.acknowledge_all();
                }
            }
            Action::Poll => {
                let report = self.consumer().poll().unwrap();
                prop_assert_eq!(report.quarantined, 0);
                self.check_delivered(false)?;
            }
            Action::DropConsumer => {
                self.consumer = None;
            }
            Action::Recover => {
                diskq::recover_queue(&self.queue, false).unwrap();
            }
        }
        Ok(())
    }

    /// Checks the output against the model: no line outside the model,
    /// none twice, every acknowledged one present. With `complete`,
    /// every accepted transition must be there.
    fn check_delivered(&self, complete: bool) -> Result<(), TestCaseError> {
        let delivered = read_output(&self.out)?;
        let mut seen = BTreeMap::new();
        for (t, line) in delivered {
            let seq = t.seq;
            let expected = self.accepted.get(&seq);
            prop_assert!(expected.is_some(), "seq {} was never accepted", seq);
            prop_assert_eq!(
                expected.unwrap(),
                &strip_whitespace(&line),
                "seq {} changed on the way",
                seq
            );
            prop_assert!(
                seen.insert(seq, ()).is_none(),
                "seq {} delivered twice",
                seq
            );
        }
        let must = if complete {
            self.next_seq
        } else {
            self.acknowledged
        };
        for seq in 0..must {
            prop_assert!(seen.contains_key(&seq), "seq {} was lost", seq);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), TestCaseError> {
        if let Some(p) = self.producer.take() {
            p.close().unwrap();
        }
        self.acknowledge_all();
        let consumer = self.consumer();
        consumer.poll().unwrap();
        consumer.close().unwrap();
        self.consumer = None;

        self.check_delivered(true)?;
        let stats = diskq::stat(&self.queue).unwrap();
        prop_assert_eq!(
            stats.ready_lots + stats.part_lots + stats.processing_lots,
            0
        );
        prop_assert_eq!(stats.quarantined_lots, 0);
        prop_assert_eq!(stats.archived_lines, self.next_seq);
        prop_assert_eq!(stats.output_lines, self.next_seq);
        Ok(())
    }
}

/// Returns the line diskq must write for `t`, up to whitespace between
/// tokens: serde_json's compact form with U+2028 and U+2029 escaped.
fn expected_line(t: &Transition) -> String {
    serde_json::to_string(t)
        .unwrap()
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Removes the whitespace between the tokens of a JSON text.
fn strip_whitespace(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

/// Reads the output folder, finished and open files alike, and returns
/// each line with its transition. Every physical line must be one
/// transition in valid UTF-8 with no `\r` and no raw U+2028 or U+2029,
/// and every file must end in a newline.
fn read_output(out: &Path) -> Result<Vec<(Transition, String)>, TestCaseError> {
    let mut lines = Vec::new();
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(lines);
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.display();
        if bytes.is_empty() {
            continue;
        }
        prop_assert_eq!(
            bytes.last(),
            Some(&b'\n'),
            "{} ends in a partial line",
            name
        );
        prop_assert!(!bytes.contains(&b'\r'), "{} contains \\r", name);
        let text = std::str::from_utf8(&bytes);
        prop_assert!(text.is_ok(), "{} is not UTF-8", name);
        let text = text.unwrap();
        prop_assert!(
            !text.contains('\u{2028}') && !text.contains('\u{2029}'),
            "{} contains a raw separator",
            name
        );
        for line in text.lines() {
            let t = serde_json::from_str::<Transition>(line);
            prop_assert!(t.is_ok(), "{}: {:?}: {}", name, t.err(), line);
            lines.push((t.unwrap(), line.to_string()));
        }
    }
    Ok(lines)
}

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn output_matches_model(
        limits in limits(),
        actions in prop::collection::vec(action(), 1..60),
    ) {
        let mut world = World::new(limits);
        for action in &actions {
            world.apply(action)?;
        }
        world.finish()?;
    }
}

// ---------------------------------------------------------------------
// Recovery of a torn `.part`
// ---------------------------------------------------------------------

/// The id of a hand-made `.part`, in the form producers use.
const PART_ID: &str = "00000000000000000007-host-1-0000abcd-0";

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn torn_part_keeps_complete_lines(
        lots in prop::collection::vec(transition(), 1..30),
        cut_fraction in 0.0f64..=1.0,
    ) {
        let root = tempfile::tempdir().unwrap();
        let queue = root.path().join("q");
        let out = root.path().join("out");
        std::fs::create_dir(&queue).unwrap();
        let paths = QueuePaths::prepare(&queue).unwrap();

        // Write the lot as a producer would, one encoded line per
        // transition, then cut it at a random byte.
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for (seq, mut t) in lots.into_iter().enumerate() {
            t.seq = seq as u64;
            diskq::encode_transition(&t.as_ref(), &mut bytes).unwrap();
            ends.push(bytes.len());
        }
        let cut = ((bytes.len() as f64) * cut_fraction) as usize;
        let part = paths.incoming.join(format!("{PART_ID}.part"));
        std::fs::write(&part, &bytes[..cut]).unwrap();

        let complete = ends.iter().filter(|&&end| end <= cut).count();
        let keep = if complete == 0 { 0 } else { ends[complete - 1] };
        let report = diskq::recover_parts(&paths, false).unwrap();
        prop_assert!(!part.exists(), "the .part is gone");
        prop_assert_eq!(report.torn_lines_dropped, u64::from(cut > keep));

        let incoming: Vec<String> = std::fs::read_dir(&paths.incoming)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        if complete == 0 {
            prop_assert!(incoming.is_empty(), "{:?}", incoming);
            prop_assert_eq!(report.published, 0);
            return Ok(());
        }
        let kept_bytes = &bytes[..keep];
        let name = format!("{PART_ID}.{complete}.{:08x}.ready", crc32fast::hash(kept_bytes));
        prop_assert_eq!(&incoming, &vec![name.clone()]);
        prop_assert_eq!(report.published, 1);
        prop_assert_eq!(report.lines, complete as u64);
        prop_assert_eq!(std::fs::read(paths.incoming.join(&name)).unwrap(), kept_bytes);

        let opts = ConsumerOptions {
            output_dir: out.clone(),
            recover_interval: None,
            ..ConsumerOptions::default()
        };
        let mut consumer = Consumer::open(&queue, opts).unwrap();
        let poll = consumer.poll().unwrap();
        consumer.close().unwrap();
        prop_assert_eq!(poll.quarantined, 0);
        let delivered = read_output(&out)?;
        let seqs: Vec<u64> = delivered.iter().map(|(t, _)| t.seq).collect();
        prop_assert_eq!(seqs, (0..complete as u64).collect::<Vec<_>>());
        let mut text = delivered
            .iter()
            .map(|(_, line)| line.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        text.push('\n');
        prop_assert_eq!(text.as_bytes(), kept_bytes, "output differs from the kept lines");
    }
}
