//! Producer-side throughput: diskq's pushes next to the references and
//! peer queues doing the same work on the same transitions.
//!
//! Every case writes the whole workload into a fresh folder, which is
//! removed afterwards. The timed part is the loop plus the final close
//! or flush, never the setup.

use std::ffi::CString;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use diskq::ffi::{
    dq_producer, dq_producer_close, dq_producer_free, dq_producer_open, dq_producer_options,
    dq_producer_options_default, dq_producer_push, dq_producer_push_transition, dq_transition,
    DQ_STATUS_OK,
};
use diskq::{Producer, ProducerOptions, Transition, TransitionRef};

use crate::report::{Report, Row, Target, Unit};
use crate::sys;
use crate::workload::{transition, Lines, POOL};

/// Lines per lot, in diskq and in the references.
pub const LOT_LINES: u64 = 500;
/// Size of the raw references' write buffer.
const RAW_BUFFER: usize = 128 * 1024;

/// diskq producer options for the benchmarks: lots rotate every 500
/// lines, like the references. The byte limit (512 KiB by default) is
/// raised so that it does not cut 1.4 KB lines into lots of about 360.
pub fn lot_options() -> ProducerOptions {
    ProducerOptions {
        max_lot_lines: LOT_LINES,
        max_lot_bytes: 4 << 20,
        ..ProducerOptions::default()
    }
}

/// Inputs shared by the producer cases.
pub struct Ctx<'a> {
    pub work: &'a Path,
    pub lines: &'a Lines,
    pub pool: &'a mut [Transition],
    /// NUL-terminated copies of each pool entry's ids, as a C caller
    /// keeps them.
    pub c_ids: Vec<(CString, CString)>,
}

impl<'a> Ctx<'a> {
    pub fn new(work: &'a Path, lines: &'a Lines, pool: &'a mut [Transition]) -> Ctx<'a> {
        let c_ids = pool
            .iter()
            .map(|t| {
                let g = CString::new(t.game_id.as_str()).expect("ids hold no NUL");
                let p = CString::new(t.player_id.as_str()).expect("ids hold no NUL");
                (g, p)
            })
            .collect();
        Ctx {
            work,
            lines,
            pool,
            c_ids,
        }
    }

    fn n(&self) -> u64 {
        self.lines.len() as u64
    }

    fn fresh_dir(&self, name: &str) -> PathBuf {
        let dir = self.work.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the work folder is writable");
        dir
    }
}

/// One producer-side case: its row name, reference, target and body.
struct Case {
    name: &'static str,
    reference: Option<&'static str>,
    target: Option<Target>,
    note: &'static str,
    run: fn(&mut Ctx, &Path) -> Duration,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "raw_write_rotate",
            reference: None,
            target: None,
            note: "reference: pre-serialized lines, 128 KiB BufWriter, rename every 500 lines",
            run: |c, d| raw_write_rotate(c.lines, d, false),
        },
        Case {
            name: "serde_json_serialize",
            reference: None,
            target: None,
            note: "reference: serde_json::to_writer into a reused Vec, no I/O",
            run: serde_json_serialize,
        },
        Case {
            name: "serde_json_write_rotate",
            reference: None,
            target: None,
            note: "reference: serde_json into a 128 KiB BufWriter, rename every 500 lines",
            run: serde_json_write_rotate,
        },
        Case {
            name: "yaque_try_send",
            reference: None,
            target: None,
            note: "peer: yaque 0.6 Sender::try_send per line (one write per send)",
            run: yaque_try_send,
        },
        Case {
            name: "queue_file_add",
            reference: None,
            target: None,
            note: "peer: queue-file 2 QueueFile::add per line, sync_writes off",
            run: queue_file_add,
        },
        Case {
            name: "encode_transition",
            reference: Some("serde_json_serialize"),
            target: None,
            note: "diskq's encoder alone into a reused Vec, no I/O",
            run: encode_only,
        },
        Case {
            name: "push_typed",
            reference: Some("serde_json_write_rotate"),
            target: Some(Target::RatioAtLeast(1.3)),
            note: "Producer::push(&Transition), defaults except 500 lines per lot",
            run: push_typed,
        },
        Case {
            name: "push_json",
            reference: Some("yaque_try_send"),
            target: Some(Target::RatioAtLeast(1.0)),
            note: "Producer::push_json of the pre-serialized lines without their newline",
            run: |c, d| push_json(c, d, false, false),
        },
        Case {
            name: "push_json_newline",
            reference: Some("push_json"),
            target: None,
            note: "push_json with each line's trailing newline included",
            run: |c, d| push_json(c, d, true, false),
        },
        Case {
            name: "push_json_write_through",
            reference: Some("yaque_try_send"),
            target: None,
            note: "push_json with write_through: one write per push, like yaque",
            run: |c, d| push_json(c, d, false, true),
        },
        Case {
            name: "push_ref_native",
            reference: None,
            target: None,
            note: "Producer::push_ref from borrowed fields, the native twin of the C call",
            run: push_ref_native,
        },
        Case {
            name: "ffi_push_transition",
            reference: Some("push_ref_native"),
            target: Some(Target::RatioAtLeast(0.95)),
            note: "dq_producer_push_transition called through the exported extern fn",
            run: ffi_push_transition,
        },
        Case {
            name: "ffi_push",
            reference: Some("push_json"),
            target: Some(Target::RatioAtLeast(0.95)),
            note: "dq_producer_push of the lines without newline, through the extern fn",
            run: ffi_push,
        },
    ]
}

