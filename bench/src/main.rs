//! scripts/bench: the module against nginx's built-in stapling and against
//! stapling off, one nginx binary, the same certificates, the same
//! machine, configurations alternated over several rounds.

mod fleet;
mod load;
mod nginx;
mod pki;
mod report;

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use load::Client;
use nginx::{Nginx, Responder};
use pki::Result;
use report::Row;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Off,
    Builtin,
    Module,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Builtin => "builtin",
            Mode::Module => "module",
        }
    }
}

struct Options {
    duration: u64,
    rounds: usize,
    threads: usize,
    workers: usize,
    certs: usize,
    out: PathBuf,
    /// Only the many-certificates figures, no rounds.
    scale_only: bool,
    /// Keep the working directory (certificates, configuration, store).
    keep: bool,
    /// `ssl_stapling_fetch_concurrency` for the module (its default if None).
    fetch_concurrency: Option<usize>,
    /// Only the fleet comparison, with this many instances (0: none).
    instances: usize,
    /// `--store redis`: the fleet also on Valkey/Redis (redis-server).
    redis: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: scripts/bench [--duration SECS] [--rounds N] [--threads N] [--workers N] [--certs N] [--out DIR] [--scale-only] [--keep] [--fetch-concurrency N] [--instances N [--store redis]]\n\
         defaults: --duration 8 --rounds 3 --threads 4 --workers 2 --certs 1 --out build/bench"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut o = Options {
        duration: 8,
        rounds: 3,
        threads: 4,
        workers: 2,
        certs: 1,
        out: PathBuf::from("build/bench"),
        scale_only: false,
        keep: false,
        fetch_concurrency: None,
        instances: 0,
        redis: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--duration" => o.duration = val().parse().unwrap_or_else(|_| usage()),
            "--rounds" => o.rounds = val().parse().unwrap_or_else(|_| usage()),
            "--threads" => o.threads = val().parse().unwrap_or_else(|_| usage()),
            "--workers" => o.workers = val().parse().unwrap_or_else(|_| usage()),
            "--certs" => o.certs = val().parse().unwrap_or_else(|_| usage()),
            "--out" => o.out = PathBuf::from(val()),
            "--scale-only" => o.scale_only = true,
            "--keep" => o.keep = true,
            "--fetch-concurrency" => o.fetch_concurrency = Some(val().parse().unwrap_or_else(|_| usage())),
            "--instances" => o.instances = val().parse().unwrap_or_else(|_| usage()),
            "--store" => match val().as_str() {
                "redis" => o.redis = true,
                "dir" => o.redis = false,
                _ => usage(),
            },
            _ => usage(),
        }
    }
    if o.rounds == 0 || o.threads == 0 || o.workers == 0 || o.certs == 0 || o.duration == 0 {
        usage();
    }
    o
}

