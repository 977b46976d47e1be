//! Durations written the way Docker and Go write them: `30s`, `1m30s`,
//! `1.5s`, `500ms`. Image configs store them as nanoseconds.

const UNITS: [(&str, f64); 7] = [
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
];

/// Parse a Go-style duration into nanoseconds.
pub fn parse(text: &str) -> Result<i64, String> {
    let expected =
        || format!("`{text}` is not a duration; write it like `30s`, `1m30s` or `500ms`");
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() || text.starts_with('-') {
        return Err(expected());
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(expected)?;
        let number: f64 = rest[..num_len].parse().map_err(|_| expected())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(expected)?;
        total += number * scale;
        rest = &rest[unit_len..];
    }
    if total > i64::MAX as f64 {
        return Err(format!("`{text}` is too long a duration"));
    }
    // A positive duration never rounds down to 0, which would mean "unset".
    Ok((total.round() as i64).max(if total > 0.0 { 1 } else { 0 }))
}

/// Nanoseconds back to the shortest Go-style text (`1m30s`), for history lines.
pub fn format(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos % 1_000_000_000 != 0 {
        return format!("{}ms", nanos as f64 / 1e6);
    }
    let mut secs = nanos / 1_000_000_000;
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_durations() {
        assert_eq!(parse("30s"), Ok(30_000_000_000));
        assert_eq!(parse("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse("500ms"), Ok(500_000_000));
        assert_eq!(parse("2h"), Ok(7_200_000_000_000));
        assert_eq!(parse("0"), Ok(0));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "30", "s", "-1s", "1x", "1.2.3s", "30 s"] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn formats_back() {
        assert_eq!(format(90_000_000_000), "1m30s");
        assert_eq!(format(5_000_000_000), "5s");
        assert_eq!(format(1_500_000), "1.5ms");
        assert_eq!(format(0), "0s");
    }
}