/// Runs every case `repeat` times, interleaved so that noise from other
/// processes hits all of them alike, and reports the best run of each.
pub fn run(ctx: &mut Ctx, repeat: usize, only: &dyn Fn(&str) -> bool, report: &mut Report) {
    let cases: Vec<Case> = cases().into_iter().filter(|c| only(c.name)).collect();
    if cases.is_empty() {
        return;
    }
    let mut best = vec![Duration::MAX; cases.len()];
    let mut best_cpu = vec![Duration::MAX; cases.len()];
    for round in 0..repeat {
        println!("producer cases, round {} of {repeat}", round + 1);
        for (i, case) in cases.iter().enumerate() {
            let dir = ctx.fresh_dir(case.name);
            let cpu_before = sys::thread_cpu();
            let took = (case.run)(ctx, &dir);
            let cpu = sys::thread_cpu() - cpu_before;
            sys::discard(&dir, ctx.work);
            best[i] = best[i].min(took);
            best_cpu[i] = best_cpu[i].min(cpu);
        }
    }
    let n = ctx.n() as f64;
    for ((case, took), cpu) in cases.iter().zip(best).zip(best_cpu) {
        let mut row = Row::new(case.name, n / took.as_secs_f64(), Unit::PerSec)
            .per_cpu(n / cpu.as_secs_f64())
            .note(format!("{}; best of {repeat}", case.note));
        if let Some(reference) = case.reference {
            row = row.vs(reference);
        }
        if let Some(target) = case.target {
            row = row.target(target);
        }
        report.add(row);
    }
}

/// Writes pre-serialized lines through a 128 KiB buffer into `.part`
/// files, each renamed to `.ready` after 500 lines. With `fsync`, each
/// lot is synced before its rename and the folder after it.
pub fn raw_write_rotate(lines: &Lines, dir: &Path, fsync: bool) -> Duration {
    let start = Instant::now();
    let mut lot = RawLot::default();
    for k in 0..lines.len() {
        lot.writer(dir).write_all(lines.line(k)).expect("write lot");
        lot.lines += 1;
        if lot.lines == LOT_LINES {
            lot.publish(dir, fsync);
        }
    }
    lot.publish(dir, fsync);
    start.elapsed()
}

/// The open file of a raw reference.
#[derive(Default)]
struct RawLot {
    writer: Option<BufWriter<File>>,
    number: u64,
    lines: u64,
}

