//! Output for people (aligned tables, fitted to the terminal's width) and for scripts
//! (JSON, never fitted), and progress bars.
//!
//! Everything goes through a locked, buffered stdout and returns IO errors, so that a
//! closed pipe (`chronicle log | head`) ends the command quietly instead of panicking.
//! Text from the log never reaches a terminal as a control character it would act on
//! ([`inert`]): an escape sequence in an imported summary is shown, not obeyed.

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Buffered stdout.
pub fn stdout() -> Stdout {
    Stdout(BufWriter::new(io::stdout().lock()))
}

/// Buffered stdout whose failed writes say that they were writes to it ("writing to
/// standard output: No space left on device", for `chronicle log > /dev/full`),
/// keeping the error's kind, so that a closed pipe is still recognised as one.
pub struct Stdout(BufWriter<StdoutLock<'static>>);

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.iter().any(|b| acted_on(*b)) {
            return self.0.write(buf).map_err(writing_stdout);
        }
        let mut shown = Vec::with_capacity(buf.len() + 16);
        for b in buf {
            match acted_on(*b) {
                true => shown.extend_from_slice(picture(*b).encode_utf8(&mut [0; 3]).as_bytes()),
                false => shown.push(*b),
            }
        }
        self.0.write_all(&shown).map_err(writing_stdout)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(writing_stdout)
    }
}

/// A C0 control character other than a newline or a tab: what a terminal acts on (an
/// escape sequence, a bell, a carriage return). JSON holds none raw (it escapes them in
/// strings), so taking them out of the output never changes a JSON line.
fn acted_on(b: u8) -> bool {
    b < 0x20 && b != b'\n' && b != b'\t'
}

/// The Unicode control picture of a C0 control character (`␛` for escape).
fn picture(b: u8) -> char {
    char::from_u32(0x2400 + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// `text` with every control character a terminal acts on as its control picture
/// (see [`acted_on`]): for what is written to stderr, where [`Stdout`] does not pass.
pub fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    match text.bytes().any(acted_on) {
        false => text.into(),
        true => text
            .chars()
            .map(|c| match u8::try_from(c) {
                Ok(b) if acted_on(b) => picture(b),
                _ => c,
            })
            .collect::<String>()
            .into(),
    }
}

/// `text` on one line, for a cell of a table or a wrapped line: a C0 control character
/// in it (a newline, a tab) shown as its control picture, and the other control
/// characters (DEL, the C1 range) and those that reorder the text after them
/// (bidirectional overrides and isolates) as their code points, so that one cell
/// cannot break its row, be taken for a command, or reverse the rest of the row.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    let reorders = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    match text.chars().any(|c| c.is_control() || reorders(c)) {
        false => text.into(),
        true => text
            .chars()
            .map(|c| match u8::try_from(c) {
                Ok(b) if b < 0x20 => picture(b).to_string(),
                _ if c.is_control() || reorders(c) => format!("<U+{:04X}>", u32::from(c)),
                _ => c.to_string(),
            })
            .collect::<String>()
            .into(),
    }
}

fn writing_stdout(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::BrokenPipe => e,
        kind => io::Error::new(kind, format!("writing to standard output: {e}")),
    }
}

/// Writes one JSON document followed by a newline.
/// Whether stdout is a pipe whose reader has gone (`chronicle log --follow | head -1`
/// once `head` has its line): a follower that waits for events would otherwise learn it
/// only when it next writes. `poll` reports `POLLERR` on such a pipe's writing end.
pub fn stdout_closed() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid `pollfd`, a count of one, and no wait.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    ready > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

