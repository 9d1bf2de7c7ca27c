//! The status page's text: JSON, or Prometheus's text format, from the
//! copies `collect` took.

use std::fmt::Write;

use super::collect::{CertView, EntryView, Page};
use super::select::{needs_attention, totals, Query, STATES};
use crate::state::zone::StapleSource;
fn source_str(s: StapleSource) -> &'static str {
    match s {
        StapleSource::None => "none",
        StapleSource::File => "file",
        StapleSource::Fetched => "fetched",
        StapleSource::Store => "store",
    }
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// A quoted string with the escapes of JSON, or (`json` false) of
/// Prometheus label values, which know only backslash, quote and newline;
/// other control characters are left out there.
fn quoted(out: &mut String, s: &str, json: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' if json => out.push_str("\\r"),
            '\t' if json => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                if json {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_str(out: &mut String, s: &str) {
    quoted(out, s, true)
}

fn json_opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.push_str("null"),
    }
}

fn json_time(out: &mut String, t: i64) {
    if t == 0 {
        out.push_str("null");
    } else {
        json_str(out, &rfc3339(t));
    }
}

/// The JSON page: versions, zone, totals by state, and the certificates
/// `query` selects (by default those that need attention).
pub fn render_json(page: &Page, module_version: &str, nginx_version: &str, query: &Query) -> String {
    let (listed, matching) = query.select(page);
    let mut o = String::with_capacity(1024 + listed.len() * 900);
    o.push_str("{\"module_version\":");
    json_str(&mut o, module_version);
    o.push_str(",\"nginx_version\":");
    json_str(&mut o, nginx_version);
    o.push_str(",\"time\":");
    json_time(&mut o, page.now);
    o.push_str(",\"zone\":");
    match &page.zone {
        Some(z) => {
            o.push_str("{\"name\":");
            json_str(&mut o, &z.name);
            let _ = write!(
                o,
                ",\"size\":{},\"used\":{},\"entries\":{},\"dynamic_entries\":{},\"without_room\":{}}}",
                z.size, z.used, z.entries, z.dynamic_entries, z.without_room
            );
        }
        None => o.push_str("null"),
    }
    let (counts, soonest) = totals(page);
    o.push_str(",\"summary\":{");
    for (i, (state, n)) in STATES.iter().zip(counts).enumerate() {
        let _ = write!(o, "{}\"{state}\":{n}", if i > 0 { "," } else { "" });
    }
    o.push_str(",\"soonest_next_update\":");
    json_time(&mut o, soonest.map_or(0, |s| page.now + s));
    o.push_str("},\"listed\":{\"detail\":");
    json_str(&mut o, if query.all { "all" } else { "attention" });
    o.push_str(",\"state\":");
    json_opt_str(&mut o, query.state.as_deref());
    o.push_str(",\"id\":");
    json_opt_str(&mut o, query.id.as_deref());
    let _ = write!(o, ",\"matching\":{matching},\"page\":");
    match query.page {
        Some(p) => {
            let _ = write!(o, "{p},\"per_page\":{}}}", query.per_page);
        }
        None => o.push_str("null,\"per_page\":null}"),
    }
    o.push_str(",\"certificates\":[");
    for (i, c) in listed.iter().copied().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push_str("\n{\"subject\":");
        json_opt_str(&mut o, c.subject.as_deref());
        o.push_str(",\"serial\":");
        json_opt_str(&mut o, c.serial.as_deref());
        o.push_str(",\"id\":");
        json_opt_str(&mut o, c.id.map(|k| k.to_string()).as_deref());
        o.push_str(",\"sha256\":");
        json_opt_str(&mut o, c.sha256.as_deref());
        o.push_str(",\"servers\":[");
        for (j, s) in c.servers.iter().enumerate() {
            if j > 0 {
                o.push(',');
            }
            json_str(&mut o, s);
        }
        o.push_str("],\"protocol\":");
        json_opt_str(&mut o, (!c.protocol.is_empty()).then_some(c.protocol));
        o.push_str(",\"responder\":");
        json_opt_str(&mut o, c.responder.as_deref());
        o.push_str(",\"file\":");
        json_opt_str(&mut o, c.file.as_deref());
        let _ = write!(
            o,
            ",\"loaded_by_variables\":{},\"must_staple\":{}",
            c.dynamic, c.must_staple
        );
        let s = c.state;
        let valid = s.is_some_and(|s| s.valid(page.now));
        let _ = write!(
            o,
            ",\"valid\":{valid},\"gap\":{},\"zone_full\":{}",
            c.must_staple && !valid,
            c.zone_full
        );
        o.push_str(",\"source\":");
        json_str(&mut o, s.map_or("none", |s| source_str(s.source)));
        o.push_str(",\"status\":");
        json_str(&mut o, s.map_or("none", |s| s.status_str()));
        let has = s.filter(|s| s.has_staple);
        o.push_str(",\"this_update\":");
        json_time(&mut o, has.map_or(0, |s| s.this_update));
        o.push_str(",\"next_update\":");
        json_time(&mut o, has.map_or(0, |s| s.next_update));
        o.push_str(",\"next_refresh\":");
        json_time(
            &mut o,
            s.filter(|_| c.responder.is_some()).map_or(0, |s| s.next_refresh),
        );
        let _ = write!(o, ",\"bytes\":{}", s.map_or(0, |s| s.bytes));
        o.push_str(",\"last_fetch\":");
        match s.filter(|s| s.last_fetch != 0) {
            Some(s) => {
                o.push_str("{\"time\":");
                json_time(&mut o, s.last_fetch);
                o.push_str(",\"result\":");
                json_str(&mut o, s.last_result.as_str());
                o.push_str(",\"error\":");
                let e = s.error();
                json_opt_str(&mut o, (!e.is_empty()).then_some(e.as_str()));
                o.push('}');
            }
            None => o.push_str("null"),
        }
        let (ok, failed, stapled, unstapled) = s.map_or((0, 0, 0, 0), |s| {
            (s.fetch_ok, s.fetch_failed, s.stapled, s.unstapled)
        });
        let _ = write!(
            o,
            ",\"fetches\":{{\"ok\":{ok},\"failed\":{failed}}},\"handshakes\":{{\"stapled\":{stapled},\"unstapled\":{unstapled}}}}}"
        );
    }
    o.push_str("\n]}\n");
    o
}

