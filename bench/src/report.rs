//! The benchmark's output: a table, a CSV, a PNG chart and the one-line
//! summary; medians over rounds, ratios taken per round.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use crate::pki::Result;
use crate::Mode;

pub struct Row {
    pub round: usize,
    pub mode: Mode,
    pub rate: f64,
    pub handshakes: u64,
    pub stapled_pct: f64,
    pub failed: u64,
    pub requests: usize,
    pub first_staple_ms: Option<f64>,
    pub reload_stapled_pct: f64,
    pub reload_first_ms: Option<f64>,
    pub cpu_us_per_handshake: f64,
}

pub struct Scale {
    pub failures: usize,
    pub certs: usize,
    pub load_builtin: Duration,
    pub load_module: Duration,
    pub all_stapled: Option<Duration>,
    pub requests: usize,
    pub zone_line: String,
    pub steady_rate: f64,
    pub steady_stapled_pct: f64,
    /// Restart with `ssl_stapling_store` and the responder down: time until
    /// the workers ran, the take-over line, the stapled share right after.
    pub restart_up: Duration,
    /// Workers up after starts from the store (the first is `restart_up`)
    /// and after plain starts (the store empty), taken in turn.
    pub from_store: Vec<Duration>,
    pub plain: Vec<Duration>,
    /// Seconds the module took to read and check the store, by its log,
    /// at each start from the store.
    pub store_secs: Vec<f64>,
    pub restart_line: String,
    /// The module's line on the store at that restart ("... read from the
    /// store ... (N by their seal)").
    pub store_line: String,
    pub restart_stapled_pct: f64,
    pub restart_handshakes: u64,
    /// The status page's variants, with their size and build time.
    pub pages: Vec<PageFigures>,
}

pub struct PageFigures {
    pub path: String,
    pub millis: f64,
    pub bytes: usize,
    /// Lines that are not comments (Prometheus: its series).
    pub samples: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn of(rows: &[Row], mode: Mode, f: impl Fn(&Row) -> f64) -> f64 {
    median(rows.iter().filter(|r| r.mode == mode).map(f).collect())
}

/// Median over rounds of module/builtin of `f`, taken per round.
fn ratio(rows: &[Row], f: impl Fn(&Row) -> f64) -> f64 {
    let rounds = rows.iter().map(|r| r.round).max().unwrap_or(0);
    median(
        (1..=rounds)
            .filter_map(|round| {
                let m = rows.iter().find(|r| r.round == round && r.mode == Mode::Module)?;
                let b = rows
                    .iter()
                    .find(|r| r.round == round && r.mode == Mode::Builtin)?;
                Some(f(m) / f(b))
            })
            .collect(),
    )
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"))
}

pub fn print(rows: &[Row]) {
    println!(
        "{:>5} {:>8} {:>10} {:>9} {:>7} {:>6} {:>9} {:>11} {:>9} {:>10} {:>9}",
        "round",
        "mode",
        "hs/s",
        "stapled%",
        "failed",
        "ocsp",
        "first_ms",
        "cpu_us/hs",
        "reload%",
        "reload_ms",
        "hs"
    );
    for r in rows {
        println!(
            "{:>5} {:>8} {:>10.1} {:>9.2} {:>7} {:>6} {:>9} {:>11.1} {:>9.2} {:>10} {:>9}",
            r.round,
            r.mode.name(),
            r.rate,
            r.stapled_pct,
            r.failed,
            r.requests,
            ms(r.first_staple_ms),
            r.cpu_us_per_handshake,
            r.reload_stapled_pct,
            ms(r.reload_first_ms),
            r.handshakes
        );
    }
    println!();
    println!("medians over rounds:");
    for mode in [Mode::Off, Mode::Builtin, Mode::Module] {
        println!(
            "  {:>8}: {:.1} hs/s, {:.2}% stapled, {:.1} us CPU per handshake, {:.0} responder requests, {:.2}% stapled after reload",
            mode.name(),
            of(rows, mode, |r| r.rate),
            of(rows, mode, |r| r.stapled_pct),
            of(rows, mode, |r| r.cpu_us_per_handshake),
            of(rows, mode, |r| r.requests as f64),
            of(rows, mode, |r| r.reload_stapled_pct),
        );
    }
    println!(
        "  module/builtin CPU per handshake (median of per-round ratios): {:.3}",
        ratio(rows, |r| r.cpu_us_per_handshake)
    );
    println!(
        "  module/off handshake rate: {:.3}",
        of(rows, Mode::Module, |r| r.rate) / of(rows, Mode::Off, |r| r.rate)
    );
}

pub fn csv(rows: &[Row], path: &Path) -> Result<()> {
    let mut s = String::from(
        "round,mode,handshakes_per_sec,handshakes,stapled_pct,failed,responder_requests,\
         first_staple_ms,cpu_us_per_handshake,reload_stapled_pct,reload_first_staple_ms\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{:.2},{},{:.3},{},{},{},{:.2},{:.3},{}",
            r.round,
            r.mode.name(),
            r.rate,
            r.handshakes,
            r.stapled_pct,
            r.failed,
            r.requests,
            r.first_staple_ms.map_or(String::new(), |v| format!("{v:.1}")),
            r.cpu_us_per_handshake,
            r.reload_stapled_pct,
            r.reload_first_ms.map_or(String::new(), |v| format!("{v:.1}")),
        );
    }
    fs::write(path, s)?;
    Ok(())
}

