//! Times and durations as people type them on the command line: a delivery time as epoch
//! milliseconds or RFC 3339 (`2026-12-24T18:00:00Z`, `2026-12-24T19:00:00.250+01:00`), a delay
//! as a number and a unit (`500ms`, `10s`, `2m`, `1h`, `1d`). Parsing only: what the values
//! mean is up to the commands that take them.

use std::time::Duration;

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

/// `YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)`.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    // 60 is a leap second; it counts as the first second of the next minute.
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let mut ms_digits = [b'0'; 3];
        for (slot, &digit) in ms_digits.iter_mut().zip(&fraction[..n]) {
            *slot = digit;
        }
        millis = digits(&ms_digits)?;
        rest = &fraction[n..];
    }
    let offset_minutes = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// The value of ASCII digits, `None` if any byte is not one.
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Epoch milliseconds as RFC 3339 in UTC with milliseconds, `2026-12-24T18:00:00.000Z`.
pub fn format_rfc3339(epoch_ms: i64) -> String {
    let days = epoch_ms.div_euclid(86_400_000);
    let ms_of_day = epoch_ms.rem_euclid(86_400_000);
    // civil_from_days, the inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1_000 % 60,
        ms_of_day % 1_000
    )
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
            parse_epoch_ms("2026-01-01 00:00:00.123456789z"),
            Ok(1_767_225_600_123)
        );
        assert_eq!(
            parse_epoch_ms("2024-02-29T12:00:00Z"),
            Ok(1_709_208_000_000)
        );
        assert_eq!(parse_epoch_ms("1969-12-31T23:59:59Z"), Ok(-1_000));
        assert_eq!(
            parse_epoch_ms("2016-12-31T23:59:60Z"),
            parse_epoch_ms("2017-01-01T00:00:00Z")
        );
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
            let err = parse_epoch_ms(bad).unwrap_err();
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