fn label(out: &mut String, s: &str) {
    quoted(out, s, false)
}

/// Which certificates get series of their own in the Prometheus text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Only those that need attention (see `needs_attention`): the number
    /// of series does not grow with the number of healthy certificates.
    Attention,
    /// Every certificate, with its counters too (`?detail=all`).
    All,
}

/// A label value of a counter, and the entry field it reads.
type LabelValue = (&'static str, fn(&EntryView) -> u64);

/// A counter of the entries: per certificate (`?detail=all`) and summed
/// over all of them (always), with one label whose values read one field.
struct Counter {
    name: &'static str,
    help: &'static str,
    total_name: &'static str,
    total_help: &'static str,
    label: &'static str,
    values: [LabelValue; 2],
}

const COUNTERS: [Counter; 2] = [
    Counter {
        name: "ssl_stapling_fetches_total",
        help: "OCSP fetches by result.",
        total_name: "ssl_stapling_all_fetches_total",
        total_help: "OCSP fetches of all staples, by result.",
        label: "result",
        values: [("ok", |s| s.fetch_ok), ("failed", |s| s.fetch_failed)],
    },
    Counter {
        name: "ssl_stapling_handshakes_total",
        help: "Handshakes asking for a staple, by whether one was sent.",
        total_name: "ssl_stapling_all_handshakes_total",
        total_help: "Handshakes asking for a staple, all certificates, by whether one was sent.",
        label: "stapled",
        values: [("yes", |s| s.stapled), ("no", |s| s.unstapled)],
    },
];

/// The totals by state, whatever the number of certificates.
fn summary(o: &mut String, page: &Page) {
    let (counts, soonest) = totals(page);
    o.push_str(
        "# HELP ssl_stapling_staples Staples by state (total, valid, invalid, failing, \
         expiring: not refreshed within a day of its nextUpdate, must-staple without one, \
         without room).\n\
         # TYPE ssl_stapling_staples gauge\n",
    );
    for (state, n) in STATES.iter().zip(counts) {
        let _ = writeln!(o, "ssl_stapling_staples{{state=\"{state}\"}} {n}");
    }
    if let Some(secs) = soonest {
        o.push_str(
            "# HELP ssl_stapling_soonest_next_update_seconds Seconds until the first valid staple \
             reaches its nextUpdate.\n# TYPE ssl_stapling_soonest_next_update_seconds gauge\n",
        );
        let _ = writeln!(o, "ssl_stapling_soonest_next_update_seconds {secs}");
    }
    for c in &COUNTERS {
        let (name, help, key) = (c.total_name, c.total_help, c.label);
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
        for (v, get) in c.values {
            let n: u64 = page.certs.iter().filter_map(|c| c.state.as_ref()).map(get).sum();
            let _ = writeln!(o, "{name}{{{key}=\"{v}\"}} {n}");
        }
    }
}

/// The Prometheus text: the versions, the zone, the totals by state, and
/// series of their own for the certificates `detail` asks for.
pub fn render_prometheus(page: &Page, module_version: &str, nginx_version: &str, detail: Detail) -> String {
    let mut o = String::with_capacity(4096);

    o.push_str("# HELP ssl_stapling_info Module and nginx versions.\n# TYPE ssl_stapling_info gauge\n");
    o.push_str("ssl_stapling_info{module_version=");
    label(&mut o, module_version);
    o.push_str(",nginx_version=");
    label(&mut o, nginx_version);
    o.push_str("} 1\n");
    if let Some(z) = &page.zone {
        for (name, help, v) in [
            ("ssl_stapling_zone_size_bytes", "Size of the shared zone.", z.size),
            (
                "ssl_stapling_zone_used_bytes",
                "Bytes of the shared zone in use.",
                z.used,
            ),
            (
                "ssl_stapling_zone_entries",
                "Certificates in the shared zone.",
                z.entries,
            ),
            (
                "ssl_stapling_zone_dynamic_entries",
                "Certificates loaded by variables in the shared zone.",
                z.dynamic_entries,
            ),
            (
                "ssl_stapling_zone_staples_without_room",
                "Staples of the configuration the zone has no room for (neither fetched nor served).",
                z.without_room,
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
            o.push_str(name);
            o.push_str("{zone=");
            label(&mut o, &z.name);
            let _ = writeln!(o, "}} {v}");
        }
    }
    summary(&mut o, page);
    let shown: Vec<&CertView> = page
        .certs
        .iter()
        .filter(|c| detail == Detail::All || needs_attention(c, page.now))
        .collect();
    let labels = |c: &CertView| {
        let short = |h: &str| h.get(..16).unwrap_or(h).to_string();
        let mut l = String::from("{sha256=");
        label(&mut l, &c.sha256.as_deref().map(short).unwrap_or_default());
        l.push_str(",staple=");
        label(&mut l, &c.id.map(|k| short(&k.to_string())).unwrap_or_default());
        l.push_str(",subject=");
        label(&mut l, c.subject.as_deref().unwrap_or(""));
        l.push_str(",serial=");
        label(&mut l, c.serial.as_deref().unwrap_or(""));
        l
    };
    type Metric = (&'static str, &'static str, &'static str);
    let gauges: [Metric; 5] = [
        (
            "ssl_stapling_staple_valid_seconds",
            "gauge",
            "Seconds until the staple's nextUpdate (0 without a valid staple, +Inf without nextUpdate).",
        ),
        (
            "ssl_stapling_staple_valid",
            "gauge",
            "1 when a valid staple is served.",
        ),
        (
            "ssl_stapling_must_staple",
            "gauge",
            "1 for must-staple (RFC 7633) certificates.",
        ),
        (
            "ssl_stapling_next_refresh_seconds",
            "gauge",
            "Seconds until the next fetch (negative when due).",
        ),
        (
            "ssl_stapling_fetch_failures",
            "gauge",
            "Fetches failed in a row since the last one that brought a staple.",
        ),
    ];
    for (i, (name, kind, help)) in gauges.iter().enumerate() {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for c in shown.iter().copied() {
            let s = c.state;
            let valid = s.is_some_and(|s| s.valid(page.now));
            let value = match i {
                0 => match s {
                    Some(s) if valid && s.next_update == 0 => "+Inf".to_string(),
                    Some(s) if valid => (s.next_update - page.now).to_string(),
                    _ => "0".to_string(),
                },
                1 => u8::from(valid).to_string(),
                2 => u8::from(c.must_staple).to_string(),
                4 => {
                    if c.responder.is_none() {
                        continue;
                    }
                    s.map_or(0, |s| s.failures).to_string()
                }
                _ => {
                    if c.responder.is_none() {
                        continue;
                    }
                    s.map_or(0, |s| s.next_refresh - page.now).to_string()
                }
            };
            let _ = writeln!(o, "{name}{}}} {value}", labels(c));
        }
    }
    if detail != Detail::All {
        return o;
    }
    for counter in &COUNTERS {
        let (name, help, key) = (counter.name, counter.help, counter.label);
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
        for c in &page.certs {
            for (v, get) in counter.values {
                let n = c.state.as_ref().map_or(0, get);
                let _ = writeln!(o, "{name}{},{key}=\"{v}\"}} {n}", labels(c));
            }
        }
    }
    o
}

#[cfg(test)]
mod tests;