fn register_font() -> bool {
    const CANDIDATES: &[&str] = &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    for path in CANDIDATES {
        if let Ok(bytes) = fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Handshakes per second per round, one line per mode.
pub fn chart(rows: &[Row], path: &Path) -> Result<()> {
    let has_font = register_font();
    let rounds = rows.iter().map(|r| r.round).max().unwrap_or(1);
    let top = rows.iter().map(|r| r.rate).fold(0.0, f64::max) * 1.2 + 1.0;
    let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20).x_label_area_size(40).y_label_area_size(60);
    if has_font {
        builder.caption(
            "full TLS handshakes per second (status_request)",
            ("sans-serif", 22),
        );
    }
    let mut chart = builder.build_cartesian_2d(0.5f64..(rounds as f64 + 0.5), 0f64..top)?;
    if has_font {
        chart
            .configure_mesh()
            .x_desc("round")
            .y_desc("handshakes/s")
            .draw()?;
    } else {
        chart.configure_mesh().disable_mesh().draw()?;
    }
    for (mode, color) in [(Mode::Off, BLACK), (Mode::Builtin, BLUE), (Mode::Module, RED)] {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.mode == mode)
            .map(|r| (r.round as f64, r.rate))
            .collect();
        let series = chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))?;
        if has_font {
            series
                .label(mode.name())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, color.filled())))?;
    }
    if has_font {
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

pub fn summary(rows: &[Row]) -> String {
    format!(
        "module/builtin handshake rate: {:.3}; stapled: module {:.2}% builtin {:.2}%; responder requests: module {:.0} builtin {:.0}",
        ratio(rows, |r| r.rate),
        of(rows, Mode::Module, |r| r.stapled_pct),
        of(rows, Mode::Builtin, |r| r.stapled_pct),
        of(rows, Mode::Module, |r| r.requests as f64),
        of(rows, Mode::Builtin, |r| r.requests as f64),
    )
}

pub fn scale(s: &Scale) {
    println!(
        "scale: {} certificates ({} failed fetches logged)",
        s.certs, s.failures
    );
    println!(
        "  configuration load (nginx -t): builtin {:.2} s, module {:.2} s",
        s.load_builtin.as_secs_f64(),
        s.load_module.as_secs_f64()
    );
    match s.all_stapled {
        Some(d) => println!(
            "  all {} stapled {:.1} s after start, {} responder requests",
            s.certs,
            d.as_secs_f64(),
            s.requests
        ),
        None => println!(
            "  not all stapled within 600 s ({} responder requests)",
            s.requests
        ),
    }
    println!("  {}", s.zone_line.split("ssl_stapling: ").last().unwrap_or(""));
    println!(
        "  module, all stapled, SNI over all {} names: {:.1} hs/s, {:.2}% stapled",
        s.certs, s.steady_rate, s.steady_stapled_pct
    );
    println!(
        "  restart with the responder down (ssl_stapling_store): workers up {:.1} s after start; \
         {:.2}% of {} handshakes stapled from the first",
        s.restart_up.as_secs_f64(),
        s.restart_stapled_pct,
        s.restart_handshakes
    );
    for line in [&s.restart_line, &s.store_line] {
        println!("  {}", line.split("ssl_stapling: ").last().unwrap_or(""));
    }
    let secs = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let median = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    // Noise on a shared machine only ever adds time: the fastest start of
    // each kind is the closest to what the start itself costs.
    let fastest = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let (with, without) = (median(&s.from_store), median(&s.plain));
    let (with_min, without_min) = (fastest(&s.from_store), fastest(&s.plain));
    println!(
        "  workers up, starts in turn: from the store {} s, plain (store empty) {} s; \
         fastest {:.2} / {:.2} s = {:.3}, medians {:.2} / {:.2} s = {:.3}",
        secs(&s.from_store),
        secs(&s.plain),
        with_min.as_secs_f64(),
        without_min.as_secs_f64(),
        ratio(with_min, without_min),
        with.as_secs_f64(),
        without.as_secs_f64(),
        ratio(with, without)
    );
    let mut store = s.store_secs.clone();
    store.sort_by(f64::total_cmp);
    if let Some(&m) = store.get(store.len() / 2) {
        println!(
            "  the store's part of a start (read and checked, by the module's log): {} s; \
             median {:.2} s = {:.1}% of the median plain start",
            store
                .iter()
                .map(|t| format!("{t:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            m,
            100.0 * m / without.as_secs_f64().max(1e-9)
        );
    }
    for p in &s.pages {
        println!(
            "  status page {}: {:.1} ms, {} bytes, {} lines without '#'",
            p.path, p.millis, p.bytes, p.samples
        );
    }
}
