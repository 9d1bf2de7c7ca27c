//! `--instances N`: a fleet of N nginx instances with the module staple
//! the same certificates from one responder, each with a store of its own
//! and then with one store shared by all (`ssl_stapling_store PATH
//! shared`). Measured: the responder's requests for one round of fetches
//! (what each refresh costs), and the time from the first start until
//! every instance holds every staple.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::nginx::{Nginx, Responder};
use crate::pki::Result;
use crate::{free_port, responder_port, Options, Setup};

pub struct FleetRun {
    pub shared: bool,
    pub requests: usize,
    pub all_stapled: Option<Duration>,
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

pub fn run(s: &Setup, o: &Options, instances: usize) -> Result<Vec<FleetRun>> {
    let mut out = Vec::new();
    for shared in [false, true] {
        let base = s.dir.join(if shared { "fleet-shared" } else { "fleet-own" });
        let _ = fs::remove_dir_all(&base);
        let mut fleet = Vec::new();
        for i in 0..instances {
            let inst = base.join(i.to_string());
            fs::create_dir_all(inst.join("logs"))?;
            let store = if shared {
                format!("{}/store shared", base.display())
            } else {
                format!("{}/store", inst.display())
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
        eprintln!(
            "bench: fleet of {instances}, {}: {requests} requests, all stapled in {}",
            if shared { "shared store" } else { "own stores" },
            all.map_or("(not within 600 s)".to_string(), |d| format!(
                "{:.2} s",
                d.as_secs_f64()
            ))
        );
        out.push(FleetRun {
            shared,
            requests,
            all_stapled: all,
        });
    }
    Ok(out)
}

/// One line: both runs side by side, as ratios.
pub fn summary(runs: &[FleetRun], instances: usize, certs: usize) -> String {
    let find = |shared: bool| runs.iter().find(|r| r.shared == shared);
    let (Some(own), Some(shared)) = (find(false), find(true)) else {
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
    format!(
        "fleet of {instances} instances, {certs} certificate(s): responder requests per refresh {} own stores, \
         {} shared ({:.2}x); all instances stapled in {} own stores, {} shared ({})",
        own.requests,
        shared.requests,
        shared.requests as f64 / own.requests.max(1) as f64,
        secs(own),
        secs(shared),
        ratio(shared.all_stapled, own.all_stapled)
    )
}