/// The working directory removed, unless --keep asked to keep it.
fn remove_work(dir: &Path, o: &Options) {
    if o.keep {
        eprintln!("bench: kept {}", dir.display());
    } else {
        let _ = fs::remove_dir_all(dir);
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn write_config(dir: &Path, mode: Mode, o: &Options, port: u16, module: &Path, store: bool) -> Result<()> {
    let mut c = String::new();
    if mode == Mode::Module {
        c += &format!("load_module {};\n", module.display());
        // No ssl_stapling_zone: the zone the module sizes for the
        // configuration, as a user who only adds load_module gets it.
        if let Some(n) = o.fetch_concurrency {
            c += &format!("ssl_stapling_fetch_concurrency {n};\n");
        }
    }
    c += &format!(
        "worker_processes {};\nworker_rlimit_nofile 65536;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 4096; }}\nhttp {{\n    access_log off;\n    server_names_hash_bucket_size 128;\n    \
         server_names_hash_max_size {};\n",
        o.workers,
        (o.certs * 2).max(512),
        d = dir.display()
    );
    if mode != Mode::Off {
        c += "    ssl_stapling on;\n";
    }
    if store && mode == Mode::Module {
        c += &format!("    ssl_stapling_store {}/store;\n", dir.display());
        // The status page, for its size and build time at scale.
        c += &format!(
            "    server {{ listen 127.0.0.1:{}; location /status {{ ssl_stapling_status; }} }}\n",
            status_port(dir)?
        );
    }
    for i in 0..o.certs {
        c += &format!(
            "    server {{ listen 127.0.0.1:{port} ssl; server_name c{i}.bench.test; \
             ssl_certificate c{i}.crt; ssl_certificate_key c{i}.key; }}\n"
        );
    }
    c += "}\n";
    fs::write(dir.join("nginx.conf"), c)?;
    Ok(())
}

struct Setup {
    dir: PathBuf,
    nginx_bin: PathBuf,
    module: PathBuf,
    port: u16,
    addr: SocketAddr,
    names: Arc<Vec<String>>,
    client: Arc<Client>,
}

fn one_run(s: &Setup, o: &Options, mode: Mode, round: usize) -> Result<Row> {
    write_config(&s.dir, mode, o, s.port, &s.module, false)?;
    let _ = fs::remove_file(s.dir.join("error.log"));
    let responder = Responder::start(&s.dir, responder_port(&s.dir)?)?;
    let mut nginx = Nginx::new(&s.nginx_bin, &s.dir);
    let started = nginx.start(o.workers)?;
    let limit = Duration::from_secs(10);
    let stapling = mode != Mode::Off;

    // time from start to the first stapled handshake, as a first client
    // sees it (for nginx's built-in code, this handshake starts the fetch)
    let (first, probe) = if stapling {
        let (ok, c) = load::until_first_staple(&s.client, s.addr, &s.names[0], limit);
        (ok.then(|| started.elapsed()), c)
    } else {
        (None, load::Counts::default())
    };
    let cpu0 = nginx.worker_cpu_ticks();
    let t0 = Instant::now();
    let counts = load::run(
        s.client.clone(),
        s.addr,
        s.names.clone(),
        o.threads,
        Duration::from_secs(o.duration),
    );
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = nginx.worker_cpu_ticks();
    let rate = counts.handshakes as f64 / elapsed;
    let cpu_us = if counts.handshakes > 0 {
        cpu1.saturating_sub(cpu0) as f64 / TICKS_PER_SEC * 1e6 / counts.handshakes as f64
    } else {
        0.0
    };
    // the stapled share counts every handshake since start, the probe's too
    let counts = probe.add(counts);

    nginx.reload(o.workers)?;
    let reloaded = Instant::now();
    let (reload_first, probe) = if stapling {
        let (ok, c) = load::until_first_staple(&s.client, s.addr, &s.names[0], limit);
        (ok.then(|| reloaded.elapsed()), c)
    } else {
        (None, load::Counts::default())
    };
    let after = probe.add(load::run(
        s.client.clone(),
        s.addr,
        s.names.clone(),
        o.threads,
        Duration::from_secs(2),
    ));
    let requests = responder.requests();
    nginx.stop();

    Ok(Row {
        round,
        mode,
        rate,
        handshakes: counts.handshakes,
        stapled_pct: pct(counts.stapled, counts.handshakes),
        failed: counts.failed,
        requests,
        first_staple_ms: first.map(|d| d.as_secs_f64() * 1000.0),
        reload_stapled_pct: pct(after.stapled, after.handshakes),
        reload_first_ms: reload_first.map(|d| d.as_secs_f64() * 1000.0),
        cpu_us_per_handshake: cpu_us,
    })
}

/// Linux's USER_HZ: /proc times are in these.
const TICKS_PER_SEC: f64 = 100.0;

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 * 100.0 / b as f64
    }
}

fn responder_port(dir: &Path) -> Result<u16> {
    Ok(fs::read_to_string(dir.join("ocsp.port"))?.trim().parse()?)
}

