//! What every `petrel admin` command prints: a table whose columns fit their widest cell, or
//! with `--json` the answer's serde form, pretty-printed. Printing only, no requests.

use std::io::Write;

use serde::Serialize;

/// `println!` for the admin commands: a closed stdout (`| head`) ends the program quietly
/// instead of panicking.
macro_rules! out {
    () => { $crate::admin::table::write_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::admin::table::write_line(format_args!($($arg)*)) };
}
pub(crate) use out;

pub fn write_line(line: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        panic!("cannot write to stdout: {e}");
    }
}

/// Rows under a header, printed with each column padded to its widest cell.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows.push(cells);
    }

    pub fn print(&self) {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<w$}  "));
                }
            }
            out!("{}", out.trim_end());
        };
        line(&self.header);
        for row in &self.rows {
            line(row);
        }
    }
}

/// Prints `value` as pretty JSON.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    out!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `key = value` lines, the keys padded to the longest.
pub fn print_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) {
    let pairs: Vec<(&str, String)> = pairs.into_iter().collect();
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        out!("{k:<width$} : {v}");
    }
}