impl RawLot {
    fn part_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{:010}.part", self.number))
    }

    fn writer(&mut self, dir: &Path) -> &mut BufWriter<File> {
        if self.writer.is_none() {
            let file = File::create(self.part_path(dir)).expect("create lot");
            self.writer = Some(BufWriter::with_capacity(RAW_BUFFER, file));
        }
        self.writer.as_mut().expect("opened above")
    }

    fn publish(&mut self, dir: &Path, fsync: bool) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        let file = writer.into_inner().expect("flush lot");
        if fsync {
            file.sync_data().expect("fsync lot");
        }
        drop(file);
        let ready = dir.join(format!("{:010}.ready", self.number));
        std::fs::rename(self.part_path(dir), ready).expect("rename lot");
        if fsync {
            sys::sync_dir(dir).expect("fsync folder");
        }
        self.number += 1;
        self.lines = 0;
    }
}

fn serde_json_serialize(ctx: &mut Ctx, _dir: &Path) -> Duration {
    let n = ctx.n();
    let mut buf = Vec::with_capacity(4096);
    let start = Instant::now();
    for i in 0..n {
        buf.clear();
        serde_json::to_writer(&mut buf, transition(ctx.pool, i)).expect("serialize");
        black_box(&buf);
    }
    start.elapsed()
}

fn encode_only(ctx: &mut Ctx, _dir: &Path) -> Duration {
    let n = ctx.n();
    let mut buf = Vec::with_capacity(4096);
    let start = Instant::now();
    for i in 0..n {
        buf.clear();
        diskq::encode_transition(&transition(ctx.pool, i).as_ref(), &mut buf).expect("encode");
        black_box(&buf);
    }
    start.elapsed()
}

fn serde_json_write_rotate(ctx: &mut Ctx, dir: &Path) -> Duration {
    let n = ctx.n();
    let start = Instant::now();
    let mut lot = RawLot::default();
    for i in 0..n {
        let w = lot.writer(dir);
        serde_json::to_writer(&mut *w, transition(ctx.pool, i)).expect("serialize");
        w.write_all(b"\n").expect("write lot");
        lot.lines += 1;
        if lot.lines == LOT_LINES {
            lot.publish(dir, false);
        }
    }
    lot.publish(dir, false);
    start.elapsed()
}

fn yaque_try_send(ctx: &mut Ctx, dir: &Path) -> Duration {
    let mut sender = yaque::Sender::open(dir.join("q")).expect("open yaque queue");
    let start = Instant::now();
    for k in 0..ctx.lines.len() {
        if sender.try_send(ctx.lines.body(k)).is_err() {
            panic!("yaque try_send failed at line {k}");
        }
    }
    drop(sender);
    start.elapsed()
}

fn queue_file_add(ctx: &mut Ctx, dir: &Path) -> Duration {
    let mut qf = queue_file::QueueFile::open(dir.join("q.qf")).expect("open queue file");
    qf.set_sync_writes(false);
    let start = Instant::now();
    for k in 0..ctx.lines.len() {
        qf.add(ctx.lines.body(k)).expect("queue-file add");
    }
    drop(qf);
    start.elapsed()
}

fn push_typed(ctx: &mut Ctx, dir: &Path) -> Duration {
    let n = ctx.n();
    let producer = Producer::open(dir, lot_options()).expect("open producer");
    let start = Instant::now();
    for i in 0..n {
        producer.push(transition(ctx.pool, i)).expect("push");
    }
    producer.close().expect("close producer");
    start.elapsed()
}

fn push_json(ctx: &mut Ctx, dir: &Path, newline: bool, write_through: bool) -> Duration {
    let opts = ProducerOptions {
        write_through,
        ..lot_options()
    };
    let producer = Producer::open(dir, opts).expect("open producer");
    let lines = ctx.lines;
    let start = Instant::now();
    for k in 0..lines.len() {
        let line = if newline {
            lines.line(k)
        } else {
            lines.body(k)
        };
        producer.push_json(line).expect("push_json");
    }
    producer.close().expect("close producer");
    start.elapsed()
}

