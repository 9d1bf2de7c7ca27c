//! Running nginx and the OCSP responder for a benchmark run, and reading
//! what they did: worker pids, worker CPU time, log lines.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::pki::Result;

pub struct Nginx {
    bin: PathBuf,
    dir: PathBuf,
    master: Option<i32>,
}

fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        sleep(Duration::from_millis(10));
    }
    false
}

impl Nginx {
    pub fn new(bin: &Path, dir: &Path) -> Nginx {
        Nginx {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            master: None,
        }
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("-p").arg(format!("{}/", self.dir.display()));
        c.arg("-c").arg(self.dir.join("nginx.conf"));
        c.arg("-e").arg(self.dir.join("error.log"));
        c.args(extra);
        c
    }

    /// `nginx -t`: how long it took.
    pub fn test_config(&self) -> Result<Duration> {
        let start = Instant::now();
        let out = self.command(&["-t", "-q"]).output()?;
        if !out.status.success() {
            return Err(format!("nginx -t failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(start.elapsed())
    }

    pub fn start(&mut self, workers: usize) -> Result<Instant> {
        let _ = fs::remove_file(self.dir.join("nginx.pid"));
        let start = Instant::now();
        let out = self.command(&[]).output()?;
        if !out.status.success() {
            return Err(format!("nginx failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let pid_file = self.dir.join("nginx.pid");
        if !wait_until(Duration::from_secs(60), || pid_file.exists()) {
            return Err("nginx wrote no pid".into());
        }
        let pid: i32 = fs::read_to_string(&pid_file)?.trim().parse()?;
        self.master = Some(pid);
        if !wait_until(Duration::from_secs(60), || self.workers().len() >= workers) {
            return Err("nginx started no workers".into());
        }
        Ok(start)
    }

    pub fn workers(&self) -> Vec<i32> {
        let Some(master) = self.master else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let Ok(dir) = fs::read_dir("/proc") else {
            return out;
        };
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            if f.len() > 2 && f[1].parse::<i32>().ok() == Some(master) && f[0] != "Z" {
                out.push(pid);
            }
        }
        out
    }

    /// utime + stime of the current workers, in clock ticks.
    pub fn worker_cpu_ticks(&self) -> u64 {
        self.workers()
            .iter()
            .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .filter_map(|s| {
                let rest = s.rsplit_once(") ")?.1.to_string();
                let f: Vec<&str> = rest.split_whitespace().collect();
                // fields 14 and 15 of stat; `rest` starts at field 3
                Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
            })
            .sum()
    }

    /// SIGHUP, then wait for a full set of new workers and the old gone.
    pub fn reload(&self, workers: usize) -> Result<()> {
        let master = self.master.ok_or("not running")?;
        let old: HashSet<i32> = self.workers().into_iter().collect();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(master, libc::SIGHUP) };
        let ok = wait_until(Duration::from_secs(60), || {
            let now = self.workers();
            now.iter().filter(|p| !old.contains(p)).count() >= workers && now.iter().all(|p| !old.contains(p))
        });
        if ok {
            Ok(())
        } else {
            Err("reload did not finish".into())
        }
    }

    pub fn stop(&mut self) {
        if let Some(master) = self.master.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(master, libc::SIGQUIT) };
            wait_until(Duration::from_secs(30), || {
                !Path::new(&format!("/proc/{master}")).exists()
            });
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `openssl ocsp` answering for the bench CA.
pub struct Responder {
    child: Child,
    log: PathBuf,
}

impl Responder {
    pub fn start(dir: &Path, port: u16) -> Result<Responder> {
        let log = dir.join("ocsp.log");
        let out = fs::File::create(&log)?;
        let child = Command::new("openssl")
            .current_dir(dir)
            .args([
                "ocsp",
                "-port",
                &port.to_string(),
                "-index",
                "index.txt",
                "-CA",
                "ca.crt",
            ])
            .args(["-rsigner", "ca.crt", "-rkey", "ca.key", "-ndays", "1"])
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()?;
        let r = Responder { child, log };
        if !wait_until(Duration::from_secs(10), || r.text().contains("waiting for OCSP")) {
            return Err("openssl ocsp did not start".into());
        }
        Ok(r)
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn requests(&self) -> usize {
        self.text().matches("Received request").count()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
