//! `--instances N`: a fleet of N nginx instances with the module staple
//! the same certificates from one responder, each with a store of its own,
//! then with one directory shared by all (`ssl_stapling_store PATH
//! shared`), and with `--store redis` on Valkey/Redis as well
//! (`ssl_stapling_store redis://...`, a redis-server the bench starts on
//! loopback). Measured: the responder's requests for one round of fetches
//! (what each refresh costs), and the time from the first start until
//! every instance holds every staple.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nginx::{Nginx, Responder};
use crate::pki::Result;
use crate::{free_port, responder_port, Options, Setup};

/// Where the fleet keeps its staples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A directory per instance.
    Own,
    /// One directory for all (`shared`).
    Dir,
    /// Valkey/Redis.
    Redis,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Own => "own stores",
            Engine::Dir => "shared directory",
            Engine::Redis => "redis",
        }
    }
}

pub struct FleetRun {
    pub engine: Engine,
    pub requests: usize,
    pub all_stapled: Option<Duration>,
}

/// A redis-server on loopback with a password, no persistence; stopped
/// when dropped.
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start(dir: &Path) -> Result<Redis> {
        let port = free_port()?;
        let password = "bench-password";
        let log = fs::File::create(dir.join("redis.log"))?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--requirepass",
                password,
            ])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server (Debian's redis-server package): {e}"))?;
        let r = Redis {
            child,
            url: format!("redis://:{password}@127.0.0.1:{port}/0"),
        };
        let ready = Instant::now();
        while !fs::read_to_string(dir.join("redis.log"))
            .unwrap_or_default()
            .contains("Ready to accept connections")
        {
            if ready.elapsed() > Duration::from_secs(10) {
                return Err("redis-server did not start".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(r)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(inst: &Path, certs: &Path, o: &Options, port: u16, module: &Path, store: &str) -> Result<()> {
    let mut c = format!(
        "load_module {};\nssl_stapling_zone bench:{}k;\nworker_processes {};\nworker_rlimit_nofile 65536;\n\
         pid {d}/nginx.pid;\nerror_log {d}/error.log info;\nevents {{ worker_connections 4096; }}\n\
         http {{\n    access_log off;\n    server_names_hash_bucket_size 128;\n    server_names_hash_max_size {};\n\
         ssl_stapling on;\n    ssl_stapling_store {store};\n",
        module.display(),
        1024.max(o.certs * 4),
        o.workers,
        (o.certs * 2).max(512),
        d = inst.display()
    );
    for i in 0..o.certs {
        c += &format!(
            "    server {{ listen 127.0.0.1:{port} ssl; server_name c{i}.bench.test; \
             ssl_certificate {d}/c{i}.crt; ssl_certificate_key {d}/c{i}.key; }}\n",
            d = certs.display()
        );
    }
    c += "}\n";
    fs::write(inst.join("nginx.conf"), c)?;
    Ok(())
}

/// Staples an instance holds, by its log: fetched, taken from the shared
/// store, or read from the store at its start.
fn staples(log: &str) -> usize {
    let read: usize = log
        .lines()
        .filter_map(|l| {
            l.split(" staple(s) read from the store")
                .next()
                .filter(|_| l.contains("read from the store"))
        })
        .filter_map(|head| head.rsplit(' ').next()?.parse::<usize>().ok())
        .sum();
    log.matches("fetched from").count() + log.matches("taken from the shared store").count() + read
}

pub fn run(s: &Setup, o: &Options, instances: usize, redis: bool) -> Result<Vec<FleetRun>> {
    let mut out = Vec::new();
    let mut engines = vec![Engine::Own, Engine::Dir];
    if redis {
        engines.push(Engine::Redis);
    }
    for engine in engines {
        let base = s.dir.join(format!("fleet-{engine:?}"));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base)?;
        let server = match engine {
            Engine::Redis => Some(Redis::start(&base)?),
            _ => None,
        };
        let mut fleet = Vec::new();
        for i in 0..instances {
            let inst = base.join(i.to_string());
            fs::create_dir_all(inst.join("logs"))?;
            let store = match (&server, engine) {
                (Some(r), _) => r.url.clone(),
                (None, Engine::Dir) => format!("{}/store shared", base.display()),
                (None, _) => format!("{}/store", inst.display()),
            };
            write_config(&inst, &s.dir, o, free_port()?, &s.module, &store)?;
            fleet.push(Nginx::new(&s.nginx_bin, &inst));
        }
        let responder = Responder::start(&s.dir, responder_port(&s.dir)?)?;
        let t0 = Instant::now();
        for n in fleet.iter_mut() {
            n.start(o.workers)?;
        }
        let mut all = None;
        while t0.elapsed() < Duration::from_secs(600) {
            if fleet.iter().all(|n| staples(&n.log()) >= o.certs) {
                all = Some(t0.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let requests = responder.requests();
        for n in fleet.iter_mut() {
            n.stop();
        }
        drop(server);
        eprintln!(
            "bench: fleet of {instances}, {}: {requests} requests, all stapled in {}",
            engine.name(),
            all.map_or("(not within 600 s)".to_string(), |d| format!(
                "{:.2} s",
                d.as_secs_f64()
            ))
        );
        out.push(FleetRun {
            engine,
            requests,
            all_stapled: all,
        });
    }
    Ok(out)
}

/// One line: the runs side by side, as ratios to own stores.
pub fn summary(runs: &[FleetRun], instances: usize, certs: usize) -> String {
    let Some(own) = runs.iter().find(|r| r.engine == Engine::Own) else {
        return "fleet: no result".into();
    };
    let secs = |r: &FleetRun| {
        r.all_stapled
            .map_or("-".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
    };
    let ratio = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) if b.as_secs_f64() > 0.0 => format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64()),
        _ => "-".into(),
    };
    let parts: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{}: {} requests ({:.2}x), all stapled in {} ({})",
                r.engine.name(),
                r.requests,
                r.requests as f64 / own.requests.max(1) as f64,
                secs(r),
                ratio(r.all_stapled, own.all_stapled)
            )
        })
        .collect();
    format!(
        "fleet of {instances} instances, {certs} certificate(s), responder requests per refresh and time \
         until every instance staples every certificate, ratios to own stores: {}",
        parts.join("; ")
    )
}
