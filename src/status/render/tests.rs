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
                no_room: false,
            }),
        }],
    }
}

#[test]
fn json_has_the_fields() {
    let j = render_json(&page(), "0.1.0", "1.28.3", &Query::parse(b"detail=all"));
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
    let p = render_prometheus(&page(), "0.1.0", "1.28.3", Detail::All);
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
    let all = crate::status::select::Query::parse(b"detail=all");
    let h = crate::status::html::render_html(&p, "0.1.0", "1.28.3<x>", &all);
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
    assert!(h.contains("2 of 2 staple(s) listed (2 in all)."), "{h}");
    // By default only those that need attention, and a way to the rest.
    let h =
        crate::status::html::render_html(&p, "0.1.0", "1.28.3", &crate::status::select::Query::parse(b""));
    assert!(!h.contains("CN=fine"), "{h}");
    assert!(
        h.contains(
            "1 of 2 staple(s) listed (1 that need attention). <a href=\"?format=html&amp;detail=all\">"
        ),
        "{h}"
    );
}

#[test]
fn html_stays_a_page_at_any_count() {
    let p = many(2500, &[3, 2400]);
    let all = crate::status::select::Query::parse(b"detail=all");
    let h = crate::status::html::render_html(&p, "0.1.0", "1.28.3", &all);
    assert_eq!(h.matches("<tr class=").count(), 1000, "a page of rows");
    assert!(h.contains("2500 staple(s)"), "the summary counts them all");
    // the failing ones first
    assert!(h.find("CN=c3<").unwrap() < h.find("CN=c0<").unwrap());
    assert!(h.contains("CN=c2400<"));
    assert!(
        h.contains("<a href=\"?format=html&amp;detail=all&amp;page=2&amp;per_page=1000\">Next page</a>"),
        "{h}"
    );
    let third = crate::status::select::Query::parse(b"detail=all&page=3");
    let h = crate::status::html::render_html(&p, "0.1.0", "1.28.3", &third);
    assert_eq!(h.matches("<tr class=").count(), 500);
    assert!(
        h.contains("500 of 2500 staple(s) listed (2500 in all), from number 2001."),
        "{h}"
    );
    assert!(!h.contains("Next page"));
}

/// `n` certificates, all healthy but the `sick` ones (failing to fetch).
fn many(n: usize, sick: &[usize]) -> Page {
    let one = page();
    let base = one.certs[0].clone();
    let certs = (0..n)
        .map(|i| {
            let mut c = base.clone();
            c.subject = Some(format!("CN=c{i}"));
            c.must_staple = false;
            if let Some(s) = c.state.as_mut() {
                s.failures = u32::from(sick.contains(&i));
                // Valid for a week.
                s.next_update = one.now + 7 * 86_400 + i as i64;
            }
            c
        })
        .collect();
    Page { certs, ..one }
}

#[test]
fn prometheus_series_do_not_grow_with_healthy_certificates() {
    let series = |p: &str| p.lines().filter(|l| !l.starts_with('#')).count();
    let small = render_prometheus(&many(10, &[3]), "0.1.0", "1.28.3", Detail::Attention);
    let large = render_prometheus(&many(10_000, &[3]), "0.1.0", "1.28.3", Detail::Attention);
    assert_eq!(series(&small), series(&large), "{large}");
    assert!(series(&large) < 40, "{large}");
    let healthy = render_prometheus(&many(10_000, &[]), "0.1.0", "1.28.3", Detail::Attention);
    assert_eq!(series(&healthy), 18, "{healthy}");
    // The totals count every certificate.
    assert!(large.contains("ssl_stapling_staples{state=\"total\"} 10000\n"));
    assert!(large.contains("ssl_stapling_staples{state=\"valid\"} 10000\n"));
    assert!(large.contains("ssl_stapling_staples{state=\"failing\"} 1\n"));
    assert!(large.contains("ssl_stapling_staples{state=\"expiring\"} 0\n"));
    assert!(large.contains("ssl_stapling_soonest_next_update_seconds 604800\n"));
    assert!(large.contains("ssl_stapling_all_fetches_total{result=\"ok\"} 30000\n"));
    assert!(large.contains("ssl_stapling_all_handshakes_total{stapled=\"no\"} 20000\n"));
    // The one that needs attention has its series, and only it.
    assert!(large.contains(",subject=\"CN=c3\",serial=\"1f\"} 1\n"));
    assert_eq!(large.matches("ssl_stapling_fetch_failures{").count(), 1);
    assert!(
        !large.contains("ssl_stapling_fetches_total{"),
        "per-certificate counters: detail=all"
    );
    // Everything with detail=all.
    let all = render_prometheus(&many(100, &[3]), "0.1.0", "1.28.3", Detail::All);
    assert_eq!(all.matches("ssl_stapling_staple_valid{").count(), 100);
    assert_eq!(all.matches("ssl_stapling_fetches_total{").count(), 200);
}

