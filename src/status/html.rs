//! The status page for people (`?format=html`, or what a browser asks
//! for): a summary at the top, then the staples that need attention first,
//! each with a bar of its remaining validity, its last fetch and error,
//! its servers. One self-contained document: no script, no outside
//! resource, inline styles only; everything that comes from outside
//! (subjects, errors, server names) is escaped.

use std::fmt::Write;

use super::collect::{CertView, Page};
use super::render::rfc3339;
use super::select::Query;

/// How much a staple needs attention; lower first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attention {
    /// Must-staple and no valid staple: browsers refuse the site.
    Gap,
    /// The zone has no room for it: neither fetched nor served.
    NoRoom,
    /// No valid staple.
    NoStaple,
    /// A valid staple, but its last fetches failed.
    Failing,
    Good,
}

impl Attention {
    fn of(c: &CertView, now: i64) -> Attention {
        let valid = c.state.is_some_and(|s| s.valid(now));
        if c.must_staple && !valid {
            Attention::Gap
        } else if c.zone_full {
            Attention::NoRoom
        } else if !valid {
            Attention::NoStaple
        } else if c.state.is_some_and(|s| s.failures > 0) {
            Attention::Failing
        } else {
            Attention::Good
        }
    }

    fn word(self) -> &'static str {
        match self {
            Attention::Gap => "must-staple without a staple",
            Attention::NoRoom => "no room in the zone",
            Attention::NoStaple => "no valid staple",
            Attention::Failing => "fetches failing",
            Attention::Good => "good",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Attention::Gap | Attention::NoRoom => "bad",
            Attention::NoStaple | Attention::Failing => "warn",
            Attention::Good => "good",
        }
    }
}

