//! Times and durations as people type them on the command line: a delivery time as epoch
//! milliseconds or RFC 3339 (`2026-12-24T18:00:00Z`, `2026-12-24T19:00:00.250+01:00`), a delay
//! as a number and a unit (`500ms`, `10s`, `2m`, `1h`, `1d`). Parsing only: what the values
//! mean is up to the commands that take them.

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// Epoch milliseconds in `text`: all digits, or an RFC 3339 date-time with a `Z` or `±HH:MM`
/// offset (a fraction past milliseconds is cut off).
pub fn parse_epoch_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| format!("`{text}` is too large for epoch milliseconds"));
    }
    parse_rfc3339(text).ok_or_else(|| {
        format!(
            "`{text}` is neither epoch milliseconds nor an RFC 3339 time \
             such as 2026-12-24T18:00:00Z or 2026-12-24T19:00:00.250+01:00"
        )
    })
}

/// A delay such as `500ms` or `2m` (see `petrel_common::duration`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let ms = petrel_common::duration::parse_ms(text.trim())?;
    // parse_ms only reads digits, so the count is never negative.
    Ok(Duration::from_millis(ms as u64))
}

/// An RFC 3339 date-time, through the `time` crate.
fn parse_rfc3339(s: &str) -> Option<i64> {
    // The crate takes any character between date and time; RFC 3339 says `T` (or `t`).
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
        return None;
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// Epoch milliseconds as RFC 3339 in UTC with milliseconds, `2026-12-24T18:00:00.000Z`.
pub fn format_rfc3339(epoch_ms: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(epoch_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("{epoch_ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_milliseconds_are_taken_as_they_are() {
        assert_eq!(parse_epoch_ms("1767225600000"), Ok(1_767_225_600_000));
        assert_eq!(parse_epoch_ms(" 0 "), Ok(0));
        assert!(parse_epoch_ms("99999999999999999999")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn rfc3339_times_with_offsets_and_fractions() {
        assert_eq!(parse_epoch_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_epoch_ms("2026-01-01T00:00:00Z"),
            Ok(1_767_225_600_000)
        );
        assert_eq!(
            parse_epoch_ms("2026-01-01T01:00:00.250+01:00"),
            Ok(1_767_225_600_250)
        );
        assert_eq!(
            parse_epoch_ms("2025-12-31t19:30:00.5-04:30"),
            Ok(1_767_225_600_500)
        );
        assert_eq!(
            parse_epoch_ms("2026-01-01T00:00:00.123456789z"),
            Ok(1_767_225_600_123)
        );
        assert_eq!(
            parse_epoch_ms("2024-02-29T12:00:00Z"),
            Ok(1_709_208_000_000)
        );
        assert_eq!(parse_epoch_ms("1969-12-31T23:59:59Z"), Ok(-1_000));
    }

    #[test]
    fn malformed_times_are_refused_with_an_example() {
        for bad in [
            "",
            "-5",
            "tomorrow",
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00Z",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00Z junk",
            "2026-01-01X00:00:00Z",
        ] {
            let err = parse_epoch_ms(bad).expect_err(bad);
            assert!(err.contains("RFC 3339"), "{bad}: {err}");
        }
    }

    #[test]
    fn formatting_is_the_inverse_of_parsing() {
        for ms in [
            0,
            -1,
            1_709_208_000_000,
            1_767_225_600_123,
            951_782_400_000, // 2000-02-29
            253_402_300_799_999,
        ] {
            let text = format_rfc3339(ms);
            assert_eq!(parse_epoch_ms(&text), Ok(ms), "{text}");
        }
        assert_eq!(
            format_rfc3339(1_767_225_600_123),
            "2026-01-01T00:00:00.123Z"
        );
    }

    #[test]
    fn delays_take_a_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3_600)));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("-1s").is_err());
    }
}