#[test]
fn attention_means_what_the_alerts_watch() {
    let mut p = many(4, &[]);
    let now = p.now;
    // 0: healthy; 1: an hour left of a day's validity (not refreshed at
    // half); 2: no staple; 3: no room.
    if let Some(s) = p.certs[1].state.as_mut() {
        s.this_update = now - 86_400;
        s.next_update = now + 3600;
    }
    if let Some(s) = p.certs[2].state.as_mut() {
        s.has_staple = false;
    }
    p.certs[3].zone_full = true;
    let shown: Vec<bool> = p.certs.iter().map(|c| needs_attention(c, now)).collect();
    assert_eq!(shown, [false, true, true, true]);
    let text = render_prometheus(&p, "0.1.0", "1.28.3", Detail::Attention);
    assert!(text.contains("ssl_stapling_staples{state=\"expiring\"} 1\n"));
    assert!(text.contains("ssl_stapling_staples{state=\"invalid\"} 1\n"));
    assert!(text.contains("ssl_stapling_staples{state=\"without_room\"} 1\n"));
    assert!(!text.contains("subject=\"CN=c0\""));
}

#[test]
fn a_short_validity_is_not_expiring_while_refreshed() {
    // Four-hour responses, refreshed at half: 2-4 hours left is healthy.
    let mut p = many(1, &[]);
    let now = p.now;
    if let Some(s) = p.certs[0].state.as_mut() {
        s.this_update = now - 3600;
        s.next_update = now + 3 * 3600;
    }
    assert!(!needs_attention(&p.certs[0], now));
    // Past three quarters of it: attention.
    if let Some(s) = p.certs[0].state.as_mut() {
        s.this_update = now - 3 * 3600 - 60;
        s.next_update = now + 3600 - 60;
    }
    assert!(needs_attention(&p.certs[0], now));
}

#[test]
fn json_lists_what_the_query_asks_for() {
    let p = many(50, &[7, 9]);
    let listed = |args: &[u8]| {
        let j = render_json(&p, "0.1.0", "1.28.3", &Query::parse(args));
        (j.matches("{\"subject\":").count(), j)
    };
    // By default, the totals and the two that need attention.
    let (n, j) = listed(b"");
    assert_eq!(n, 2, "{j}");
    assert!(
        j.contains("\"summary\":{\"total\":50,\"valid\":50,\"invalid\":0,\"failing\":2,"),
        "{j}"
    );
    assert!(j.contains("\"listed\":{\"detail\":\"attention\",\"state\":null,\"id\":null,\"matching\":2,\"page\":null,\"per_page\":null}"), "{j}");
    assert_eq!(listed(b"detail=all").0, 50);
    assert_eq!(listed(b"state=valid").0, 50);
    assert_eq!(listed(b"state=failing").0, 2);
    assert_eq!(listed(b"state=nonsense").0, 0);
    // Pages of 20: 20, 20, 10, then none.
    let pages: Vec<usize> = (1..=4)
        .map(|n| listed(format!("detail=all&per_page=20&page={n}").as_bytes()).0)
        .collect();
    assert_eq!(pages, [20, 20, 10, 0]);
    let (_, j) = listed(b"detail=all&per_page=20&page=3");
    assert!(j.contains("\"matching\":50,\"page\":3,\"per_page\":20}"), "{j}");
    // One by its staple id or its certificate's SHA-256.
    let id = p.certs[0].id.map(|k| k.to_string()).unwrap_or_default();
    assert_eq!(
        listed(format!("id={id}").as_bytes()).0,
        50,
        "all 50 share the id here"
    );
    assert_eq!(listed(b"id=00").0, 0);
}
