//! The Prometheus text exposition (format 0.0.4) of [`QueueStats`], for
//! `diskq stat --prometheus` and the textfile written by `diskq metrics`.
//!
//! Every metric is a gauge named `diskq_<what>` with a `queue` label, so
//! one file can hold several queues. Samples of one metric stay together
//! under a single `# HELP` and `# TYPE`, as the format requires.

use std::fmt::Write;
use std::time::Duration;

use crate::stat::QueueStats;

/// One queue's snapshot for [`prometheus_text`].
#[derive(Debug, Clone, Copy)]
pub struct PrometheusSample<'a> {
    /// Value of the `queue` label, usually the queue directory.
    pub queue: &'a str,
    /// The snapshot, or `None` when the queue could not be read; then only
    /// `diskq_up` (as 0) and the duration are written for it.
    pub stats: Option<&'a QueueStats>,
    /// Time the snapshot took.
    pub duration: Duration,
}

type Getter = fn(&QueueStats) -> Option<f64>;

/// The gauges of one queue, in exposition order.
const GAUGES: &[(&str, &str, Getter)] = &[
    (
        "diskq_ready_lots",
        "Published lots waiting in incoming/.",
        |s| Some(s.ready_lots as f64),
    ),
    (
        "diskq_ready_lines",
        "Lines in the waiting lots, from their names.",
        |s| Some(s.ready_lines as f64),
    ),
    ("diskq_ready_bytes", "Bytes in the waiting lots.", |s| {
        Some(s.ready_bytes as f64)
    }),
    (
        "diskq_oldest_ready_age_seconds",
        "Age of the oldest waiting lot by modification time; 0 when none waits.",
        |s| Some(s.oldest_ready_age_ms.unwrap_or(0) as f64 / 1000.0),
    ),
    (
        "diskq_part_lots",
        "Lots being written by producers (.part files).",
        |s| Some(s.part_lots as f64),
    ),
    (
        "diskq_processing_lots",
        "Lots claimed by a consumer and not yet archived.",
        |s| Some(s.processing_lots as f64),
    ),
    (
        "diskq_oldest_processing_age_seconds",
        "Time since the oldest claim in processing/ was made; 0 when there is none.",
        |s| Some(s.oldest_processing_age_ms.unwrap_or(0) as f64 / 1000.0),
    ),
    (
        "diskq_quarantined_lots",
        "Lots set aside in quarantine/.",
        |s| Some(s.quarantined_lots as f64),
    ),
    (
        "diskq_archived_lots",
        "Files in archive/, plain and compressed.",
        |s| Some(s.archived_lots as f64),
    ),
    (
        "diskq_archived_lines",
        "Lines in archive/, from the lot names.",
        |s| Some(s.archived_lines as f64),
    ),
    (
        "diskq_throughput_lines_per_second",
        "Lines archived per second over the throughput window.",
        |s| Some(s.lines_per_sec),
    ),
    (
        "diskq_throughput_lots_per_second",
        "Lots archived per second over the throughput window.",
        |s| Some(s.lots_per_sec),
    ),
    (
        "diskq_throughput_bytes_per_second",
        "Uncompressed bytes archived per second over the throughput window.",
        |s| Some(s.bytes_per_sec),
    ),
    (
        "diskq_throughput_window_seconds",
        "Length of the throughput window.",
        |s| Some(s.window_ms as f64 / 1000.0),
    ),
    (
        "diskq_avg_lot_lines",
        "Mean lines per lot over the lots archived within the window and those waiting.",
        |s| Some(s.avg_lot_lines),
    ),
    (
        "diskq_avg_lot_bytes",
        "Mean bytes per lot over the lots archived within the window and those waiting.",
        |s| Some(s.avg_lot_bytes),
    ),
    (
        "diskq_consumers_running",
        "Consumer ids whose lock is held.",
        |s| Some(s.consumers_running() as f64),
    ),
    (
        "diskq_output_files",
        "Finished output files in the consumers' output folders.",
        |s| s.output_counted.then_some(s.output_files as f64),
    ),
    (
        "diskq_output_lines",
        "Lines in the consumers' output files, finished and open.",
        |s| s.output_counted.then_some(s.output_lines as f64),
    ),
];

/// Renders the samples as a Prometheus text exposition.
pub fn prometheus_text(samples: &[PrometheusSample<'_>]) -> String {
    let mut out = String::new();

    family(
        &mut out,
        "diskq_up",
        "1 if the queue could be read, else 0.",
    );
    for sample in samples {
        let up = if sample.stats.is_some() { 1.0 } else { 0.0 };
        series(&mut out, "diskq_up", &[("queue", sample.queue)], up);
    }
    family(
        &mut out,
        "diskq_stat_duration_seconds",
        "Time taken to read the queue.",
    );
    for sample in samples {
        let secs = sample.duration.as_secs_f64();
        series(
            &mut out,
            "diskq_stat_duration_seconds",
            &[("queue", sample.queue)],
            secs,
        );
    }

    for (name, help, get) in GAUGES {
        let values: Vec<(&str, f64)> = samples
            .iter()
            .filter_map(|s| Some((s.queue, get(s.stats?)?)))
            .collect();
        if values.is_empty() {
            continue;
        }
        family(&mut out, name, help);
        for (queue, value) in values {
            series(&mut out, name, &[("queue", queue)], value);
        }
    }

    let name = "diskq_consumer_running";
    let mut header = false;
    for sample in samples {
        let Some(stats) = sample.stats else { continue };
        for consumer in &stats.consumers {
            let Some(running) = consumer.running else {
                continue;
            };
            if !header {
                family(
                    &mut out,
                    name,
                    "1 while a process holds the consumer id's lock, else 0.",
                );
                header = true;
            }
            let labels = [("queue", sample.queue), ("consumer", consumer.id.as_str())];
            series(&mut out, name, &labels, if running { 1.0 } else { 0.0 });
        }
    }
    out
}

fn family(out: &mut String, name: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

fn series(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    out.push('{');
    for (i, (label, text)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(label);
        out.push_str("=\"");
        for c in text.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push_str("} ");
    // Rust prints finite floats without an exponent and integers without
    // a fraction, which Prometheus parses as Go floats.
    let _ = writeln!(out, "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        series(&mut out, "m", &[("queue", "a\"b\\c\nd")], 1.5);
        assert_eq!(out, "m{queue=\"a\\\"b\\\\c\\nd\"} 1.5\n");
    }

    #[test]
    fn failed_sample_writes_only_up_and_duration() {
        let text = prometheus_text(&[PrometheusSample {
            queue: "/q",
            stats: None,
            duration: Duration::from_millis(3),
        }]);
        assert!(text.contains("diskq_up{queue=\"/q\"} 0\n"), "{text}");
        assert!(!text.contains("diskq_ready_lots"), "{text}");
    }
}