/// Where the scale run's nginx serves its status page.
fn status_port(dir: &Path) -> Result<u16> {
    Ok(fs::read_to_string(dir.join("status.port"))?.trim().parse()?)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let o = options();
    let top = std::env::current_dir()?;
    let nginx_bin = top.join("build/sbin/nginx");
    let module = top.join("build/modules/ngx_ssl_stapling_module.so");
    if !nginx_bin.exists() || !module.exists() {
        return Err("run scripts/build first".into());
    }
    fs::create_dir_all(&o.out)?;
    let dir = std::env::temp_dir().join(format!("stapling-bench-{}", std::process::id()));
    fs::create_dir_all(dir.join("logs"))?;

    let ocsp_port = free_port()?;
    fs::write(dir.join("ocsp.port"), ocsp_port.to_string())?;
    fs::write(dir.join("status.port"), free_port()?.to_string())?;
    let port = free_port()?;
    eprintln!(
        "bench: {} certificate(s), {} workers, {} client threads, {} s per run, {} rounds",
        o.certs, o.workers, o.threads, o.duration, o.rounds
    );
    let t = Instant::now();
    let ca = pki::make_ca(&dir)?;
    let names = pki::make_leaves(&dir, &ca, o.certs, &format!("http://127.0.0.1:{ocsp_port}/"))?;
    eprintln!("bench: certificates made in {:.1} s", t.elapsed().as_secs_f64());
    let setup = Setup {
        dir: dir.clone(),
        nginx_bin,
        module,
        port,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        names: Arc::new(names),
        client: Arc::new(Client::new(&ca.cert)?),
    };

    if o.instances > 0 {
        let runs = fleet::run(&setup, &o, o.instances, o.redis)?;
        println!("{}", fleet::summary(&runs, o.instances, o.certs));
        remove_work(&dir, &o);
        return Ok(());
    }
    if o.certs > 1 {
        report::scale(&setup_scale(&setup, &o)?);
    }
    if o.scale_only {
        remove_work(&dir, &o);
        return Ok(());
    }

    let mut rows = Vec::new();
    let modes = [Mode::Off, Mode::Builtin, Mode::Module];
    for round in 0..o.rounds {
        for k in 0..modes.len() {
            // rotate the order each round, so no mode always runs first
            let mode = modes[(k + round) % modes.len()];
            eprintln!("bench: round {} {}", round + 1, mode.name());
            rows.push(one_run(&setup, &o, mode, round + 1)?);
        }
    }
    report::print(&rows);
    report::csv(&rows, &o.out.join("results.csv"))?;
    report::chart(&rows, &o.out.join("results.png"))?;
    eprintln!(
        "bench: wrote {} and {}",
        o.out.join("results.csv").display(),
        o.out.join("results.png").display()
    );
    println!("{}", report::summary(&rows));
    remove_work(&dir, &o);
    Ok(())
}

