//! Durations written as a whole number and a unit (`100ms`, `5s`, `10m`, `2h`, `1d`), as
//! RocketMQ's `messageDelayLevel` writes them; also what `petrel admin` takes for an age.

/// Milliseconds in `text`: digits then one of `ms`, `s`, `m`, `h`, `d`.
pub fn parse_ms(text: &str) -> Result<i64, String> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(digits);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => return Err(format!("`{text}` has no unit; use ms, s, m, h or d")),
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}`; use ms, s, m, h or d"
            ))
        }
    };
    n.checked_mul(unit_ms)
        .ok_or_else(|| format!("`{text}` is too long"))
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn units_and_mistakes() {
        assert_eq!(parse_ms("100ms"), Ok(100));
        assert_eq!(parse_ms("5s"), Ok(5_000));
        assert_eq!(parse_ms("10m"), Ok(600_000));
        assert_eq!(parse_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_ms("1d"), Ok(86_400_000));
        assert!(parse_ms("s")
            .unwrap_err()
            .contains("does not start with a number"));
        assert!(parse_ms("5").unwrap_err().contains("no unit"));
        assert!(parse_ms("10y").unwrap_err().contains("unknown unit"));
        assert!(parse_ms("99999999999999999d")
            .unwrap_err()
            .contains("too long"));
    }
}
