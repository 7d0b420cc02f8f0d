//! The results table: one row per workload and metric, a column per registry, the ratio of
//! Berth to the reference (and, with `--baseline`, to the baseline binary), and the issue's
//! targets with whether Berth met them.

use serde_json::json;

use crate::servers::Kind;

/// The columns, in order; the last two only with a baseline.
const KINDS: [Kind; 5] = [
    Kind::Reference,
    Kind::Berth,
    Kind::BerthToken,
    Kind::Baseline,
    Kind::BaselineToken,
];

/// The columns there are without a baseline.
const WITHOUT_BASELINE: usize = 3;

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
    values: [Option<f64>; KINDS.len()],
    target: Option<Target>,
}

/// All results so far.
pub struct Report {
    rows: Vec<Row>,
    /// Whether the baseline columns are shown.
    baseline: bool,
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

/// `value` of `kind` in `row`.
fn of(row: &Row, kind: Kind) -> Option<f64> {
    row.values[index(kind)]
}

/// Whether `metric` is server CPU per request, token or GiB.
fn is_cpu(metric: &str) -> bool {
    metric.starts_with("server CPU")
}

/// `berth` against `other` in the direction of `better`: "N× better" or "N× worse".
fn ratio(better: Better, other: Option<f64>, berth: Option<f64>) -> String {
    match (other, berth) {
        (Some(other), Some(berth)) if other > 0.0 && berth > 0.0 => {
            let r = match better {
                Better::Higher => berth / other,
                Better::Lower => other / berth,
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

/// How much more (+) or less (−) CPU `berth` used than `baseline`: "+3.1 % CPU".
fn cpu_change(baseline: Option<f64>, berth: Option<f64>) -> String {
    match (baseline, berth) {
        (Some(baseline), Some(berth)) if baseline > 0.0 && berth.is_finite() && berth >= 0.0 => {
            let change = (berth / baseline - 1.0) * 100.0;
            let magnitude = format!("{:.1}", change.abs());
            let sign = if magnitude == "0.0" {
                "±"
            } else if change > 0.0 {
                "+"
            } else {
                "−"
            };
            format!("{sign}{magnitude} % CPU")
        }
        _ => "–".to_owned(),
    }
}

impl Report {
    /// An empty report, with the baseline columns if `baseline`.
    pub fn new(baseline: bool) -> Self {
        Self {
            rows: Vec::new(),
            baseline,
        }
    }

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
                    values: [None; KINDS.len()],
                    target: None,
                });
                let last = self.rows.len() - 1;
                &mut self.rows[last]
            }
        };
        row.values[index(kind)] = Some(value);
        // Targets are Berth's; the baseline is measured, not judged.
        if target.is_some() && !kind.baseline() {
            row.target = target;
        }
    }