/// The scale figures for many certificates: configuration load time with
/// and without the module, time until every certificate is stapled, zone
/// bytes per staple.
fn setup_scale(s: &Setup, o: &Options) -> Result<report::Scale> {
    write_config(&s.dir, Mode::Builtin, o, s.port, &s.module, true)?;
    let nginx = Nginx::new(&s.nginx_bin, &s.dir);
    let load_builtin = nginx.test_config()?;
    write_config(&s.dir, Mode::Module, o, s.port, &s.module, true)?;
    let load_module = nginx.test_config()?;
    let _ = fs::remove_dir_all(s.dir.join("store"));

    let _ = fs::remove_file(s.dir.join("error.log"));
    let responder = Responder::start(&s.dir, responder_port(&s.dir)?)?;
    let mut nginx = Nginx::new(&s.nginx_bin, &s.dir);
    let started = nginx.start(o.workers)?;
    let mut all = None;
    while started.elapsed() < Duration::from_secs(600) {
        let fetched = nginx.log().matches("fetched from").count();
        if fetched >= o.certs {
            all = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // steady state: every certificate stapled, names spread over all of them
    let steady = load::run(
        s.client.clone(),
        s.addr,
        s.names.clone(),
        o.threads,
        Duration::from_secs(o.duration),
    );
    // The status page as a scraper and a person get it.
    let pages = [
        "/status?format=prometheus",
        "/status?format=prometheus&detail=all",
        "/status",
        "/status?detail=all",
    ]
    .iter()
    .map(|path| status_page(status_port(&s.dir)?, path))
    .collect::<Result<Vec<_>>>()?;
    nginx.reload(o.workers)?;
    std::thread::sleep(Duration::from_millis(200));
    let zone_line = nginx
        .log()
        .lines()
        .rev()
        .find(|l| l.contains("zone \"ssl_stapling\""))
        .unwrap_or_default()
        .to_string();
    let requests = responder.requests();
    let log = nginx.log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot fetch OCSP response"))
        .collect();
    let failures = failed.len();
    for l in failed.iter().take(3) {
        eprintln!("bench: {}", l.split("ssl_stapling: ").last().unwrap_or(l));
    }
    nginx.stop();

    // A restart with the responder down: every staple from the store.
    drop(responder);
    let _ = fs::remove_file(s.dir.join("error.log"));
    let mut nginx = Nginx::new(&s.nginx_bin, &s.dir);
    let started = nginx.start(o.workers)?;
    let restart_up = started.elapsed();
    let restart = load::run(
        s.client.clone(),
        s.addr,
        s.names.clone(),
        o.threads,
        Duration::from_secs(o.duration),
    );
    let restart_log = nginx.log();
    let restart_line = restart_log
        .lines()
        .find(|l| l.contains("took over"))
        .unwrap_or_default()
        .to_string();
    let store_line = restart_log
        .lines()
        .find(|l| l.contains("read from the store"))
        .unwrap_or_default()
        .to_string();
    nginx.stop();

    // Plain starts beside starts from the store, in turn (one start's
    // configuration load differs from the next by several percent): the
    // store moved aside, so the start finds it empty, then put back.
    let store = s.dir.join("store");
    let aside = s.dir.join("store.aside");
    let mut from_store = vec![restart_up];
    let mut store_secs: Vec<f64> = store_time(&restart_log).into_iter().collect();
    let mut plain = Vec::new();
    for _ in 0..3 {
        fs::rename(&store, &aside)?;
        plain.push(start_stop(s, o)?.0);
        fs::remove_dir_all(&store)?;
        fs::rename(&aside, &store)?;
        let (up, log) = start_stop(s, o)?;
        from_store.push(up);
        store_secs.extend(store_time(&log));
    }
    Ok(report::Scale {
        failures,
        certs: o.certs,
        load_builtin,
        load_module,
        all_stapled: all,
        requests,
        zone_line,
        steady_rate: steady.handshakes as f64 / o.duration as f64,
        steady_stapled_pct: pct(steady.stapled, steady.handshakes),
        restart_up,
        from_store,
        plain,
        store_secs,
        restart_line,
        store_line,
        restart_stapled_pct: pct(restart.stapled, restart.handshakes),
        restart_handshakes: restart.handshakes,
        pages,
    })
}

/// Starts nginx (the responder is down), returns how long until its
/// workers ran and its error log, and stops it.
fn start_stop(s: &Setup, o: &Options) -> Result<(Duration, String)> {
    let _ = fs::remove_file(s.dir.join("error.log"));
    let mut nginx = Nginx::new(&s.nginx_bin, &s.dir);
    let started = nginx.start(o.workers)?;
    let up = started.elapsed();
    let log = nginx.log();
    nginx.stop();
    Ok((up, log))
}

/// What reading and checking the store took at a start, from the
/// module's line "N staple(s) read from the store ... and checked in S s".
fn store_time(log: &str) -> Option<f64> {
    log.lines()
        .find(|l| l.contains("read from the store"))?
        .split(" and checked in ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// One GET of the status page on 127.0.0.1:`port`: its path, the time to
/// the whole answer (median of 5), its size, and its samples (lines that
/// are not comments, for Prometheus text).
fn status_page(port: u16, path: &str) -> Result<report::PageFigures> {
    use std::io::{Read, Write};
    let mut times = Vec::new();
    let mut body = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port))?;
        write!(c, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut answer = Vec::new();
        c.read_to_end(&mut answer)?;
        times.push(t0.elapsed());
        let start = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |p| p + 4);
        body = answer.split_off(start);
    }
    times.sort();
    let text = String::from_utf8_lossy(&body);
    Ok(report::PageFigures {
        path: path.to_string(),
        millis: times[times.len() / 2].as_secs_f64() * 1000.0,
        bytes: body.len(),
        samples: text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count(),
    })
}
