//! How commands print: human tables by default, `-o json|yaml` for scripts, and the exit codes
//! every command shares.

use std::fmt::Write as _;

use clap::ValueEnum;
use serde::Serialize;

/// `-o`: what a command prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns and short summaries, for people.
    #[default]
    Table,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

/// How a command ended, as its exit code says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: done; the run (when waited for) Completed; verify found nothing wrong.
    Ok,
    /// 1: failed; the run Failed; verify found a damaged or missing object.
    Failed,
    /// 2: the command line is wrong (also what clap uses).
    Usage,
    /// 3: the run PartiallyFailed.
    PartiallyFailed,
    /// 130: Ctrl-C while waiting; the run itself goes on.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::PartiallyFailed => 3,
            Exit::Interrupted => 130,
        }
    }
}

/// `anyhow`'s `context`, keeping the cause in the message: `main` prints only the top message
/// (the library's errors say what failed and why, and their sources repeat raw HTTP bodies).
pub trait Explain<T> {
    fn explain(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E: std::fmt::Display> Explain<T> for Result<T, E> {
    fn explain(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::anyhow!("{}: {e}", what()))
    }
}

/// A command line that parses but does not make sense (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `value` as JSON or YAML; `None` for [`OutputFormat::Table`] (the caller prints a table).
pub fn structured<T: Serialize>(format: OutputFormat, value: &T) -> anyhow::Result<Option<String>> {
    Ok(match format {
        OutputFormat::Table => None,
        OutputFormat::Json => Some(serde_json::to_string_pretty(value)? + "\n"),
        OutputFormat::Yaml => Some(yaml_serde::to_string(value)?),
    })
}

/// Rows printed as left-aligned columns under upper-case headers.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
            let mut text = String::new();
            for (i, cell) in cells.enumerate() {
                let width = widths.get(i).copied().unwrap_or(0);
                let _ = write!(text, "{cell:<width$}   ");
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut out, &mut self.headers.iter().copied());
        for row in &self.rows {
            line(&mut out, &mut row.iter().map(String::as_str));
        }
        out
    }
}

/// A phase or result as its name, `absent` when there is none yet (`New`, `Running`).
pub fn shown<T: std::fmt::Debug>(value: Option<T>, absent: &str) -> String {
    value.map_or_else(|| absent.to_string(), |v| format!("{v:?}"))
}

/// `1.5 MiB`, `812 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `3m ago`-style age of a time, for tables.
pub fn age(time: Option<&chrono::DateTime<chrono::Utc>>) -> String {
    let Some(time) = time else {
        return "-".to_string();
    };
    let seconds = (chrono::Utc::now() - *time).num_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["NAME", "PHASE"]);
        t.row(vec!["a-long-name".into(), "Completed".into()]);
        t.row(vec!["b".into(), "Failed".into()]);
        assert_eq!(
            t.render(),
            "NAME          PHASE\na-long-name   Completed\nb             Failed\n"
        );
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }
}
