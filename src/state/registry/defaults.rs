//! The main-context directives' defaults, written as the directive
//! reference writes them (`docs/directives.md`): computed from
//! `Settings::default()`, so that a unit test fails when the reference and
//! the code disagree. (Test builds only.)

use super::Settings;
use crate::ocsp::schedule::Refresh;

/// A duration as nginx writes one: minutes when whole, else seconds.
fn time(secs: i64) -> String {
    if secs != 0 && secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.to_string()
}

/// (directive, its default value) for each main-context directive whose
/// default is a value (`ssl_stapling_zone`'s is sized for the
/// configuration).
pub fn documented_defaults() -> Vec<(&'static str, String)> {
    let s = Settings::default();
    let refresh = match s.policy.refresh {
        Refresh::Fraction(f) => format!("{f}"),
        Refresh::Interval(secs) => time(secs),
    };
    let size = if s.max_staple_bytes % 1024 == 0 {
        format!("{}k", s.max_staple_bytes / 1024)
    } else {
        s.max_staple_bytes.to_string()
    };
    vec![
        ("ssl_stapling_refresh", refresh),
        ("ssl_stapling_refresh_min_interval", time(s.refresh_min_interval)),
        (
            "ssl_stapling_fetch_timeout",
            time((s.fetch_timeout_ms / 1000) as i64),
        ),
        ("ssl_stapling_fetch_concurrency", s.fetch_concurrency.to_string()),
        ("ssl_stapling_serve_revoked", on_off(s.serve_revoked)),
        ("ssl_stapling_dynamic_max", s.dynamic_max.to_string()),
        ("ssl_stapling_max_size", size),
        (
            "ssl_stapling_max_age",
            s.time.max_age.map_or("off".to_string(), time),
        ),
        ("ssl_stapling_time_skew", time(s.time.skew)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_says_the_code_s_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/directives.md");
        let doc = std::fs::read_to_string(path).expect("docs/directives.md");
        for (name, value) in documented_defaults() {
            let line = format!("Default: {name} {value};");
            assert!(
                doc.contains(&line),
                "docs/directives.md does not say \"{line}\" (the code's default)"
            );
        }
    }

    #[test]
    fn times_as_nginx_writes_them() {
        assert_eq!(time(600), "10m");
        assert_eq!(time(10), "10s");
        assert_eq!(time(0), "0s");
    }
}