    /// A value recorded earlier.
    pub fn value(&self, workload: &str, metric: &str, kind: Kind) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.workload == workload && r.metric == metric)
            .and_then(|r| of(r, kind))
    }

    /// Berth (auth off) against the reference.
    fn versus_reference(row: &Row) -> String {
        ratio(row.better, of(row, Kind::Reference), of(row, Kind::Berth))
    }

    /// Berth (auth off) against the baseline (auth off); server CPU as a change in percent.
    /// Rows measured with token authentication only (tokens) compare the token servers.
    fn versus_baseline(row: &Row) -> String {
        let (baseline, berth) = match (of(row, Kind::Baseline), of(row, Kind::Berth)) {
            (None, None) => (of(row, Kind::BaselineToken), of(row, Kind::BerthToken)),
            pair => pair,
        };
        if is_cpu(&row.metric) {
            cpu_change(baseline, berth)
        } else {
            ratio(row.better, baseline, berth)
        }
    }

    fn marks(row: &Row) -> (String, usize) {
        let Some(target) = &row.target else {
            return (String::new(), 0);
        };
        let mut missed = 0;
        let mut marks = Vec::new();
        for (i, kind) in KINDS.iter().enumerate() {
            if kind.baseline() {
                continue;
            }
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
        let kinds = if self.baseline {
            &KINDS[..]
        } else {
            &KINDS[..WITHOUT_BASELINE]
        };
        let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        let mut head = vec!["workload".to_owned(), "metric".to_owned()];
        head.extend(kinds.iter().map(|k| k.label().to_owned()));
        head.push("berth vs reference".to_owned());
        if self.baseline {
            head.push("berth vs baseline".to_owned());
        }
        head.push("target".to_owned());
        let mut out = line(head);
        let mut rule = vec!["---"; 2];
        rule.extend(kinds.iter().map(|_| "---:"));
        rule.extend(vec!["---"; 1 + usize::from(self.baseline)]);
        rule.push("---");
        out.push_str(&format!("|{}|\n", rule.join("|")));
        for row in &self.rows {
            let mut cells = vec![row.workload.clone(), row.metric.clone()];
            cells.extend(
                kinds
                    .iter()
                    .map(|k| of(row, *k).map_or_else(|| "–".to_owned(), number)),
            );
            cells.push(Self::versus_reference(row));
            if self.baseline {
                cells.push(Self::versus_baseline(row));
            }
            cells.push(Self::marks(row).0);
            out.push_str(&line(cells));
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
                    "reference": of(r, Kind::Reference),
                    "berth": of(r, Kind::Berth),
                    "berth_token": of(r, Kind::BerthToken),
                    "baseline": of(r, Kind::Baseline),
                    "baseline_token": of(r, Kind::BaselineToken),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report(baseline: bool) -> Report {
        let mut r = Report::new(baseline);
        let target = || Some(Target::AtMost(30.0).for_kinds(&[Kind::BerthToken]));
        for (kind, rate, cpu) in [
            (Kind::Reference, 1000.0, 1500.0),
            (Kind::Berth, 40_000.0, 20.0),
            (Kind::BerthToken, 50_000.0, 18.0),
            (Kind::Baseline, 20_000.0, 19.4),
            (Kind::BaselineToken, 25_000.0, 40.0),
        ] {
            if baseline || !kind.baseline() {
                r.add("GET /v2/", "req/s", Better::Higher, kind, rate, None);
                r.add(
                    "GET /v2/",
                    "server CPU-µs/req",
                    Better::Lower,
                    kind,
                    cpu,
                    target(),
                );
            }
        }
        r
    }

    #[test]
    fn without_a_baseline_the_table_keeps_its_columns() {
        let table = report(false).table();
        assert!(table.starts_with(
            "| workload | metric | reference | berth | berth+token | berth vs reference | target |\n|---|---|---:|---:|---:|---|---|\n"
        ), "{table}");
        assert!(
            table.contains("| GET /v2/ | req/s | 1,000 | 40,000 | 50,000 | 40.0× better |  |\n"),
            "{table}"
        );
    }

    #[test]
    fn a_baseline_adds_its_columns_and_a_ratio_with_cpu_in_percent() {
        let r = report(true);
        let table = r.table();
        assert!(table.starts_with(
            "| workload | metric | reference | berth | berth+token | baseline | baseline+token | berth vs reference | berth vs baseline | target |\n|---|---|---:|---:|---:|---:|---:|---|---|---|\n"
        ), "{table}");
        assert!(
            table.contains(
                "| GET /v2/ | req/s | 1,000 | 40,000 | 50,000 | 20,000 | 25,000 | 40.0× better | 2.0× better |  |\n"
            ),
            "{table}"
        );
        // The baseline with tokens misses the target, but is not judged.
        assert!(
            table.contains(
                "| GET /v2/ | server CPU-µs/req | 1,500 | 20.0 | 18.0 | 19.4 | 40.0 | 75.0× better | +3.1 % CPU | ≤ 30.0 (berth+token ✓) |\n"
            ),
            "{table}"
        );
        assert_eq!(r.missed(), 0);
        let json = r.json();
        assert_eq!(json[1]["baseline"], 19.4);
        assert_eq!(json[1]["baseline_token"], 40.0);
        let json = report(false).json();
        assert!(json[0]["baseline"].is_null() && json[0]["baseline_token"].is_null());
    }

    #[test]
    fn rows_with_tokens_only_compare_the_token_servers() {
        let mut r = Report::new(true);
        for (kind, cpu) in [(Kind::BerthToken, 190.0), (Kind::BaselineToken, 200.0)] {
            r.add(
                "token",
                "server CPU-µs/token",
                Better::Lower,
                kind,
                cpu,
                None,
            );
        }
        assert!(
            r.table().contains(
                "| token | server CPU-µs/token | – | – | 190 | – | 200 | – | −5.0 % CPU |  |\n"
            ),
            "{}",
            r.table()
        );
    }

    #[test]
    fn cpu_changes_read_at_a_glance() {
        assert_eq!(cpu_change(Some(100.0), Some(98.0)), "−2.0 % CPU");
        assert_eq!(cpu_change(Some(100.0), Some(105.04)), "+5.0 % CPU");
        assert_eq!(cpu_change(Some(100.0), Some(100.01)), "±0.0 % CPU");
        assert_eq!(cpu_change(Some(0.0), Some(1.0)), "–");
        assert_eq!(cpu_change(None, Some(1.0)), "–");
    }
}