fn push_ref_native(ctx: &mut Ctx, dir: &Path) -> Duration {
    let n = ctx.n();
    let producer = Producer::open(dir, lot_options()).expect("open producer");
    let start = Instant::now();
    for i in 0..n {
        let t = transition(ctx.pool, i);
        let r = TransitionRef {
            obs: &t.obs,
            mask: &t.mask,
            action: t.action,
            reward: t.reward,
            done: t.done,
            game_id: &t.game_id,
            player_id: &t.player_id,
            seq: t.seq,
        };
        producer.push_ref(black_box(&r)).expect("push_ref");
    }
    producer.close().expect("close producer");
    start.elapsed()
}

/// Opens a producer through the C ABI with the same options as
/// [`lot_options`].
fn ffi_open(dir: &Path) -> *mut dq_producer {
    let mut opts = std::mem::MaybeUninit::uninit();
    // SAFETY: the out-pointer is valid for one options struct.
    let status = unsafe {
        dq_producer_options_default(
            opts.as_mut_ptr(),
            std::mem::size_of::<dq_producer_options>(),
        )
    };
    assert_eq!(status, DQ_STATUS_OK);
    // SAFETY: written by the successful call above.
    let mut opts = unsafe { opts.assume_init() };
    let native = lot_options();
    opts.max_lot_lines = native.max_lot_lines;
    opts.max_lot_bytes = native.max_lot_bytes;
    let c_dir =
        CString::new(dir.as_os_str().as_bytes()).expect("the work path contains no NUL byte");
    let mut handle = std::ptr::null_mut();
    // SAFETY: c_dir is NUL-terminated, opts and handle are valid.
    let status = unsafe { dq_producer_open(c_dir.as_ptr(), &opts, &mut handle) };
    assert_eq!(status, DQ_STATUS_OK, "dq_producer_open");
    handle
}

fn ffi_close(handle: *mut dq_producer) {
    // SAFETY: handle is live and used by this thread only; freed once.
    unsafe {
        assert_eq!(dq_producer_close(handle), DQ_STATUS_OK, "dq_producer_close");
        dq_producer_free(handle);
    }
}

fn ffi_push_transition(ctx: &mut Ctx, dir: &Path) -> Duration {
    let n = ctx.n();
    let handle = ffi_open(dir);
    let start = Instant::now();
    for i in 0..n {
        let (game_id, player_id) = &ctx.c_ids[(i % POOL as u64) as usize];
        let t = transition(ctx.pool, i);
        let c = dq_transition {
            obs: t.obs.as_ptr(),
            obs_len: t.obs.len(),
            mask: t.mask.as_ptr(),
            mask_len: t.mask.len(),
            action: t.action,
            reward: t.reward,
            done: u8::from(t.done),
            game_id: game_id.as_ptr(),
            player_id: player_id.as_ptr(),
            seq: t.seq,
        };
        // SAFETY: the handle is live; c's pointers are valid for their
        // lengths and the ids are NUL-terminated, for the whole call.
        let status = unsafe { dq_producer_push_transition(handle, black_box(&c)) };
        assert_eq!(status, DQ_STATUS_OK, "dq_producer_push_transition");
    }
    ffi_close(handle);
    start.elapsed()
}

fn ffi_push(ctx: &mut Ctx, dir: &Path) -> Duration {
    let handle = ffi_open(dir);
    let lines = ctx.lines;
    let start = Instant::now();
    for k in 0..lines.len() {
        let body = lines.body(k);
        // SAFETY: the handle is live and body is readable for its length.
        let status = unsafe { dq_producer_push(handle, body.as_ptr(), body.len()) };
        assert_eq!(status, DQ_STATUS_OK, "dq_producer_push");
    }
    ffi_close(handle);
    start.elapsed()
}
