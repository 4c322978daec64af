//! Throughput, latency, scale and memory benchmarks of diskq, each next
//! to a reference measured in the same run. docs/BENCHMARKS.md explains
//! the cases and records a run.
//!
//! ```text
//! cargo bench --bench throughput                       # about 2-3 minutes
//! cargo bench --bench throughput -- --count 1000000    # full size
//! cargo bench --bench throughput -- --only push_typed --repeat 1
//! ```
//!
//! Prints a Markdown table and writes every figure to
//! `target/bench-results.json`.

#[path = "throughput/latency.rs"]
mod latency;
#[path = "throughput/pipeline.rs"]
mod pipeline;
#[path = "throughput/producers.rs"]
mod producers;
#[path = "throughput/report.rs"]
mod report;
#[path = "throughput/scale.rs"]
mod scale;
#[path = "throughput/sys.rs"]
mod sys;
#[path = "throughput/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use report::{Report, Row, Target, Unit};

const USAGE: &str = "\
usage: cargo bench --bench throughput -- [options]

  --count N          transitions per throughput run (default 200000)
  --durable-count N  transitions in the durable runs (default 50000)
  --repeat N         runs of each producer case, best kept (default 3)
  --seed N           workload seed (default 42)
  --rate N           paced push rate of the latency runs, per second (default 20000)
  --latency-secs S   length of each latency run, in seconds (default 5)
  --procs N          producer processes in the multi-process run; 0 skips it
                     (default 4)
  --no-scale         skip the scale part (backlog and archive, about 30 s)
  --scale-lots N     one-line lots in the scale backlog (default 200000)
  --scale-archive N  archived lots next to the backlog (default 200000)
  --ref-lots N       one-line lots in the small comparison queue (default 20000)
  --strace-lots N    one-line lots in each strace run (default 5000)
  --big-lots N       lots of one ~16 MB line for the memory run (default 4)
  --only LIST        comma-separated groups (producer, e2e, durable, latency,
                     memory, scale) or producer case names
  --work-dir DIR     scratch folder (default <target>/bench-work)
  --json FILE        results file (default <target>/bench-results.json)
";

/// Command-line settings of one run.
struct Config {
    count: u64,
    durable_count: u64,
    repeat: usize,
    seed: u64,
    rate: f64,
    latency_secs: f64,
    procs: u64,
    scale: bool,
    scale_lots: u64,
    scale_archive: u64,
    ref_lots: u64,
    strace_lots: u64,
    big_lots: u64,
    only: Option<Vec<String>>,
    work_dir: PathBuf,
    json: PathBuf,
}

impl Config {
    fn parse(args: &[String]) -> Result<Config, String> {
        let target = target_dir();
        let mut c = Config {
            count: 200_000,
            durable_count: 50_000,
            repeat: 3,
            seed: 42,
            rate: 20_000.0,
            latency_secs: 5.0,
            procs: 4,
            scale: true,
            scale_lots: 200_000,
            scale_archive: 200_000,
            ref_lots: 20_000,
            strace_lots: 5_000,
            big_lots: 4,
            only: None,
            work_dir: target.join("bench-work"),
            json: target.join("bench-results.json"),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{arg} expects a value"))
            };
            match arg.as_str() {
                "--bench" => {}
                "--no-scale" => c.scale = false,
                "--count" => c.count = number(&value()?, arg)?,
                "--durable-count" => c.durable_count = number(&value()?, arg)?,
                "--repeat" => c.repeat = number(&value()?, arg)? as usize,
                "--seed" => c.seed = number(&value()?, arg)?,
                "--rate" => c.rate = number(&value()?, arg)? as f64,
                "--latency-secs" => c.latency_secs = number(&value()?, arg)? as f64,
                "--procs" => c.procs = number(&value()?, arg)?,
                "--scale-lots" => c.scale_lots = number(&value()?, arg)?,
                "--scale-archive" => c.scale_archive = number(&value()?, arg)?,
                "--ref-lots" => c.ref_lots = number(&value()?, arg)?,
                "--strace-lots" => c.strace_lots = number(&value()?, arg)?,
                "--big-lots" => c.big_lots = number(&value()?, arg)?,
                "--only" => c.only = Some(value()?.split(',').map(str::to_string).collect()),
                "--work-dir" => c.work_dir = PathBuf::from(value()?),
                "--json" => c.json = PathBuf::from(value()?),
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown option {other}\n\n{USAGE}")),
            }
        }
        if c.count == 0 || c.durable_count == 0 || c.repeat == 0 {
            return Err("--count, --durable-count and --repeat must be above 0".into());
        }
        Ok(c)
    }

    /// Returns true if `name` (a group or a producer case) is selected.
    fn wants(&self, name: &str) -> bool {
        match &self.only {
            Some(only) => only.iter().any(|o| o == name),
            None => true,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "durable_count": self.durable_count,
            "repeat": self.repeat,
            "seed": self.seed,
            "rate": self.rate,
            "latency_secs": self.latency_secs,
            "procs": self.procs,
            "scale": self.scale,
            "scale_lots": self.scale_lots,
            "scale_archive": self.scale_archive,
            "ref_lots": self.ref_lots,
            "strace_lots": self.strace_lots,
            "big_lots": self.big_lots,
            "only": self.only,
        })
    }
}

