//! Timestamps in the formats evidence carries, reduced to UTC.

use std::cell::Cell;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::ParseError;
use super::json::{self, Raw};

/// Parses a timestamp: RFC 3339 (`2024-07-03T10:00:00.123Z`), space-separated ISO with or without offset,
/// Python logging (`2021-05-03 11:47:12,494+0200`), S3 access logs (`06/Feb/2019:00:00:38 +0000`), and epoch
/// seconds (10 digits) or milliseconds (13 digits). Times without an offset are UTC.
pub(crate) fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim().trim_start_matches('[').trim_end_matches(']');
    if t.is_empty() {
        return None;
    }
    if let Some(d) = rfc3339_utc_fast(t.as_bytes()) {
        return Some(d);
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let v: i64 = t.parse().ok()?;
        return match t.len() {
            10 => DateTime::from_timestamp(v, 0),
            13 => DateTime::from_timestamp_millis(v),
            _ => None,
        };
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S,%3f%z", "%d/%b/%Y:%H:%M:%S %z"] {
        if let Ok(d) = DateTime::parse_from_str(t, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S,%3f"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Some(d.and_utc());
        }
    }
    None
}

/// The shape nearly every log line carries, `2024-07-03T10:00:00.123Z` (or without the
/// milliseconds), read without the general parsers; `None` for anything else (including second 60),
/// which then takes the general path, so the result is the same as `DateTime::parse_from_rfc3339`'s.
fn rfc3339_utc_fast(b: &[u8]) -> Option<DateTime<Utc>> {
    thread_local! {
        /// The last `….mmmZ` timestamp read (a line's is read by each parser it is offered to), as
        /// two words (compared without a `memcmp` call), and the last day.
        static LAST: Cell<Option<(u128, u64, DateTime<Utc>)>> = const { Cell::new(None) };
        static LAST_DAY: Cell<Option<([u8; 10], NaiveDate)>> = const { Cell::new(None) };
    }
    let words = <[u8; 24]>::try_from(b).ok().map(|a| {
        let (head, tail) = a.split_at(16);
        (
            u128::from_le_bytes(head.try_into().unwrap_or_default()),
            u64::from_le_bytes(tail.try_into().unwrap_or_default()),
        )
    });
    if let (Some((head, tail)), Some((h, t, time))) = (words, LAST.with(Cell::get))
        && head == h
        && tail == t
    {
        return Some(time);
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let milli = match b.len() {
        24 if b[19] == b'.' && b[23] == b'Z' => digits(20..23)?,
        20 if b[19] == b'Z' => 0,
        _ => return None,
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (sec, min, hour) = (digits(17..19)?, digits(14..16)?, digits(11..13)?);
    if sec > 59 {
        return None;
    }
    let date = match LAST_DAY.with(Cell::get) {
        Some((text, date)) if b.get(..10) == Some(&text[..]) => date,
        _ => {
            let year = i32::try_from(digits(0..4)?).ok()?;
            let date = NaiveDate::from_ymd_opt(year, digits(5..7)?, digits(8..10)?)?;
            let mut text = [0u8; 10];
            text.copy_from_slice(b.get(..10)?);
            LAST_DAY.with(|c| c.set(Some((text, date))));
            date
        }
    };
    let t = date.and_hms_milli_opt(hour, min, sec, milli)?.and_utc();
    if let Some((head, tail)) = words {
        LAST.with(|c| c.set(Some((head, tail, t))));
    }
    Some(t)
}

/// A timestamp from a JSON string or epoch number.
pub(crate) fn json_timestamp(raw: Raw<'_>, field: &str) -> Result<DateTime<Utc>, ParseError> {
    let text = json::scalar_cow(raw, field)?;
    parse_timestamp(&text).ok_or_else(|| ParseError::bad(field, format!("unrecognised timestamp {text:?}")))
}

/// Splits a leading timestamp token (CloudWatch Logs export: `2024-07-03T10:00:00.000Z <message>`) off `line`.
pub(crate) fn split_prefix(line: &str) -> (Option<DateTime<Utc>>, &str) {
    // The usual `2024-07-03T10:00:00.123Z ` (or without milliseconds): no search for the separator.
    let b = line.as_bytes();
    for len in [24, 20] {
        if b.len() > len
            && matches!(b[len], b' ' | b'\t')
            && let Some(ts) = rfc3339_utc_fast(&b[..len])
        {
            return (Some(ts), &line[len + 1..]);
        }
    }
    if !line.starts_with(|c: char| c.is_ascii_digit()) {
        return (None, line);
    }
    let end = line.find([' ', '\t']).unwrap_or(line.len());
    match parse_timestamp(&line[..end]) {
        Some(ts) => (Some(ts), line[end..].strip_prefix([' ', '\t']).unwrap_or(&line[end..])),
        None => (None, line),
    }
}

/// A log line split into its parts: an optional timestamp, an optional request id from a Lambda text
/// prefix (`<ts>\t<request id>\tINFO\t{...}`, Python's `[INFO]\t<ts>\t<request id>\t{...}`), and the body
/// (from the first JSON object on, or the whole message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub time: Option<DateTime<Utc>>,
    pub request_id: Option<&'a str>,
    pub body: &'a str,
}

pub(crate) fn split_message(line: &str) -> Message<'_> {
    let (mut time, rest) = split_prefix(trim(line));
    let mut request_id = None;
    if rest.starts_with('{') || memchr::memchr(b'\t', rest.as_bytes()).is_none() {
        return Message { time, request_id, body: rest };
    }
    let mut offset = 0;
    for field in rest.split('\t') {
        if field.starts_with('{') {
            return Message { time, request_id, body: &rest[offset..] };
        }
        if request_id.is_none() && is_uuid(field) {
            request_id = Some(field);
        } else if time.is_none() {
            time = parse_timestamp(field);
        }
        offset += field.len() + 1;
    }
    Message { time, request_id, body: rest }
}

