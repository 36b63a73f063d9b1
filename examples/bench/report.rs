//! The results: one row per figure, printed as a table and written as JSON.

use serde::Serialize;
use std::fmt::Write as _;

/// One measured number and what an acknowledgement meant when it was taken.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub value: f64,
    /// `fsync` for acknowledged writes (each returned once fsynced), `none` for
    /// figures that are not acknowledged writes.
    pub durability: &'static str,
}

/// One line of the table: a figure for chronicle and for each baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub workload: &'static str,
    pub metric: String,
    pub unit: &'static str,
    pub chronicle: Option<Figure>,
    pub sled: Option<Figure>,
    pub sqlite: Option<Figure>,
    pub chronicle_over_sled: Option<f64>,
    pub chronicle_over_sqlite: Option<f64>,
    /// chronicle on its PostgreSQL log (`--postgres`), when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<Figure>,
    /// PostgreSQL ÷ chronicle on sled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_over_chronicle: Option<f64>,
    /// The target for this figure, in words, with the measured value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
}

impl Row {
    pub fn new(
        workload: &'static str,
        metric: impl Into<String>,
        unit: &'static str,
        values: [Option<(f64, &'static str)>; 3],
    ) -> Row {
        let [c, s, q] = values.map(|v| v.map(|(value, durability)| Figure { value, durability }));
        let ratio = |b: &Option<Figure>| match (&c, b) {
            (Some(c), Some(b)) if b.value > 0.0 => Some(c.value / b.value),
            _ => None,
        };
        Row {
            workload,
            metric: metric.into(),
            unit,
            chronicle_over_sled: ratio(&s),
            chronicle_over_sqlite: ratio(&q),
            chronicle: c,
            sled: s,
            sqlite: q,
            postgres: None,
            postgres_over_chronicle: None,
            target: None,
            met: None,
        }
    }

    /// The same figure on chronicle's PostgreSQL log, when there is one.
    pub fn postgres(mut self, value: Option<(f64, &'static str)>) -> Row {
        self.postgres = value.map(|(value, durability)| Figure { value, durability });
        self.postgres_over_chronicle = match (&self.postgres, &self.chronicle) {
            (Some(p), Some(c)) if c.value > 0.0 => Some(p.value / c.value),
            _ => None,
        };
        self
    }

    pub fn target(mut self, text: impl Into<String>, met: bool) -> Row {
        self.target = Some(text.into());
        self.met = Some(met);
        self
    }
}

/// Three significant digits, with thousands separators above 1,000.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v.abs() >= 1000.0 {
        let rounded = v.round() as i64;
        let digits = rounded.abs().to_string();
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        if rounded < 0 {
            out.insert(0, '-');
        }
        out
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.3}")
    }
}

fn figure(f: &Option<Figure>) -> String {
    match f {
        None => "-".into(),
        Some(f) if f.durability == "none" => number(f.value),
        Some(f) => format!("{} ({})", number(f.value), f.durability),
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}×"))
}

/// The rows as an aligned text table. The columns of chronicle on PostgreSQL appear
/// only when some row has a figure for it.
pub fn table(rows: &[Row]) -> String {
    let postgres = rows.iter().any(|r| r.postgres.is_some());
    let mut header = vec![
        "WORKLOAD",
        "METRIC",
        "CHRONICLE",
        "RAW SLED",
        "SQLITE",
        "CHR/SLED",
        "CHR/SQLITE",
    ];
    if postgres {
        header.extend(["ON POSTGRES", "PG/CHR"]);
    }
    header.push("TARGET");
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let target = match (&r.target, r.met) {
            (Some(t), Some(true)) => format!("{t}: met"),
            (Some(t), Some(false)) => format!("{t}: MISSED"),
            _ => String::new(),
        };
        let mut line = vec![
            r.workload.to_string(),
            format!("{} ({})", r.metric, r.unit),
            figure(&r.chronicle),
            figure(&r.sled),
            figure(&r.sqlite),
            ratio(r.chronicle_over_sled),
            ratio(r.chronicle_over_sqlite),
        ];
        if postgres {
            line.extend([figure(&r.postgres), ratio(r.postgres_over_chronicle)]);
        }
        line.push(target);
        cells.push(line);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in cells {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            // Numbers right-aligned, words left-aligned.
            if (2..header.len() - 1).contains(&i) {
                let _ = write!(line, "{}{cell}  ", " ".repeat(pad));
            } else {
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Every target of the rows, one line each: what was wanted, what was measured
/// (both in the target's words), and whether it was met.
pub fn targets(rows: &[Row]) -> String {
    let lines: Vec<(String, &str, bool)> = rows
        .iter()
        .filter_map(|r| {
            let target = r.target.as_deref()?;
            Some((format!("{} {}", r.workload, r.metric), target, r.met?))
        })
        .collect();
    let width = lines.iter().map(|l| l.0.chars().count()).max().unwrap_or(0);
    let target_width = lines.iter().map(|l| l.1.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (metric, target, met) in lines {
        let _ = writeln!(
            out,
            "{metric}{}  {target}{}  {}",
            " ".repeat(width - metric.chars().count()),
            " ".repeat(target_width - target.chars().count()),
            if met { "met" } else { "MISSED" }
        );
    }
    out
}

/// The value at percentile `p` (nearest rank) of samples sorted ascending.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of some samples.
pub fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 50.0)
}
