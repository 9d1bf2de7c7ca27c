use super::*;
use crate::ocsp::response::CertStatus;
use crate::state::certificate::StapleKey;
use crate::state::zone::FetchResult;
use crate::status::collect::ZoneView;

#[test]
fn times() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_795_305_600 + 3661), "2026-11-22T01:01:01Z");
}

fn page() -> Page {
    let mut err = [0u8; crate::state::zone::LAST_ERROR_LEN];
    err[..7].copy_from_slice(b"timeout");
    Page {
        now: 1000,
        zone: Some(ZoneView {
            name: "z".into(),
            size: 1 << 20,
            used: 4096,
            entries: 1,
            dynamic_entries: 0,
            without_room: 0,
        }),
        certs: vec![CertView {
            id: Some(StapleKey([0xcd; 32])),
            subject: Some("CN=a \"quoted\"".into()),
            serial: Some("1f".into()),
            sha256: Some("ab".repeat(32)),
            servers: vec!["a.test".into()],
            protocol: "http",
            responder: Some("http://ocsp.test/".into()),
            file: None,
            dynamic: false,
            must_staple: true,
            zone_full: false,
            state: Some(EntryView {
                source: StapleSource::Fetched,
                has_staple: true,
                status: CertStatus::Good,
                this_update: 900,
                next_update: 1600,
                next_refresh: 1250,
                last_fetch: 990,
                last_result: FetchResult::Failed,
                last_error: err,
                last_error_len: 7,
                fetch_ok: 3,
                fetch_failed: 1,
                failures: 1,
                stapled: 10,
                unstapled: 2,
                bytes: 500,
            }),
        }],
    }
}

#[test]
fn json_has_the_fields() {
    let j = render_json(&page(), "0.1.0", "1.28.3");
    for want in [
        "\"subject\":\"CN=a \\\"quoted\\\"\"",
        "\"serial\":\"1f\"",
        &format!(
            "\"id\":\"{}\",\"sha256\":\"{}\"",
            "cd".repeat(32),
            "ab".repeat(32)
        ),
        "\"servers\":[\"a.test\"]",
        "\"source\":\"fetched\"",
        "\"status\":\"good\"",
        "\"next_update\":\"1970-01-01T00:26:40Z\"",
        "\"last_fetch\":{\"time\":\"1970-01-01T00:16:30Z\",\"result\":\"failed\",\"error\":\"timeout\"}",
        "\"fetches\":{\"ok\":3,\"failed\":1}",
        "\"handshakes\":{\"stapled\":10,\"unstapled\":2}",
        "\"must_staple\":true,\"valid\":true,\"gap\":false,\"zone_full\":false",
    ] {
        assert!(j.contains(want), "{want} not in {j}");
    }
}

#[test]
fn prometheus_lines() {
    let p = render_prometheus(&page(), "0.1.0", "1.28.3");
    assert!(p.contains("ssl_stapling_staple_valid_seconds{sha256=\"abababababababab\",staple=\"cdcdcdcdcdcdcdcd\",subject=\"CN=a \\\"quoted\\\"\",serial=\"1f\"} 600\n"));
    assert!(p.contains(",result=\"failed\"} 1\n"));
    assert!(p.contains("# TYPE ssl_stapling_fetch_failures gauge\nssl_stapling_fetch_failures{sha256=\"abababababababab\",staple=\"cdcdcdcdcdcdcdcd\",subject=\"CN=a \\\"quoted\\\"\",serial=\"1f\"} 1\n"));
    let mut l = String::new();
    label(&mut l, "a\tb\"c\\d\ne");
    assert_eq!(l, "\"ab\\\"c\\\\d\\ne\"");
    let mut j = String::new();
    json_str(&mut j, "a\tb\u{1}");
    assert_eq!(j, "\"a\\tb\\u0001\"");
    assert!(p.contains("# TYPE ssl_stapling_fetches_total counter\n"));
    for line in p.lines() {
        assert!(line.starts_with('#') || line.rsplit_once(' ').is_some());
    }
}

#[test]
fn html_for_people() {
    let mut p = page();
    // One more staple, fine, to see the order: the gap comes first.
    let mut fine = p.certs[0].clone();
    fine.subject = Some("CN=fine".into());
    fine.must_staple = false;
    if let Some(s) = fine.state.as_mut() {
        s.failures = 0;
    }
    p.certs.insert(0, fine);
    if let Some(s) = p.certs[1].state.as_mut() {
        s.next_update = 999;
    }
    let h = crate::status::html::render_html(&p, "0.1.0", "1.28.3<x>");
    assert!(h.starts_with("<!DOCTYPE html>"));
    assert!(!h.contains("<script"), "{h}");
    assert!(h.contains("CN=a &quot;quoted&quot;"), "{h}");
    assert!(h.contains("nginx 1.28.3&lt;x&gt;"));
    assert!(h.contains("1 must-staple gap(s)"), "{h}");
    assert!(h.contains("1 valid"), "{h}");
    let gap = h.find("must-staple without a staple").unwrap();
    let good = h.find("CN=fine").unwrap();
    assert!(gap < good, "the gap first");
    assert!(h.contains("timeout"));
}