/// `str::trim`, without decoding characters when the text starts and ends with visible ASCII (a
/// log line nearly always does): such a character is not whitespace, so there is nothing to trim.
pub(crate) fn trim(text: &str) -> &str {
    let b = text.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// `8fc6f963-411b-58b5-8483-a32130c0f45d`.
pub(crate) fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { b.is_ascii_hexdigit() })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ts(s: &str) -> String {
        parse_timestamp(s).map(|d| d.to_rfc3339()).unwrap_or_default()
    }

    proptest::proptest! {
        #[test]
        fn trim_is_str_trim(text in "[ \t\u{a0}\u{2003}a{}é\n\r]{0,8}") {
            proptest::prop_assert_eq!(trim(&text), text.trim());
        }
    }

    #[test]
    fn formats() {
        assert_eq!(ts("2022-10-21T14:05:05.766Z"), "2022-10-21T14:05:05.766+00:00");
        assert_eq!(ts("2021-05-03 11:47:12,494+0200"), "2021-05-03T09:47:12.494+00:00");
        assert_eq!(ts("[06/Feb/2019:23:00:38 -0200]"), "2019-02-07T01:00:38+00:00");
        assert_eq!(ts("1720000000000"), "2024-07-03T09:46:40+00:00");
        assert_eq!(ts("1720000000"), "2024-07-03T09:46:40+00:00");
        assert_eq!(ts("2024-07-03 10:00:00"), "2024-07-03T10:00:00+00:00");
        assert_eq!(ts("yesterday"), "");
        assert_eq!(ts("123"), "");
    }

    #[test]
    fn fast_shape_agrees_with_rfc3339() {
        for t in [
            "2024-07-03T10:00:00.123Z",
            "2024-07-03T10:00:00Z",
            "2024-02-29T23:59:59.999Z",
            "2023-02-29T00:00:00.000Z",
            "2024-07-03T24:00:00.000Z",
            "2024-07-03T10:60:00.000Z",
            "2024-07-03T10:00:60.000Z",
            "2024-13-03T10:00:00.000Z",
            "2024-07-03t10:00:00.000z",
            "2024-07-03T10:00:0a.000Z",
            "+024-07-03T10:00:00.000Z",
        ] {
            let want = DateTime::parse_from_rfc3339(t).ok().map(|d| d.with_timezone(&Utc));
            assert_eq!(parse_timestamp(t), want, "{t}");
            if want.is_none() || t.contains('t') || t.contains(":60") {
                assert_eq!(rfc3339_utc_fast(t.as_bytes()), None, "{t}");
            }
        }
    }

    #[test]
    fn messages() {
        let m = split_message("2024-07-03T10:00:00.123Z\t8fc6f963-411b-58b5-8483-a32130c0f45d\tINFO\t{\"a\":1}");
        assert_eq!(m.request_id, Some("8fc6f963-411b-58b5-8483-a32130c0f45d"));
        assert_eq!(m.body, "{\"a\":1}");
        assert!(m.time.is_some());
        let m = split_message("[INFO]\t2024-07-03T10:00:00.123Z\t8fc6f963-411b-58b5-8483-a32130c0f45d\t{\"a\":1}");
        assert_eq!((m.request_id.is_some(), m.time.is_some(), m.body), (true, true, "{\"a\":1}"));
        let m = split_message("2024-07-03T10:00:00.000Z REPORT RequestId: x");
        assert_eq!(m.body, "REPORT RequestId: x");
        let m = split_message("START RequestId: x Version: $LATEST");
        assert_eq!((m.time, m.body), (None, "START RequestId: x Version: $LATEST"));
    }
}
