//! The results table: every figure with its reference, the ratio between
//! them, and the target it is held to.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

/// Unit of a figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    /// Transitions per second.
    PerSec,
    /// Lots per second.
    LotsPerSec,
    /// Milliseconds per lot.
    MsPerLot,
    /// Microseconds of CPU time per lot.
    CpuUsPerLot,
    /// System calls per lot.
    CallsPerLot,
    /// Milliseconds.
    Ms,
    /// Mebibytes.
    MiB,
}

impl Unit {
    fn label(self) -> &'static str {
        match self {
            Unit::PerSec => "transitions/s",
            Unit::LotsPerSec => "lots/s",
            Unit::MsPerLot => "ms/lot",
            Unit::CpuUsPerLot => "CPU us/lot",
            Unit::CallsPerLot => "syscalls/lot",
            Unit::Ms => "ms",
            Unit::MiB => "MiB",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Unit::PerSec => "transitions_per_s",
            Unit::LotsPerSec => "lots_per_s",
            Unit::MsPerLot => "ms_per_lot",
            Unit::CpuUsPerLot => "cpu_us_per_lot",
            Unit::CallsPerLot => "syscalls_per_lot",
            Unit::Ms => "ms",
            Unit::MiB => "mib",
        }
    }
}

/// The bar a figure is held to.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// value / reference must be at least this.
    RatioAtLeast(f64),
    /// value / reference must be at most this.
    RatioAtMost(f64),
    /// The value itself must be below this.
    Below(f64),
}

impl Target {
    fn describe(self, unit: Unit) -> String {
        match self {
            Target::RatioAtLeast(r) => format!(">= {r:.2}x"),
            Target::RatioAtMost(r) => format!("<= {r:.2}x"),
            Target::Below(v) => format!("< {v} {}", unit.label()),
        }
    }

    fn met(self, value: f64, ratio: Option<f64>) -> Option<bool> {
        match self {
            Target::RatioAtLeast(r) => ratio.map(|x| x >= r),
            Target::RatioAtMost(r) => ratio.map(|x| x <= r),
            Target::Below(v) => Some(value < v),
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub value: f64,
    pub unit: Unit,
    /// The same work per second of CPU time (user plus system) of the
    /// measured threads or processes, for rates. Load from other
    /// processes changes it far less than the wall-time value.
    pub per_cpu: Option<f64>,
    /// Name of the row this one is compared with.
    pub reference: Option<String>,
    pub target: Option<Target>,
    /// Method behind the figure, in a few words.
    pub note: String,
}

impl Row {
    pub fn new(name: &str, value: f64, unit: Unit) -> Row {
        Row {
            name: name.to_string(),
            value,
            unit,
            per_cpu: None,
            reference: None,
            target: None,
            note: String::new(),
        }
    }

    pub fn per_cpu(mut self, rate: f64) -> Row {
        self.per_cpu = Some(rate);
        self
    }

    pub fn vs(mut self, reference: &str) -> Row {
        self.reference = Some(reference.to_string());
        self
    }

    pub fn target(mut self, target: Target) -> Row {
        self.target = Some(target);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }
}

/// All rows of one run, in the order they were measured.
#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
    /// Extra facts for the JSON file (strace tables, latency samples).
    pub extra: serde_json::Map<String, Value>,
}

struct Evaluated<'a> {
    row: &'a Row,
    ratio: Option<f64>,
    /// Ratio of the per-CPU-second figures.
    cpu_ratio: Option<f64>,
    met: Option<bool>,
}

impl Report {
    pub fn add(&mut self, row: Row) {
        println!(
            "  measured {:<34} {:>14} {}",
            row.name,
            format_value(row.value, row.unit),
            row.unit.label()
        );
        self.rows.push(row);
    }

    fn evaluate(&self) -> Vec<Evaluated<'_>> {
        self.rows
            .iter()
            .map(|row| {
                let reference = row
                    .reference
                    .as_ref()
                    .and_then(|name| self.rows.iter().find(|r| &r.name == name));
                let ratio = reference
                    .filter(|r| r.value > 0.0)
                    .map(|r| row.value / r.value);
                let cpu_ratio = match (row.per_cpu, reference.and_then(|r| r.per_cpu)) {
                    (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                    _ => None,
                };
                let met = row.target.and_then(|t| t.met(row.value, ratio));
                Evaluated {
                    row,
                    ratio,
                    cpu_ratio,
                    met,
                }
            })
            .collect()
    }

    /// Renders the table as Markdown, for the terminal and the docs.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "| name | value | unit | per CPU-s | reference | ratio | CPU ratio | target | met |\n",
        );
        out.push_str("|---|---:|---|---:|---|---:|---:|---|---|\n");
        for e in self.evaluate() {
            let row = e.row;
            let ratio = e.ratio.map_or("-".to_string(), |r| format!("{r:.2}x"));
            let cpu_ratio = e.cpu_ratio.map_or("-".to_string(), |r| format!("{r:.2}x"));
            let per_cpu = row
                .per_cpu
                .map_or("-".to_string(), |v| format_value(v, row.unit));
            let target = row.target.map_or("-".to_string(), |t| t.describe(row.unit));
            let met = match e.met {
                Some(true) => "met",
                Some(false) => "NOT MET",
                None if row.target.is_some() => "no reference",
                None => "-",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {per_cpu} | {} | {ratio} | {cpu_ratio} | {target} | {met} |",
                row.name,
                format_value(row.value, row.unit),
                row.unit.label(),
                row.reference.as_deref().unwrap_or("-"),
            );
        }
        out
    }

    /// Writes every row, the configuration and the extras as JSON.
    pub fn write_json(&self, path: &Path, config: Value, machine: Value) -> std::io::Result<()> {
        let rows: Vec<Value> = self
            .evaluate()
            .iter()
            .map(|e| {
                json!({
                    "name": e.row.name,
                    "value": e.row.value,
                    "unit": e.row.unit.key(),
                    "per_cpu_second": e.row.per_cpu,
                    "reference": e.row.reference,
                    "ratio": e.ratio,
                    "cpu_ratio": e.cpu_ratio,
                    "target": e.row.target.map(|t| t.describe(e.row.unit)),
                    "met": e.met,
                    "note": e.row.note,
                })
            })
            .collect();
        let doc = json!({
            "config": config,
            "machine": machine,
            "results": rows,
            "extra": Value::Object(self.extra.clone()),
        });
        let text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
        std::fs::write(path, text + "\n")
    }

    /// Lists the notes of the rows that have one.
    pub fn notes(&self) -> String {
        let mut out = String::new();
        for row in self.rows.iter().filter(|r| !r.note.is_empty()) {
            let _ = writeln!(out, "- {}: {}", row.name, row.note);
        }
        out
    }
}

fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::PerSec | Unit::LotsPerSec => group_thousands(value.round() as u64),
        Unit::CallsPerLot => format!("{value:.1}"),
        Unit::CpuUsPerLot => format!("{value:.1}"),
        Unit::MsPerLot | Unit::Ms | Unit::MiB => format!("{value:.2}"),
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