pub fn json_line(out: &mut (impl Write + ?Sized), value: &impl Serialize) -> io::Result<()> {
    // `io::Error::from` gives back the writer's own error (a closed pipe stays one).
    serde_json::to_writer(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// The width output should fit: `COLUMNS` when set to a number, else the terminal's
/// when stdout is one; `None` (no limit) when printing to a pipe or a file, so that
/// what scripts read is never cut.
pub fn width() -> Option<usize> {
    if let Ok(text) = std::env::var("COLUMNS")
        && let Ok(n) = text.trim().parse::<usize>()
        && n > 0
    {
        return Some(n);
    }
    let term = console::Term::stdout();
    if !term.is_term() {
        return None;
    }
    let (_, columns) = term.size();
    (columns > 0).then_some(usize::from(columns))
}

/// The narrowest a column is made to fit the width: wrapping below this reads worse
/// than a line that overflows.
const MIN_COLUMN: usize = 10;

/// How many terminal columns `text` takes: most CJK characters take two, combining
/// marks none.
pub fn columns(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// Breaks `text` into lines at most `width` columns wide (see [`columns`]), at spaces
/// where it can and inside a word only when the word alone is wider.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for mut word in text.split(' ') {
        loop {
            let gap = usize::from(used > 0);
            if used + gap + columns(word) <= width {
                if gap == 1 {
                    line.push(' ');
                }
                line.push_str(word);
                used += gap + columns(word);
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                used = 0;
                continue;
            }
            // A word wider than the line: split it.
            let (head, rest) = word.split_at(fitting(word, width));
            lines.push(head.to_owned());
            word = rest;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// The length in bytes of the longest start of `word` that fits in `width` columns;
/// at least its first character, so that wrapping always moves on.
/// Measured as [`columns`] measures it, and split only between characters drawn apart:
/// never before a zero-width one (a variation selector, a joiner, a combining mark) or
/// after a joiner, so that an emoji sequence or an accented letter stays whole.
fn fitting(word: &str, width: usize) -> usize {
    const JOINER: char = '\u{200D}';
    let mut fits = 0;
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let ends = chars.windows(2).filter_map(|pair| {
        let ((_, before), (end, c)) = (pair[0], pair[1]);
        (before != JOINER && c != JOINER && c.width() != Some(0)).then_some(end)
    });
    for end in ends.chain([word.len()]) {
        if columns(&word[..end]) > width {
            return if fits > 0 { fits } else { end };
        }
        fits = end;
    }
    word.len()
}

/// Writes `text` after `indent`, wrapped to the output's width (see [`width`]), with
/// continuation lines indented `hang` spaces further.
pub fn wrapped_line(
    out: &mut (impl Write + ?Sized),
    indent: &str,
    hang: usize,
    text: &str,
) -> io::Result<()> {
    let text = one_line(text);
    let Some(total) = width() else {
        return writeln!(out, "{indent}{text}");
    };
    let indent_width = columns(indent) + hang;
    let room = total.saturating_sub(indent_width).max(MIN_COLUMN);
    let pad = " ".repeat(indent_width);
    for (i, line) in wrap(&text, room).iter().enumerate() {
        if i == 0 {
            writeln!(out, "{indent}{line}")?;
        } else {
            writeln!(out, "{pad}{line}")?;
        }
    }
    Ok(())
}

/// A table with left-aligned columns, sized to their widest cell; made to fit the
/// output's width (see [`width`]) by narrowing the widest columns and wrapping their
/// cells onto more lines.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Columns at least this wide: a table printed in pages keeps its earlier pages'.
    at_least: Vec<usize>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            at_least: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        let shown = |cell: String| match one_line(&cell) {
            std::borrow::Cow::Borrowed(_) => cell,
            std::borrow::Cow::Owned(shown) => shown,
        };
        self.rows.push(cells.into_iter().map(shown).collect());
    }

    /// Makes each column at least as wide as given (before fitting the output).
    pub fn at_least(&mut self, widths: &[usize]) {
        self.at_least = widths.to_vec();
    }

    /// Each column's width in terminal columns: its widest cell, header included, or
    /// its minimum.
    pub fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| columns(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(columns(cell));
                }
            }
        }
        for (w, min) in widths.iter_mut().zip(&self.at_least) {
            *w = (*w).max(*min);
        }
        widths
    }

    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        self.write_within(out, width())
    }

    /// Writes the table within `limit` columns. With no limit (`None`) cells are never
    /// wrapped, and a column is padded to its widest cell only up to [`MAX_PADDED`]: a
    /// longer cell pushes the rest of its own row along, not every row.
    pub fn write_within(&self, out: &mut impl Write, limit: Option<usize>) -> io::Result<()> {
        let mut widths = self.widths();
        match limit {
            Some(limit) => fit(&mut widths, limit),
            None => widths.iter_mut().for_each(|w| *w = (*w).min(MAX_PADDED)),
        }
        let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
            let wrapped: Vec<Vec<String>> = cells
                .iter()
                .enumerate()
                .map(|(i, cell)| match widths.get(i) {
                    Some(w) if limit.is_some() && columns(cell) > *w => wrap(cell, *w),
                    _ => vec![cell.clone()],
                })
                .collect();
            let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
            let last = cells.len().saturating_sub(1);
            for k in 0..height {
                let mut text = String::new();
                for (i, lines) in wrapped.iter().enumerate() {
                    let cell = lines.get(k).map_or("", String::as_str);
                    text.push_str(cell);
                    if i != last {
                        let pad = widths[i].saturating_sub(columns(cell));
                        text.push_str(&" ".repeat(pad + 2));
                    }
                }
                writeln!(out, "{}", text.trim_end())?;
            }
            Ok(())
        };
        line(out, &self.headers)?;
        for row in &self.rows {
            line(out, row)?;
        }
        Ok(())
    }
}

/// The widest a column is padded to when a table is not fitted to a width.
const MAX_PADDED: usize = 200;