/// `s` with `&`, `<`, `>`, `"` and `'` escaped, control characters dropped.
pub fn escape(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// A duration for people: "3d 4h", "5h 2m", "2m 5s", "40s".
pub fn human(secs: i64) -> String {
    let (neg, s) = (secs < 0, secs.unsigned_abs());
    let (d, h, m, sec) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    let t = if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    };
    if neg {
        format!("-{t}")
    } else {
        t
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}table{border-collapse:collapse;width:100%}\
td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left;vertical-align:top;font-size:.9em}\
.summary span{display:inline-block;margin-right:1.2em;padding:.3em .6em;border-radius:.3em;background:#eee}\
.bad,.summary .bad{background:#f8d0d0}.warn,.summary .warn{background:#fbe8c0}\
.good,.summary .good{background:#d8f0d8}\
.bar{width:10em;height:.8em;background:#eee;border:1px solid #bbb}\
.bar span{display:block;height:100%;background:#5a5}\
.err{color:#a00}.small{color:#666;font-size:.85em}";

/// The most rows a page shows (`per_page` asks for fewer).
const ROWS_PER_PAGE: usize = 1000;

/// The page. `now` is the page's time; the summary counts every staple;
/// the table lists those `query` picks (by default those that need
/// attention; `detail=all` every one), in the order they need attention,
/// then by the time their staple has left, a page of at most 1,000 rows
/// at a time (`page=N`).
pub fn render_html(page: &Page, module_version: &str, nginx_version: &str, query: &Query) -> String {
    let now = page.now;
    let mut certs: Vec<(Attention, &CertView)> =
        page.certs.iter().map(|c| (Attention::of(c, now), c)).collect();
    certs.sort_by_key(|(a, c)| (*a, c.state.map_or(0, |s| s.next_update)));
    let listed: Vec<(Attention, &CertView)> = certs
        .iter()
        .filter(|(_, c)| query.matches(c, now))
        .copied()
        .collect();
    let per_page = query.per_page.min(ROWS_PER_PAGE);
    let page_no = query.page.unwrap_or(1);
    let rows: Vec<_> = listed
        .iter()
        .skip((page_no - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let count = |a: Attention| certs.iter().filter(|(x, _)| *x == a).count();
    let valid = certs
        .iter()
        .filter(|(_, c)| c.state.is_some_and(|s| s.valid(now)))
        .count();
    let due = certs
        .iter()
        .filter(|(_, c)| c.responder.is_some() && c.state.is_some_and(|s| s.next_refresh <= now))
        .count();

    let mut o = String::with_capacity(2048 + certs.len() * 1200);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    o.push_str("<title>OCSP stapling status</title><style>");
    o.push_str(STYLE);
    o.push_str("</style></head><body>\n<h1>OCSP stapling status</h1>\n<p class=\"small\">");
    let _ = write!(o, "{} &middot; ngx_ssl_stapling_module ", rfc3339(now));
    escape(&mut o, module_version);
    o.push_str(" &middot; nginx ");
    escape(&mut o, nginx_version);
    if let Some(z) = &page.zone {
        o.push_str(" &middot; zone ");
        escape(&mut o, &z.name);
        let _ = write!(
            o,
            " {} of {} KB used, {} entries",
            z.used / 1024,
            z.size / 1024,
            z.entries
        );
    }
    o.push_str("</p>\n<p class=\"summary\">");
    let _ = write!(
        o,
        "<span id=\"total\">{} staple(s)</span><span id=\"valid\" class=\"good\">{valid} valid</span>\
         <span id=\"due\">{due} due for refresh</span>\
         <span id=\"failing\" class=\"{}\">{} failing</span>\
         <span id=\"no-room\" class=\"{}\">{} without room</span>\
         <span id=\"gaps\" class=\"{}\">{} must-staple gap(s)</span>",
        certs.len(),
        if count(Attention::Failing) + count(Attention::NoStaple) > 0 {
            "warn"
        } else {
            "good"
        },
        count(Attention::Failing) + count(Attention::NoStaple),
        if count(Attention::NoRoom) > 0 {
            "bad"
        } else {
            "good"
        },
        count(Attention::NoRoom),
        if count(Attention::Gap) > 0 { "bad" } else { "good" },
        count(Attention::Gap),
    );
    o.push_str(
        "</p>\n<table>\n<tr><th>state</th><th>certificate</th><th>servers</th>\
                <th>validity left</th><th>last fetch</th><th>handshakes</th></tr>\n",
    );
    for (a, c) in &rows {
        row(&mut o, *a, c, now);
    }
    o.push_str("</table>\n<p id=\"listed\" class=\"small\">");
    let what = if query.id.is_some() || query.state.is_some() {
        "that match the query"
    } else if query.all {
        "in all"
    } else {
        "that need attention"
    };
    let first = (page_no - 1).saturating_mul(per_page);
    let _ = write!(
        o,
        "{} of {} staple(s) listed ({} {what})",
        rows.len(),
        certs.len(),
        listed.len()
    );
    if rows.len() < listed.len() {
        let _ = write!(o, ", from number {}", first + 1);
    }
    o.push('.');
    if !query.all && query.id.is_none() && query.state.is_none() {
        o.push_str(" <a href=\"?format=html&amp;detail=all\">List them all</a>.");
    }
    if first + rows.len() < listed.len() {
        let mut next = String::from("?format=html");
        if query.all {
            next.push_str("&amp;detail=all");
        }
        if let Some(state) = &query.state {
            next.push_str("&amp;state=");
            escape(&mut next, state);
        }
        let _ = write!(next, "&amp;page={}&amp;per_page={per_page}", page_no + 1);
        let _ = write!(o, " <a href=\"{next}\">Next page</a>.");
    }
    o.push_str("</p>\n</body></html>\n");
    o
}

fn row(o: &mut String, a: Attention, c: &CertView, now: i64) {
    let _ = write!(o, "<tr class=\"{}\"><td>{}", a.class(), a.word());
    if let Some(s) = c.state {
        o.push_str("<br><span class=\"small\">OCSP ");
        escape(o, s.status_str());
        if c.must_staple {
            o.push_str(", must-staple");
        }
        o.push_str("</span>");
    }
    o.push_str("</td><td>");
    escape(o, c.subject.as_deref().unwrap_or("(unknown)"));
    o.push_str("<br><span class=\"small\">serial ");
    escape(o, c.serial.as_deref().unwrap_or("?"));
    o.push_str(" &middot; staple ");
    escape(
        o,
        &c.id
            .map(|k| k.to_string())
            .unwrap_or_default()
            .chars()
            .take(16)
            .collect::<String>(),
    );
    if let Some(r) = &c.responder {
        o.push_str("<br>");
        escape(o, r);
    }
    if let Some(f) = &c.file {
        o.push_str("<br>file ");
        escape(o, f);
    }
    o.push_str("</span></td><td>");
    for (i, s) in c.servers.iter().enumerate() {
        if i > 0 {
            o.push_str("<br>");
        }
        escape(o, s);
    }
    o.push_str("</td><td>");
    match c.state.filter(|s| s.valid(now)) {
        Some(s) if s.next_update != 0 => {
            let span = (s.next_update - s.this_update).max(1);
            let left = (s.next_update - now).max(0);
            let pct = (left * 100 / span).clamp(0, 100);
            let _ = write!(
                o,
                "<div class=\"bar\" title=\"{pct}%\"><span style=\"width:{pct}%\"></span></div>{} left \
                 <span class=\"small\">(until {})</span>",
                human(left),
                rfc3339(s.next_update)
            );
        }
        Some(_) => o.push_str("no nextUpdate"),
        None => o.push_str("&mdash;"),
    }
    if let Some(s) = c.state.filter(|_| c.responder.is_some()) {
        let _ = write!(
            o,
            "<br><span class=\"small\">next fetch {}</span>",
            if s.next_refresh <= now {
                "now".to_string()
            } else {
                format!("in {}", human(s.next_refresh - now))
            }
        );
    }
    o.push_str("</td><td>");
    match c.state.filter(|s| s.last_fetch != 0) {
        Some(s) => {
            let _ = write!(
                o,
                "{} ({} ago)",
                s.last_result.as_str(),
                human(now - s.last_fetch)
            );
            if s.failures > 0 {
                let _ = write!(o, ", {} failed in a row", s.failures);
            }
            let e = s.error();
            if !e.is_empty() {
                o.push_str("<br><span class=\"err\">");
                escape(o, &e);
                o.push_str("</span>");
            }
        }
        None => o.push_str("&mdash;"),
    }
    let (stapled, unstapled) = c.state.map_or((0, 0), |s| (s.stapled, s.unstapled));
    let _ = writeln!(o, "</td><td>{stapled} stapled, {unstapled} without</td></tr>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_durations() {
        let mut s = String::new();
        escape(&mut s, "<script>a&b\"'\u{7}</script>");
        assert_eq!(s, "&lt;script&gt;a&amp;b&quot;&#39;&lt;/script&gt;");
        assert_eq!(human(3 * 86400 + 4 * 3600 + 5), "3d 4h");
        assert_eq!(human(3600 + 120), "1h 2m");
        assert_eq!(human(125), "2m 5s");
        assert_eq!(human(40), "40s");
        assert_eq!(human(-40), "-40s");
    }
}
