//! The parts of directive values the module parses itself (sizes and
//! times are nginx's own `ngx_parse_size` / `ngx_parse_time`). No nginx
//! here: unit tests and the fuzzer reach it.

use std::ops::RangeInclusive;

/// What `ssl_stapling_refresh` was given, as far as this module reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RefreshValue {
    /// "0.5" or "50%": a fraction of the validity, strictly between 0 and 1.
    Fraction(f64),
    /// Written as a fraction but outside (0, 1), or not a number.
    BadFraction,
    /// Anything else: a time for `ngx_parse_time` ("1h").
    Time,
}

pub fn refresh_value(text: &[u8]) -> RefreshValue {
    let Ok(text) = std::str::from_utf8(text) else {
        return RefreshValue::Time;
    };
    let fraction = match text.strip_suffix('%') {
        Some(p) => Some(p.parse::<f64>().ok().map(|p| p / 100.0)),
        None if text.contains('.') => Some(text.parse::<f64>().ok()),
        None => None,
    };
    match fraction {
        None => RefreshValue::Time,
        Some(Some(f)) if f > 0.0 && f < 1.0 => RefreshValue::Fraction(f),
        Some(_) => RefreshValue::BadFraction,
    }
}

/// A decimal count within `range`.
pub fn count(text: &[u8], range: RangeInclusive<usize>) -> Option<usize> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| range.contains(n))
}

/// `ssl_stapling_zone`'s "name:size", split at the last colon; the name
/// must not be empty.
pub fn zone_name_and_size(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = text.iter().rposition(|&b| b == b':')?;
    let (name, size) = (text.get(..colon)?, text.get(colon + 1..)?);
    (!name.is_empty()).then_some((name, size))
}

/// "on" or "off".
pub fn on_off(text: &[u8]) -> Option<bool> {
    match text {
        b"on" => Some(true),
        b"off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh() {
        assert_eq!(refresh_value(b"0.5"), RefreshValue::Fraction(0.5));
        assert_eq!(refresh_value(b"25%"), RefreshValue::Fraction(0.25));
        assert_eq!(refresh_value(b"1.5"), RefreshValue::BadFraction);
        assert_eq!(refresh_value(b"0%"), RefreshValue::BadFraction);
        assert_eq!(refresh_value(b"x%"), RefreshValue::BadFraction);
        assert_eq!(refresh_value(b"nan."), RefreshValue::BadFraction);
        assert_eq!(refresh_value(b"1h"), RefreshValue::Time);
        assert_eq!(refresh_value(b"\xff"), RefreshValue::Time);
    }

    #[test]
    fn counts_zones_flags() {
        assert_eq!(count(b"4", 1..=1024), Some(4));
        assert_eq!(count(b"0", 1..=1024), None);
        assert_eq!(count(b"-1", 1..=1024), None);
        assert_eq!(count(b"99999999999999999999999", 1..=1024), None);
        assert_eq!(zone_name_and_size(b"a:b:1m"), Some((&b"a:b"[..], &b"1m"[..])));
        assert_eq!(zone_name_and_size(b":1m"), None);
        assert_eq!(zone_name_and_size(b"one"), None);
        assert_eq!(zone_name_and_size(b"one:"), Some((&b"one"[..], &b""[..])));
        assert_eq!(on_off(b"on"), Some(true));
        assert_eq!(on_off(b"On"), None);
    }
}
