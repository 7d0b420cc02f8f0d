//! The results table: one row per workload and metric, a column per registry, the ratio of
//! Berth to the reference, and the targets with whether they were met.

use serde_json::json;

use crate::servers::Kind;

const KINDS: [Kind; 3] = [Kind::Reference, Kind::Berth, Kind::BerthToken];

/// Which way is better.
#[derive(Debug, Clone, Copy)]
pub enum Better {
    /// More is better (throughput).
    Higher,
    /// Less is better (latency, CPU, memory).
    Lower,
}

/// A target for some of the columns.
#[derive(Debug, Clone)]
pub enum Target {
    /// At least this much.
    AtLeast(f64),
    /// At most this much.
    AtMost(f64),
    /// Applies to these columns only.
    For(Box<Target>, Vec<Kind>),
}

impl Target {
    /// This target, for the columns `kinds` only.
    pub fn for_kinds(self, kinds: &[Kind]) -> Self {
        Self::For(Box::new(self), kinds.to_vec())
    }

    fn met(&self, kind: Kind, v: f64) -> Option<bool> {
        match self {
            Self::AtLeast(t) => Some(v >= *t),
            Self::AtMost(t) => Some(v <= *t),
            Self::For(t, kinds) => kinds.contains(&kind).then(|| t.met(kind, v)).flatten(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::AtLeast(t) => format!("≥ {}", number(*t)),
            Self::AtMost(t) => format!("≤ {}", number(*t)),
            Self::For(t, _) => t.describe(),
        }
    }
}

struct Row {
    workload: String,
    metric: String,
    better: Better,
    values: [Option<f64>; 3],
    target: Option<Target>,
}

/// All results so far.
#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "–".to_owned()
    } else if v >= 100.0 {
        let s = format!("{v:.0}");
        // Thousands separated, for reading.
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn index(kind: Kind) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

impl Report {
    /// Records `value` of `metric` in `workload` for `kind`.
    pub fn add(
        &mut self,
        workload: &str,
        metric: &str,
        better: Better,
        kind: Kind,
        value: f64,
        target: Option<Target>,
    ) {
        let row = match self
            .rows
            .iter_mut()
            .position(|r| r.workload == workload && r.metric == metric)
        {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(Row {
                    workload: workload.to_owned(),
                    metric: metric.to_owned(),
                    better,
                    values: [None; 3],
                    target: None,
                });
                let last = self.rows.len() - 1;
                &mut self.rows[last]
            }
        };
        row.values[index(kind)] = Some(value);
        if target.is_some() {
            row.target = target;
        }
    }

    /// A value recorded earlier.
    pub fn value(&self, workload: &str, metric: &str, kind: Kind) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.workload == workload && r.metric == metric)
            .and_then(|r| r.values[index(kind)])
    }

    fn ratio(row: &Row) -> String {
        match (row.values[0], row.values[1]) {
            (Some(reference), Some(berth)) if reference > 0.0 && berth > 0.0 => {
                let r = match row.better {
                    Better::Higher => berth / reference,
                    Better::Lower => reference / berth,
                };
                if r >= 1.0 {
                    format!("{r:.1}× better")
                } else {
                    format!("{:.1}× worse", 1.0 / r)
                }
            }
            _ => "–".to_owned(),
        }
    }

    fn marks(row: &Row) -> (String, usize) {
        let Some(target) = &row.target else {
            return (String::new(), 0);
        };
        let mut missed = 0;
        let mut marks = Vec::new();
        for (i, kind) in KINDS.iter().enumerate() {
            if let Some(v) = row.values[i]
                && let Some(ok) = target.met(*kind, v)
            {
                marks.push(format!("{} {}", kind.label(), if ok { "✓" } else { "✗" }));
                missed += usize::from(!ok);
            }
        }
        (
            format!("{} ({})", target.describe(), marks.join(", ")),
            missed,
        )
    }

    /// The table, in Markdown.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| workload | metric | reference | berth | berth+token | berth vs reference | target |\n|---|---|---:|---:|---:|---|---|\n",
        );
        for row in &self.rows {
            let v: Vec<String> = row
                .values
                .iter()
                .map(|v| v.map_or_else(|| "–".to_owned(), number))
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                row.workload,
                row.metric,
                v[0],
                v[1],
                v[2],
                Self::ratio(row),
                Self::marks(row).0
            ));
        }
        out
    }

    /// How many targets were missed.
    pub fn missed(&self) -> usize {
        self.rows.iter().map(|r| Self::marks(r).1).sum()
    }

    /// The results as JSON.
    pub fn json(&self) -> serde_json::Value {
        json!(
            self.rows
                .iter()
                .map(|r| json!({
                    "workload": r.workload,
                    "metric": r.metric,
                    "reference": r.values[0],
                    "berth": r.values[1],
                    "berth_token": r.values[2],
                    "target": r.target.as_ref().map(Target::describe),
                    "missed": Self::marks(r).1,
                }))
                .collect::<Vec<_>>()
        )
    }
}

/// What the run ran on: CPU model, cores, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("unknown CPU", |m| m.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "Machine: {model}, {cores} cores, {memory:.0} GiB, Linux {}; loopback, filesystem storage.",
        kernel.trim()
    )
}