/// Narrows the widest columns, one character at a time, until the table (with two
/// spaces between columns) fits `limit`, or every column is at [`MIN_COLUMN`] (or
/// narrower already).
fn fit(widths: &mut [usize], limit: usize) {
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while total(widths) > limit {
        let Some((i, w)) = widths.iter().copied().enumerate().max_by_key(|(_, w)| *w) else {
            return;
        };
        if w <= MIN_COLUMN {
            return;
        }
        widths[i] -= 1;
    }
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({rate}, {eta} left)")
            .expect("the template is valid")
            // Whole events a second (indicatif's own `per_sec` shows four decimals).
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            )
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// A spinner on stderr for work of unknown length, when stderr is a terminal.
pub fn spinner(what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// A size in bytes for people: `591 MiB`, `12.4 KiB`, `512 bytes`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value.round() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match value < 10.0 {
        true => format!("{value:.1} {}", UNITS[unit]),
        false => format!("{value:.0} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_log_cannot_drive_the_terminal_or_break_a_row() {
        assert_eq!(
            inert("a\u{1b}[2Jb\u{7}c\rd"),
            "a\u{241b}[2Jb\u{2407}c\u{240d}d"
        );
        assert_eq!(inert("two\nlines\tand a tab"), "two\nlines\tand a tab");
        assert_eq!(
            one_line("a\nb\tc\u{202E}d\u{2066}\u{7f}\u{9b}e\u{1b}"),
            "a\u{240a}b\u{2409}c<U+202E>d<U+2066><U+007F><U+009B>e\u{241b}"
        );
        let mut table = Table::new(&["A", "B"]);
        table.row(vec!["x\ny".into(), "z".into()]);
        let mut out = Vec::new();
        table.write_within(&mut out, None).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A    B\nx\u{240a}y  z\n");
    }

    #[test]
    fn an_unfitted_table_pads_a_column_only_so_far() {
        let long = "w".repeat(5_000);
        let mut table = Table::new(&["WHEN", "SUMMARY", "STREAM"]);
        table.row(vec!["2025".into(), "short".into(), "trip:a".into()]);
        table.row(vec!["2026".into(), long.clone(), "trip:b".into()]);
        let mut out = Vec::new();
        table.write_within(&mut out, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "no cell wrapped");
        assert_eq!(
            lines[1],
            format!("2025  short{}trip:a", " ".repeat(MAX_PADDED - 3))
        );
        assert_eq!(lines[2], format!("2026  {long}  trip:b"));
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_splits_only_long_words() {
        assert_eq!(wrap("the quick brown fox", 9), ["the quick", "brown fox"]);
        assert_eq!(wrap("abcdefghij xy", 4), ["abcd", "efgh", "ij", "xy"]);
        assert_eq!(wrap("", 5), [""]);
        assert_eq!(wrap("fits", 10), ["fits"]);
        // Split where the line's width is measured, not character by character: a
        // heart with its variation selector is two columns, a ZWJ family two.
        let heart = "\u{2764}\u{FE0F}";
        assert_eq!(
            wrap(&format!("ab{heart}cd"), 3),
            ["ab", &format!("{heart}c"), "d"]
        );
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        assert_eq!(
            wrap(&format!("{family}xyz"), 4),
            [format!("{family}xy"), "z".into()]
        );
        for width in 1..8 {
            for line in wrap(&format!("a{heart}{family}b{heart}"), width) {
                assert!(columns(&line) <= width.max(2), "{line:?} in {width}");
            }
        }
    }

    #[test]
    fn a_table_narrows_its_widest_columns_and_wraps_them() {
        let mut table = Table::new(&["A", "TEXT"]);
        table.row(vec!["x".into(), "one two three four five six".into()]);
        let mut out = Vec::new();
        table.write_within(&mut out, Some(16)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "A  TEXT\nx  one two three\n   four five six\n");
        let mut out = Vec::new();
        table.write_within(&mut out, None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "A  TEXT\nx  one two three four five six\n"
        );
    }

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(columns("東京"), 4);
        assert_eq!(wrap("東京都 Paris", 6), ["東京都", "Paris"]);
        assert_eq!(wrap("東京都庁", 5), ["東京", "都庁"]);
        // A character wider than the line still moves the wrapping on.
        assert_eq!(wrap("東京", 1), ["東", "京"]);
        let mut table = Table::new(&["CITY", "COUNTRY"]);
        table.row(vec!["東京".into(), "Japan".into()]);
        table.row(vec!["Paris".into(), "France".into()]);
        let mut out = Vec::new();
        table.write_within(&mut out, None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "CITY   COUNTRY\n東京   Japan\nParis  France\n"
        );
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(1_048_574), "1.0 MiB");
        assert_eq!(size(616_562_688), "588 MiB");
    }
}
