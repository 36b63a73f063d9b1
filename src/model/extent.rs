//! Extents: when something happened, written at the precision the source supports.
//!
//! An extent is a year (`2025`), a month (`2025-01`), a day (`2025-01-05`), an instant
//! (`2025-01-05T09:30:00Z`), or an interval `A/B` of any two of these, optionally followed
//! by `~` for "approximately". Parsing never widens or narrows precision, and
//! [`Extent::to_string`] gives back the canonical text, so an extent survives a round trip.
//!
//! Every extent covers a half-open range of instants `[earliest, latest)`: `2025-01` covers
//! the whole of January. Timelines sort by that range; `--from`/`--to` filters test overlap.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// One point of an extent, at its own precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// A whole year.
    Year(i32),
    /// A whole month of a year.
    Month(i32, u32),
    /// A whole day.
    Day(NaiveDate),
    /// An exact instant, with the offset it was written in.
    Instant(DateTime<FixedOffset>),
}

/// When something happened: a point or an interval, exact or approximate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// The start (or the only point).
    pub start: Point,
    /// The end of an interval; `None` for a single point.
    pub end: Option<Point>,
    /// Written with a trailing `~`.
    pub approximate: bool,
}

impl Point {
    /// The first instant this point covers.
    pub fn earliest(&self) -> DateTime<Utc> {
        match *self {
            Point::Year(y) => midnight(first_day(y, 1)),
            Point::Month(y, m) => midnight(first_day(y, m)),
            Point::Day(d) => midnight(d),
            Point::Instant(t) => t.with_timezone(&Utc),
        }
    }

    /// The first instant after this point (the range is half-open).
    pub fn latest(&self) -> DateTime<Utc> {
        match *self {
            Point::Year(y) => midnight(first_day(y + 1, 1)),
            Point::Month(y, 12) => midnight(first_day(y + 1, 1)),
            Point::Month(y, m) => midnight(first_day(y, m + 1)),
            Point::Day(d) => midnight(d.succ_opt().unwrap_or(NaiveDate::MAX)),
            Point::Instant(t) => t.with_timezone(&Utc) + chrono::Duration::nanoseconds(1),
        }
    }

    /// Year, month and day, as far as this point's precision gives them.
    pub fn ymd(&self) -> (i32, Option<u32>, Option<u32>) {
        match *self {
            Point::Year(y) => (y, None, None),
            Point::Month(y, m) => (y, Some(m), None),
            Point::Day(d) => (d.year(), Some(d.month()), Some(d.day())),
            Point::Instant(t) => (t.year(), Some(t.month()), Some(t.day())),
        }
    }
}

