//! Any bytes as the value of a module directive, and as a responder URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ngx_ssl_stapling_module::fuzzing::{count, on_off, refresh_value, zone_name_and_size, RefreshValue};
use ngx_ssl_stapling_module::fuzzing::ResponderUrl;

fuzz_target!(|data: &[u8]| {
    if let RefreshValue::Fraction(f) = refresh_value(data) {
        assert!(f > 0.0 && f < 1.0);
    }
    if let Some(n) = count(data, 1..=1024) {
        assert!((1..=1024).contains(&n));
    }
    if let Some((name, size)) = zone_name_and_size(data) {
        assert!(!name.is_empty());
        assert_eq!(name.len() + 1 + size.len(), data.len());
    }
    let _ = on_off(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(url) = ResponderUrl::parse(text) {
            let _ = url.host_header();
            // What it prints parses again to the same URL.
            assert_eq!(ResponderUrl::parse(&url.to_string()).ok(), Some(url));
        }
    }
});