fn number(text: &str, option: &str) -> Result<u64, String> {
    text.replace('_', "")
        .parse()
        .map_err(|_| format!("{option} expects a whole number, got `{text}`"))
}

/// Returns the target folder, two levels above this executable's
/// `<target>/<profile>/deps`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the benchmark knows its path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Returns the path of the `diskq` command-line tool built next to this
/// benchmark, if the `cli` feature is on.
fn diskq_bin() -> Option<PathBuf> {
    option_env!("CARGO_BIN_EXE_diskq").map(PathBuf::from)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--measure-child") {
        sys::measure_child_main(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some("--child-producer") {
        let [queue, seed, from, to] = &args[1..] else {
            panic!("--child-producer expects QUEUE SEED FROM TO");
        };
        pipeline::child_producer(&pipeline::ChildArgs {
            queue: PathBuf::from(queue),
            seed: seed.parse().expect("seed"),
            from: from.parse().expect("from"),
            to: to.parse().expect("to"),
        });
        return;
    }
    let config = match Config::parse(&args) {
        Ok(c) => c,
        Err(message) if message == USAGE => {
            print!("{USAGE}");
            return;
        }
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let _ = std::fs::remove_dir_all(&config.work_dir);
    std::fs::create_dir_all(&config.work_dir).expect("create the work folder");

    let started = Instant::now();
    let mut machine = machine_facts(&config.work_dir);
    println!("machine: {machine}");
    let mut report = Report::default();
    run_all(&config, &mut report);

    machine["load_average_at_end"] = json!(load_average());
    println!(
        "\nload average (1, 5, 15 min): {} at the start, {} at the end",
        machine["load_average_at_start"], machine["load_average_at_end"]
    );
    println!("\n{}", report.table());
    println!("{}", report.notes());
    report
        .write_json(&config.json, config.to_json(), machine)
        .expect("write the results file");
    println!(
        "wrote {} in {:.0} s",
        config.json.display(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&config.work_dir);
}

fn run_all(config: &Config, report: &mut Report) {
    let work = config.work_dir.as_path();

    // The durable, memory and scale parts build their own data.
    let needs_lines = match &config.only {
        Some(only) => only
            .iter()
            .any(|o| !matches!(o.as_str(), "durable" | "memory" | "scale")),
        None => true,
    };
    if needs_lines {
        run_with_lines(config, report);
    }
    if config.wants("durable") {
        run_durable(config, work, report);
    }
    if let Some(bin) = diskq_bin() {
        if config.wants("memory") {
            run_memory(config, &bin, report);
        }
        if config.scale && config.wants("scale") {
            run_scale(config, &bin, report);
        }
    } else {
        // TODO: without the `cli` feature there is no `diskq` binary to
        // run, so the multi-process, memory and scale parts are skipped.
        println!("the diskq binary was not built (feature `cli`); skipping CLI runs");
    }
}

/// Runs the parts that use the pre-serialized workload: producer cases,
/// end to end and latency.
fn run_with_lines(config: &Config, report: &mut Report) {
    let t = Instant::now();
    let mut pool = workload::pool(config.seed);
    let lines = workload::Lines::build(&mut pool, 0..config.count);
    let mean = lines.bytes() as f64 / lines.len() as f64;
    println!(
        "workload: {} transitions, {:.0} bytes per line, built in {:.1} s",
        lines.len(),
        mean,
        t.elapsed().as_secs_f64()
    );
    report
        .extra
        .insert("mean_line_bytes".into(), json!(mean.round()));
    let work = config.work_dir.as_path();

    let e2e = config.wants("e2e");
    let wants_case = |name: &str| {
        config.wants("producer") || config.wants(name) || (e2e && name == "raw_write_rotate")
    };
    let mut ctx = producers::Ctx::new(work, &lines, &mut pool);
    producers::run(&mut ctx, config.repeat, &wants_case, report);

    if e2e {
        run_e2e(config, &lines, report);
    }
    if config.wants("latency") {
        run_latency(config, &lines, report);
    }
}

/// Runs `run` `repeat` times and keeps the fastest run.
fn best_of(repeat: usize, mut run: impl FnMut() -> pipeline::Run) -> pipeline::Run {
    let mut best: Option<pipeline::Run> = None;
    for _ in 0..repeat {
        let this = run();
        let faster = match &best {
            Some(b) => this.wall < b.wall,
            None => true,
        };
        if faster {
            best = Some(this);
        }
    }
    best.expect("repeat is above 0")
}

fn run_e2e(config: &Config, lines: &workload::Lines, report: &mut Report) {
    let work = config.work_dir.as_path();
    let n = config.count;
    let repeat = config.repeat;

    let variants = [
        (
            "e2e_thread",
            true,
            "Consumer::run (default options: every line parsed)",
        ),
        (
            "e2e_thread_trust",
            false,
            "Consumer::run with full_validation off (lots checked by CRC-32 and line form)",
        ),
    ];
    for (name, full_validation, consumer) in variants {
        println!("end to end: {name}, 1 producer thread + 1 consumer thread, {repeat} runs");
        let pair = pipeline::PairOptions {
            durable: false,
            full_validation,
        };
        let run = best_of(repeat, || {
            let (queue, out) = pipeline::fresh_queue(work, name);
            let run = pipeline::thread_pair(lines, &queue, &out, pair);
            pipeline::verify_exactly_once(&out, lines, n).expect("exactly-once check");
            sys::discard(queue.parent().expect("queue root"), work);
            run
        });
        let mut row = Row::new(name, n as f64 / run.wall.as_secs_f64(), Unit::PerSec)
            .per_cpu(n as f64 / run.cpu_total().as_secs_f64())
            .vs("raw_write_rotate")
            .note(format!(
                "push_json in one thread, {consumer} in another, until every lot was \
                 archived and the consumer closed; {} lots; output checked exactly-once; \
                 best of {repeat}{}",
                run.lots,
                run.cpu_note()
            ));
        if full_validation {
            row = row.target(Target::RatioAtLeast(0.8));
        }
        report.add(row);
    }

    let Some(bin) = diskq_bin() else {
        return;
    };
    let procs = config.procs;
    if procs == 0 {
        return;
    }
    println!("end to end: {procs} producer processes + diskq consume, {repeat} runs");
    let run = best_of(repeat, || {
        let (queue, out) = pipeline::fresh_queue(work, "e2e_procs");
        let run = pipeline::processes(&bin, config.seed, n, procs, &queue, &out);
        pipeline::verify_exactly_once(&out, lines, n).expect("exactly-once check of e2e_procs");
        sys::discard(queue.parent().expect("queue root"), work);
        run
    });
    report.add(
        Row::new(
            &format!("e2e_{procs}proc_cli"),
            n as f64 / run.wall.as_secs_f64(),
            Unit::PerSec,
        )
        .per_cpu(n as f64 / run.cpu_total().as_secs_f64())
        .vs("raw_write_rotate")
        .target(Target::RatioAtLeast(0.8))
        .note(format!(
            "{procs} producer processes (push_json) and `diskq consume --interval-ms 5`, \
             until every lot was archived and the consumer exited on SIGTERM; {} lots; \
             output checked exactly-once; best of {repeat}{}",
            run.lots,
            run.cpu_note()
        )),
    );
}

fn run_durable(config: &Config, work: &Path, report: &mut Report) {
    let n = config.durable_count;
    let lots = pipeline::lots_for(n) as f64;
    let repeat = config.repeat;
    let mut pool = workload::pool(config.seed);
    let lines = workload::Lines::build(&mut pool, 0..n);
    let per_lot = |d: Duration| d.as_secs_f64() * 1e3 / lots;

    // Rounds interleave the cases, so that a burst of disk traffic from
    // other processes hits them alike.
    let mut best = [Duration::MAX; 4];
    let mut cpu_note = String::new();
    for round in 0..repeat {
        println!("durable: round {} of {repeat}", round + 1);
        let dir = work.join("raw_fsync");
        std::fs::create_dir_all(&dir).expect("create the reference folder");
        let took = producers::raw_write_rotate(&lines, &dir, true);
        sys::discard(&dir, work);
        best[0] = best[0].min(took);

        let (queue, out) = pipeline::fresh_queue(work, "durable_producer");
        let opts = diskq::ProducerOptions {
            durable: true,
            ..producers::lot_options()
        };
        let producer = diskq::Producer::open(&queue, opts).expect("open producer");
        let start = Instant::now();
        for k in 0..lines.len() {
            producer.push_json(lines.body(k)).expect("push_json");
        }
        producer.close().expect("close producer");
        best[1] = best[1].min(start.elapsed());

        // The lots the durable producer left make a backlog, which a
        // durable consumer drains in groups.
        let opts = pipeline::consumer_options(&out, true);
        let start = Instant::now();
        let mut consumer = diskq::Consumer::open(&queue, opts).expect("open consumer");
        let drained = consumer.poll().expect("poll");
        consumer.close().expect("close consumer");
        best[3] = best[3].min(start.elapsed());
        assert_eq!(drained.lots as f64, lots, "the drain left lots waiting");
        pipeline::verify_exactly_once(&out, &lines, n)
            .expect("exactly-once check of durable_drain");
        sys::discard(queue.parent().expect("queue root"), work);

        let (queue, out) = pipeline::fresh_queue(work, "durable_e2e");
        let pair = pipeline::PairOptions {
            durable: true,
            full_validation: true,
        };
        let run = pipeline::thread_pair(&lines, &queue, &out, pair);
        pipeline::verify_exactly_once(&out, &lines, n).expect("exactly-once check of durable_e2e");
        if run.wall < best[2] {
            best[2] = run.wall;
            cpu_note = run.cpu_note();
        }
        sys::discard(queue.parent().expect("queue root"), work);
    }

    report.add(
        Row::new("raw_write_rotate_fsync", per_lot(best[0]), Unit::MsPerLot).note(format!(
            "reference: raw_write_rotate plus fsync of each lot, rename, fsync of the folder; \
             best of {repeat}"
        )),
    );
    report.add(
        Row::new("durable_producer", per_lot(best[1]), Unit::MsPerLot)
            .vs("raw_write_rotate_fsync")
            .note(format!(
                "push_json with durable=true, no consumer; best of {repeat}"
            )),
    );
    report.add(
        Row::new("durable_e2e", per_lot(best[2]), Unit::MsPerLot)
            .vs("raw_write_rotate_fsync")
            .target(Target::RatioAtMost(1.10))
            .note(format!(
                "durable producer and durable consumer threads, wall time per lot until \
                 the consumer closed; output checked exactly-once; best of {repeat}{cpu_note}"
            )),
    );
    report.add(
        Row::new("durable_drain", per_lot(best[3]), Unit::MsPerLot)
            .vs("raw_write_rotate_fsync")
            .note(format!(
                "durable Consumer::open, one poll and close over the {lots} lots that \
                 durable_producer left, claimed in groups; output checked exactly-once; \
                 best of {repeat}"
            )),
    );
}

fn run_latency(config: &Config, lines: &workload::Lines, report: &mut Report) {
    let work = config.work_dir.as_path();
    let interval = diskq::DEFAULT_POLL_INTERVAL;
    for (suffix, watch) in [("", true), ("_nowatch", false)] {
        let setup = if watch {
            "inotify watch, default options"
        } else {
            "watch off, polling only"
        };
        println!(
            "latency: {} transitions/s for {} s, consumer with {setup}",
            config.rate, config.latency_secs
        );
        let l = latency::paced(lines, work, config.rate, config.latency_secs, watch);
        let (c50, c99, cmax) = latency::percentiles(&l.rotation_to_claim);
        let (o50, o99, omax) = latency::percentiles(&l.push_to_output);
        let setup = format!(
            "{:.0} transitions/s reached; consumer with {setup}, poll interval {interval:?}",
            l.achieved_rate
        );
        let mut p99 =
            Row::new(&format!("rotation_to_claim_p99{suffix}"), c99, Unit::Ms).note(format!(
                "{setup}; from the push that rotates the lot to the inotify event of its claim"
            ));
        if watch {
            p99 = p99.target(Target::Below(5.0));
        }
        report.add(Row::new(
            &format!("rotation_to_claim_p50{suffix}"),
            c50,
            Unit::Ms,
        ));
        report.add(p99);
        report.add(Row::new(
            &format!("rotation_to_claim_max{suffix}"),
            cmax,
            Unit::Ms,
        ));
        report.add(
            Row::new(&format!("push_to_output_p50{suffix}"), o50, Unit::Ms).note(format!(
                "{setup}; from each push to the inotify event of its lot's archiving"
            )),
        );
        report.add(Row::new(
            &format!("push_to_output_p99{suffix}"),
            o99,
            Unit::Ms,
        ));
        report.add(Row::new(
            &format!("push_to_output_max{suffix}"),
            omax,
            Unit::Ms,
        ));
        let key = if watch {
            "latency_watch"
        } else {
            "latency_nowatch"
        };
        report.extra.insert(key.into(), latency::summary(&l));
    }
}

fn run_memory(config: &Config, bin: &Path, report: &mut Report) {
    println!("memory: {} lots of one ~16 MB line", config.big_lots);
    let q = scale::ScaleQueue::new(&config.work_dir, "big_lines");
    scale::fill_big_lots(&q.queue, config.big_lots, 16_000_000);
    let drain = scale::drain_once(bin, &q.queue, &q.out);
    report.add(
        Row::new("consumer_rss_16mb_lines", drain.rss_mib(), Unit::MiB)
            .target(Target::Below(64.0))
            .note(format!(
                "ru_maxrss of `diskq consume --once` draining {} lots of one 16,000,000-byte line",
                drain.lots
            )),
    );
    q.remove();
}

fn run_scale(config: &Config, bin: &Path, report: &mut Report) {
    let work = config.work_dir.as_path();
    println!("scale: small queue of {} lots", config.ref_lots);
    let small = scale::ScaleQueue::new(work, "scale_small");
    scale::fill_small_lots(&small.queue, config.ref_lots, 0);
    let empty = scale::drain_once(bin, &small.queue, &small.out);

    let t = Instant::now();
    println!(
        "scale: building {} archived and {} waiting lots",
        config.scale_archive, config.scale_lots
    );
    let big = scale::ScaleQueue::new(work, "scale_big");
    scale::fill_archive(&big.queue, config.scale_archive);
    scale::fill_small_lots(&big.queue, config.scale_lots, 0);
    println!(
        "scale: built in {:.1} s, draining",
        t.elapsed().as_secs_f64()
    );
    let deep = scale::drain_once(bin, &big.queue, &big.out);

    let size = format!(
        "{} waiting + {} archived",
        config.scale_lots, config.scale_archive
    );
    report.add(
        Row::new("first_claim_small", ms(empty.first_claim), Unit::Ms).note(format!(
            "{} waiting lots, start of `diskq consume --once` to its first claim",
            empty.lots
        )),
    );
    report.add(
        Row::new("first_claim_backlog", ms(deep.first_claim), Unit::Ms)
            .vs("first_claim_small")
            .note(size.clone()),
    );
    report.add(
        Row::new("drain_small", empty.lots_per_sec(), Unit::LotsPerSec)
            .per_cpu(empty.lots_per_cpu_sec())
            .note(
                "one-line lots, first claim to exit of `diskq consume --once`; \
                 per CPU-s counts the process's whole CPU time",
            ),
    );
    report.add(
        Row::new("drain_backlog", deep.lots_per_sec(), Unit::LotsPerSec)
            .per_cpu(deep.lots_per_cpu_sec())
            .vs("drain_small")
            .target(Target::RatioAtLeast(0.5))
            .note(size.clone()),
    );
    report.add(
        Row::new(
            "cpu_per_lot_small",
            empty.cpu_us_per_lot(),
            Unit::CpuUsPerLot,
        )
        .note("getrusage of the child: user + system time over its whole run"),
    );
    report.add(
        Row::new(
            "cpu_per_lot_backlog",
            deep.cpu_us_per_lot(),
            Unit::CpuUsPerLot,
        )
        .vs("cpu_per_lot_small"),
    );
    report.add(
        Row::new("consumer_rss_backlog", deep.rss_mib(), Unit::MiB)
            .target(Target::Below(64.0))
            .note(format!(
                "ru_maxrss of `diskq consume --once` draining {size}"
            )),
    );

    println!("scale: strace runs of {} lots", config.strace_lots);
    let mut calls = Vec::new();
    for (name, q) in [("small", &small), ("backlog", &big)] {
        scale::fill_small_lots(&q.queue, config.strace_lots, 1_000_000_000);
        let file = work.join(format!("strace_{name}.txt"));
        match scale::strace_once(bin, &q.queue, &q.out, &file) {
            Some(s) => calls.push((name, s)),
            None => println!("strace is missing or cannot trace here; no system call counts"),
        }
    }
    for (name, s) in &calls {
        let mut row = Row::new(
            &format!("syscalls_per_lot_{name}"),
            s.per_lot(),
            Unit::CallsPerLot,
        )
        .note(format!(
            "strace -f -c of `diskq consume --once` over {} lots",
            s.lots
        ));
        if *name == "backlog" {
            row = row.vs("syscalls_per_lot_small");
        }
        report.add(row);
        report.extra.insert(format!("syscalls_{name}"), s.summary());
    }
    small.remove();
    big.remove();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Returns the 1, 5 and 15 minute load averages from `/proc/loadavg`,
/// which show how busy the machine was around a run.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Facts about the machine the figures come from.
fn machine_facts(work: &Path) -> Value {
    let run = |cmd: &str, args: &[&str]| -> String {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let cpu = run("lscpu", &[])
        .lines()
        .find_map(|l| l.strip_prefix("Model name:").map(|m| m.trim().to_string()))
        .unwrap_or_default();
    let work_str = work.to_string_lossy().into_owned();
    let fs = run("df", &["-T", &work_str])
        .lines()
        .nth(1)
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    json!({
        "load_average_at_start": load_average(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": cpu,
        "kernel": run("uname", &["-r"]),
        "filesystem": fs,
    })
}