fn first_day(year: i32, month: u32) -> NaiveDate {
    // Years are limited to 1..=9999 by the parser, so the 1st of any month exists.
    NaiveDate::from_ymd_opt(year, month, 1).expect("year and month were range-checked")
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

impl Extent {
    /// A date of the reported clock (`--known-at`, `known_at=`): an extent that is not
    /// approximate, since "known by about then" has no one answer.
    pub fn known_at(text: &str) -> Result<Extent, ExtentError> {
        if text.ends_with('~') {
            let exact = text.trim_end_matches('~');
            return Err(ExtentError(format!(
                "`{text}` is approximate (~), and the reported clock needs a date: give it without the ~, like {}",
                if exact.is_empty() {
                    "2025-01-04"
                } else {
                    exact
                }
            )));
        }
        text.parse()
            .map_err(|e: ExtentError| ExtentError(e.0.replace(APPROXIMATE!(), "")))
    }

    /// One whole day, exact.
    pub fn day(date: NaiveDate) -> Extent {
        Extent {
            start: Point::Day(date),
            end: None,
            approximate: false,
        }
    }

    /// The first instant the extent covers.
    pub fn earliest(&self) -> DateTime<Utc> {
        self.start.earliest()
    }

    /// The first instant after the extent.
    pub fn latest(&self) -> DateTime<Utc> {
        self.end.unwrap_or(self.start).latest()
    }
}

/// Why a text is not an extent; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExtentError(pub String);

/// What a date may be, as the end of an error's message.
const EXPECTED: &str = concat!(
    "expected a date like 2025, 2025-01, 2025-01-05, 2025-01-05T09:30:00Z, an interval A/B of these",
    APPROXIMATE!()
);

/// The end of [`EXPECTED`] that the reported clock, which takes no `~`, leaves out.
macro_rules! APPROXIMATE {
    () => {
        ", optionally ending in ~"
    };
}
use APPROXIMATE;

fn parse_point(text: &str) -> Result<Point, ExtentError> {
    let bad = || ExtentError(format!("`{text}` is not a date: {EXPECTED}"));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if text.contains('T') {
        let t = DateTime::parse_from_rfc3339(text).map_err(|e| {
            if DateTime::parse_from_rfc3339(&format!("{text}Z")).is_ok() {
                return ExtentError(format!(
                    "`{text}` has no time zone: add one, like {text}Z (UTC) or {text}+09:00"
                ));
            }
            ExtentError(format!(
                "`{text}` is not an RFC 3339 instant ({e}): {EXPECTED}"
            ))
        })?;
        check_year(t.year(), text)?;
        return Ok(Point::Instant(t));
    }
    // Year, month and day, without allocating.
    let mut parts = [""; 3];
    let mut count = 0;
    for part in text.split('-') {
        *parts.get_mut(count).ok_or_else(bad)? = part;
        count += 1;
    }
    let parts = &parts[..count];
    if !parts.iter().all(|p| all_digits(p)) {
        return Err(bad());
    }
    let number = |s: &str| s.parse::<u32>().map_err(|_| bad());
    match *parts {
        [y] if y.len() == 4 => {
            let y = parse_year(y, text)?;
            Ok(Point::Year(y))
        }
        [y, m] if (y.len(), m.len()) == (4, 2) => {
            let y = parse_year(y, text)?;
            let m = number(m)?;
            if !(1..=12).contains(&m) {
                return Err(ExtentError(format!("`{text}`: there is no month {m}")));
            }
            Ok(Point::Month(y, m))
        }
        [y, m, d] if (y.len(), m.len(), d.len()) == (4, 2, 2) => {
            let y = parse_year(y, text)?;
            let (m, d) = (number(m)?, number(d)?);
            if !(1..=12).contains(&m) {
                return Err(ExtentError(format!("`{text}`: there is no month {m}")));
            }
            NaiveDate::from_ymd_opt(y, m, d)
                .map(Point::Day)
                .ok_or_else(|| ExtentError(format!("`{text}`: there is no such day")))
        }
        // A month or a day of one digit: say how it is written, if that is a date.
        [y, ref rest @ ..] if y.len() == 4 && rest.iter().all(|p| matches!(p.len(), 1 | 2)) => {
            let padded: Vec<String> = rest.iter().map(|p| format!("{p:0>2}")).collect();
            let padded = format!("{y}-{}", padded.join("-"));
            match parse_point(&padded) {
                Ok(_) => Err(ExtentError(format!(
                    "`{text}` is not a date: months and days take two digits, as in {padded}"
                ))),
                Err(ExtentError(why)) => Err(ExtentError(why.replacen(
                    &format!("`{padded}`"),
                    &format!("`{text}`"),
                    1,
                ))),
            }
        }
        _ => Err(bad()),
    }
}

/// A date written day or month first with slashes (`13/03/2025`, `3/13/2025`), as
/// written year first (with `mark`, the `~` it was given with): one date when only one
/// reading is a date, else both.
fn year_last(text: &str, mark: &str) -> Option<String> {
    let parts: Vec<&str> = text.split('/').collect();
    let [a, b, y] = parts[..] else { return None };
    let short = |p: &str| matches!(p.len(), 1 | 2) && p.bytes().all(|c| c.is_ascii_digit());
    if !(short(a) && short(b) && y.len() == 4 && y.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let (a, b, year): (u32, u32, i32) = (a.parse().ok()?, b.parse().ok()?, y.parse().ok()?);
    if check_year(year, text).is_err() {
        return None;
    }
    let day = |month: u32, day: u32| NaiveDate::from_ymd_opt(year, month, day);
    let readings: Vec<NaiveDate> = [day(b, a), day(a, b)].into_iter().flatten().collect();
    match readings[..] {
        [one] => Some(format!("{text}{mark} is {one}{mark}")),
        [first, second] if first == second => Some(format!("{text}{mark} is {first}{mark}")),
        [day_first, month_first] => Some(format!(
            "{text}{mark} is {day_first}{mark} day first, {month_first}{mark} month first"
        )),
        _ => None,
    }
}

fn parse_year(digits: &str, text: &str) -> Result<i32, ExtentError> {
    let y: i32 = digits
        .parse()
        .map_err(|_| ExtentError(format!("`{text}`: bad year")))?;
    check_year(y, text)?;
    Ok(y)
}

fn check_year(y: i32, text: &str) -> Result<(), ExtentError> {
    if (1..=9999).contains(&y) {
        Ok(())
    } else {
        Err(ExtentError(format!(
            "`{text}`: year {y} is outside 0001..9999"
        )))
    }
}

impl FromStr for Extent {
    type Err = ExtentError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (body, approximate) = match text.strip_suffix('~') {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        if body.is_empty() {
            return Err(ExtentError(format!("empty date: {EXPECTED}")));
        }
        let mut halves = body.split('/');
        let first = halves.next().unwrap_or_default();
        let second = halves.next();
        if halves.next().is_some() {
            return Err(ExtentError(format!(
                "`{text}` has more than one `/`: an interval is START/END, and dates are written year first ({EXPECTED}; {})",
                year_last(body, if approximate { "~" } else { "" })
                    .unwrap_or_else(|| "13/05/2025 is 2025-05-13".into())
            )));
        }
        if body.ends_with('~') {
            return Err(ExtentError(format!(
                "`{text}` has more than one ~: an approximate date ends in one, like {}~",
                text.trim_end_matches('~')
            )));
        }
        if let Some(second) = second
            && (first.is_empty() || second.is_empty())
        {
            let missing = if first.is_empty() { "start" } else { "end" };
            return Err(ExtentError(format!(
                "`{text}`: the interval has no {missing}; an interval is START/END, like 2025-01-06/2025-01-11"
            )));
        }
        let start = parse_point(first)?;
        let end = second.map(parse_point).transpose()?;
        if let Some(end) = end {
            if end.latest() <= start.earliest() {
                return Err(ExtentError(format!(
                    "`{text}`: the interval ends before it starts"
                )));
            }
            // `2025-09-10/2025-09`: an end coarser than the start, beginning before it.
            if end.earliest() < start.earliest() {
                // The end's last day, when that makes an interval (or the one day).
                let day = (end.latest() - chrono::Duration::days(1)).date_naive();
                let tilde = if text.ends_with('~') { "~" } else { "" };
                let candidate = match day.to_string() {
                    last if last == first => format!("{first}{tilde}"),
                    last => format!("{first}/{last}{tilde}"),
                };
                // (A candidate that is the input would be refused the same way.)
                let like = match candidate != text && candidate.parse::<Extent>().is_ok() {
                    true => format!(", like `{candidate}`"),
                    false => String::new(),
                };
                return Err(ExtentError(format!(
                    "`{text}`: the interval's end begins before its start; give an end that begins no earlier{like}"
                )));
            }
        }
        Ok(Extent {
            start,
            end,
            approximate,
        })
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Point::Year(y) => write!(f, "{y:04}"),
            Point::Month(y, m) => write!(f, "{y:04}-{m:02}"),
            // Written by hand, not with `format("%Y-%m-%d")`, which parses its pattern on
            // every call: the writer formats every event's date twice.
            Point::Day(d) if (1..=9999).contains(&d.year()) => {
                write!(f, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
            }
            Point::Day(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Point::Instant(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
}

impl fmt::Display for Extent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.start)?;
        if let Some(end) = &self.end {
            write!(f, "/{end}")?;
        }
        if self.approximate {
            f.write_str("~")?;
        }
        Ok(())
    }
}

impl Serialize for Extent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Extent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Parsed from the text as read, without a copy: view documents hold many dates.
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Extent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Extent, E> {
                text.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        match (input.parse::<Extent>(), expected) {
            (Ok(e), Ok(canonical)) => assert_eq!(e.to_string(), canonical, "{input}"),
            (Err(e), Err(fragment)) => assert!(e.0.contains(fragment), "{input}: {e}"),
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn an_extent_reads_from_json_text_as_it_parses() {
        let read = |json: &str| serde_json::from_str::<Extent>(json).map(|e| e.to_string());
        assert_eq!(
            read(r#""2025-01-06/2025-01-11~""#).unwrap(),
            "2025-01-06/2025-01-11~"
        );
        // An escaped string is read unescaped.
        assert_eq!(read(r#""2025\u002d01""#).unwrap(), "2025-01");
        let wrong_type = read("5").unwrap_err().to_string();
        assert!(wrong_type.contains("expected a string"), "{wrong_type}");
        let bad = read(r#""2025-13""#).unwrap_err().to_string();
        assert!(bad.contains("there is no month 13"), "{bad}");
        let four_parts = read(r#""2025-01-02-03""#).unwrap_err().to_string();
        assert!(four_parts.contains("is not a date"), "{four_parts}");
    }

    #[test]
    fn parses_every_precision_and_round_trips() {
        check("2025", Ok("2025"));
        check("2025-01", Ok("2025-01"));
        check("2025-01-05", Ok("2025-01-05"));
        check("2025-01-05T09:30:00Z", Ok("2025-01-05T09:30:00Z"));
        check("2025-01-05T09:30:00+09:00", Ok("2025-01-05T09:30:00+09:00"));
        check("2025-01-06/2025-01-12~", Ok("2025-01-06/2025-01-12~"));
        check("2024/2025-01-04", Ok("2024/2025-01-04"));
        check("2022-02~", Ok("2022-02~"));
    }

    #[test]
    fn rejects_bad_and_impossible_dates() {
        check("2025-02-30", Err("no such day"));
        check("2025-13-01", Err("there is no month 13"));
        check("2025-13", Err("no month 13"));
        check(
            "2025-1-5",
            Err("`2025-1-5` is not a date: months and days take two digits, as in 2025-01-05"),
        );
        check("2025-5", Err("take two digits, as in 2025-05"));
        // Not a hint that would be refused in turn.
        check("2025-13-5", Err("`2025-13-5`: there is no month 13"));
        check("2025-2-30", Err("`2025-2-30`: there is no such day"));
        check("2025-0-5", Err("`2025-0-5`: there is no month 0"));
        // Day or month first: the date it is, or both it could be.
        check("13/03/2025", Err("; 13/03/2025 is 2025-03-13)"));
        check("3/13/2025", Err("; 3/13/2025 is 2025-03-13)"));
        check(
            "12/03/2025",
            Err("; 12/03/2025 is 2025-03-12 day first, 2025-12-03 month first)"),
        );
        check("05/05/2025", Err("; 05/05/2025 is 2025-05-05)"));
        check("40/40/2025", Err("; 13/05/2025 is 2025-05-13)"));
        check("1/1/0000", Err("; 13/05/2025 is 2025-05-13)"));
        check("13/03/2025~", Err("; 13/03/2025~ is 2025-03-13~)"));
        check("yesterday", Err("is not a date"));
        check("", Err("empty date"));
        check("~", Err("empty date"));
        check("2025-01-09/2025-01-06", Err("ends before it starts"));
        check(
            "2025-09-10/2025-09",
            Err(
                "the interval's end begins before its start; give an end that begins no earlier, like `2025-09-10/2025-09-30`",
            ),
        );
        check("2025-09-10/2025-09~", Err("like `2025-09-10/2025-09-30~`"));
        check("2025-09-30/2025-09", Err("like `2025-09-30`"));
        // No suggestion that would be refused too.
        let refused = "2025-09-30T12:00:00Z/2025-09"
            .parse::<Extent>()
            .unwrap_err();
        assert!(refused.0.ends_with("begins no earlier"), "{refused}");
        check("2025-05-14/", Err("`2025-05-14/`: the interval has no end"));
        check(
            "/2025-05-14",
            Err("`/2025-05-14`: the interval has no start"),
        );
        check("2025-05-14~~", Err("`2025-05-14~~` has more than one ~"));
        assert!(matches!(
            Extent::known_at("yesterday"),
            Err(e) if e.0.contains("is not a date") && !e.0.contains('~')
        ));
        assert!(matches!(
            Extent::known_at("2025~~"),
            Err(e) if e.0.ends_with("give it without the ~, like 2025")
        ));
        check("2025/2026/2027", Err("more than one"));
        check("0000", Err("outside"));
        check("2025-01-05T25:00:00Z", Err("RFC 3339"));
        check(
            "2025-01-05T09:30:00",
            Err("has no time zone: add one, like 2025-01-05T09:30:00Z (UTC)"),
        );
    }

    #[test]
    fn ranges_are_half_open() {
        let month: Extent = "2025-01".parse().unwrap();
        let day: Extent = "2025-01-31".parse().unwrap();
        let feb: Extent = "2025-02".parse().unwrap();
        assert_eq!(month.latest(), day.latest());
        assert!(month.earliest() < day.earliest());
        assert_eq!(month.latest(), feb.earliest());
        let dec: Extent = "2024-12".parse().unwrap();
        assert_eq!(dec.latest(), month.earliest());
    }
}
