//! Valkey/Redis as the store of a fleet (`ssl_stapling_store
//! redis://...`): every instance reads and writes the same keys, so one
//! fetch per staple serves the fleet without a shared file system.
//!
//! - A staple is the value of `<prefix>staple:<id>`, with a time to live
//!   ending at its nextUpdate: Redis drops it when it could no longer be
//!   served.
//! - The fetch lease is `<prefix>lease:<id>`, set with `SET NX PX`: Redis's
//!   own clock ends it, so hosts whose clocks disagree cannot stall each
//!   other; it is released by its holder only, atomically (a script that
//!   deletes it if it still holds the holder's name).
//!
//! Calls are the `redis` crate's blocking ones, each bounded by the
//! store's timeout; the workers make them off the event loop. Connections
//! are made in the workers, kept for the next call while they work, and
//! dropped on any error, so that a Redis server back after a failure is
//! used again without a reload. Errors name the store by a URL without
//! its credentials.

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use redis::{Client, Connection, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError};

use super::{Displaced, NotALease, Persist, StapleStore, StoreLease, MAX_LEASE_AHEAD_SECS};
use crate::state::certificate::StapleKey;

/// The key prefix unless `prefix=` says otherwise.
pub const DEFAULT_PREFIX: &str = "ssl_stapling:";

/// The longest the master waits for Redis at a start or reload.
const MASTER_TIMEOUT: Duration = Duration::from_secs(3);

/// Idle connections a worker keeps.
const MAX_IDLE: usize = 4;

/// A staple without a nextUpdate is kept this long.
const TTL_WITHOUT_NEXT_UPDATE: i64 = 7 * 86400;

/// Deletes the key if it holds the value: a lease given back by its holder
/// only, atomically.
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
                       return redis.call('del', KEYS[1]) else return 0 end";

/// What `ssl_stapling_store redis://...` says, checked at configuration
/// time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSetting {
    /// The URL as written (it may hold credentials: never shown).
    pub url: String,
    pub prefix: String,
    /// A file whose first line is the password (read by the master).
    pub password_file: Option<String>,
    /// `rediss://`: the CAs (PEM) the server's certificate must chain to,
    /// instead of the system's.
    pub ca_file: Option<String>,
}

pub struct RedisStore {
    client: Client,
    /// The URL without credentials, for log lines.
    shown: String,
    prefix: String,
    timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

/// Why a Redis store cannot be set up (never with a credential in it).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The client's reason, with any password in the URL masked.
    #[error("invalid Redis URL: {0}")]
    Url(String),
    #[error("invalid Redis URL: only redis:// and rediss:// are supported")]
    Scheme,
    #[error("cannot read the password file \"{file}\": {source}")]
    PasswordFile { file: String, source: std::io::Error },
    #[error("the password file \"{0}\" is empty")]
    EmptyPassword(String),
    #[error("cannot read the CA file \"{file}\": {source}")]
    CaFile { file: String, source: std::io::Error },
    #[error("the CA file \"{file}\" cannot be used: {source}")]
    CaUnusable { file: String, source: redis::RedisError },
    #[error("\"ca=\" is for rediss:// URLs (TLS)")]
    CaWithoutTls,
}

/// The URL's parts, or why it is not one.
pub fn parse_url(url: &str) -> Result<ConnectionInfo, SetupError> {
    let info = url
        .into_connection_info()
        .map_err(|e| SetupError::Url(without_credentials(&e.to_string(), url)))?;
    match info.addr {
        ConnectionAddr::Tcp(..) | ConnectionAddr::TcpTls { .. } => Ok(info),
        _ => Err(SetupError::Scheme),
    }
}

/// `text` with any password `url` holds masked.
fn without_credentials(text: &str, url: &str) -> String {
    match url.split_once("://").and_then(|(_, rest)| rest.split_once('@')) {
        Some((userinfo, _)) if !userinfo.is_empty() => text.replace(userinfo, "***"),
        _ => text.to_string(),
    }
}

/// How log lines show the store: scheme, host, port, database.
fn shown(info: &ConnectionInfo) -> String {
    match &info.addr {
        ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}/{}", info.redis.db),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{}", info.redis.db),
        _ => "redis".into(),
    }
}

impl RedisStore {
    /// The store `setting` names, with the password from its file if it
    /// has one; calls bounded by `timeout`. Makes no connection.
    pub fn new(setting: &RedisSetting, timeout: Duration) -> Result<RedisStore, SetupError> {
        let mut info = parse_url(&setting.url)?;
        if let Some(file) = &setting.password_file {
            let text = std::fs::read_to_string(file).map_err(|source| SetupError::PasswordFile {
                file: file.clone(),
                source,
            })?;
            let password = text.lines().next().unwrap_or("").trim_end_matches('\r');
            if password.is_empty() {
                return Err(SetupError::EmptyPassword(file.clone()));
            }
            info.redis.password = Some(password.to_string());
        }
        let shown = shown(&info);
        let tls = matches!(info.addr, ConnectionAddr::TcpTls { .. });
        if tls {
            // rustls with ring, the one provider built in: the process's
            // default (an error means one is installed already).
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = match &setting.ca_file {
            Some(file) if tls => {
                let pem = std::fs::read(file).map_err(|source| SetupError::CaFile {
                    file: file.clone(),
                    source,
                })?;
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                Client::build_with_tls(info, certs).map_err(|source| SetupError::CaUnusable {
                    file: file.clone(),
                    source,
                })?
            }
            Some(_) => return Err(SetupError::CaWithoutTls),
            None => Client::open(info).map_err(|e| SetupError::Url(e.category().to_string()))?,
        };
        Ok(RedisStore {
            client,
            shown,
            prefix: setting.prefix.clone(),
            timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn staple_key(&self, key: &StapleKey) -> String {
        format!("{}staple:{key}", self.prefix)
    }

    fn lease_key(&self, key: &StapleKey) -> String {
        format!("{}lease:{key}", self.prefix)
    }

    fn connect(&self) -> io::Result<Connection> {
        self.connect_within(self.timeout)
    }

    fn connect_within(&self, timeout: Duration) -> io::Result<Connection> {
        let con = self
            .client
            .get_connection_with_timeout(timeout)
            .map_err(|e| self.error(e))?;
        con.set_read_timeout(Some(timeout)).map_err(|e| self.error(e))?;
        con.set_write_timeout(Some(timeout)).map_err(|e| self.error(e))?;
        Ok(con)
    }

    /// Runs `f` on a connection: an idle one or a new one, kept for the
    /// next call when `f` succeeds, dropped when it fails. When an idle
    /// connection fails (the server restarted, say), every idle one is
    /// dropped (they are likely as dead) and the call is made once more on
    /// a new connection.
    fn with<T>(&self, f: impl Fn(&mut Connection) -> Result<T, RedisError>) -> io::Result<T> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let (con, r) = match idle {
            Some(mut c) => match f(&mut c) {
                Err(e) if e.kind() != redis::ErrorKind::ResponseError => {
                    if let Ok(mut v) = self.idle.lock() {
                        v.clear();
                    }
                    let mut c = self.connect()?;
                    let r = f(&mut c);
                    (c, r)
                }
                r => (c, r),
            },
            None => {
                let mut c = self.connect()?;
                let r = f(&mut c);
                (c, r)
            }
        };
        let r = r.map_err(|e| self.error(e))?;
        if let Ok(mut v) = self.idle.lock() {
            if v.len() < MAX_IDLE {
                v.push(con);
            }
        }
        Ok(r)
    }

    /// A Redis error as log lines show it: its kind and text (which never
    /// hold the password).
    fn error(&self, e: RedisError) -> io::Error {
        let text = e.to_string();
        let text = match e.kind() {
            redis::ErrorKind::IoError if e.is_timeout() => {
                format!("no answer within {} ms", self.timeout.as_millis())
            }
            _ => text,
        };
        io::Error::other(text)
    }

    /// Takes the lease when it is free: the holder's name set with a time
    /// to live, if the key does not exist.
    fn set_lease(con: &mut Connection, lease: &str, me: &str, ms: i64) -> Result<bool, RedisError> {
        let set: Option<String> = redis::cmd("SET")
            .arg(lease)
            .arg(me)
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .query(con)?;
        Ok(set.is_some())
    }
}

impl StapleStore for RedisStore {
    fn name(&self) -> &str {
        &self.shown
    }

    fn shared(&self) -> bool {
        true
    }

    fn writable(&self) -> bool {
        true
    }

    fn staple_name(&self, key: &StapleKey) -> String {
        format!("key \"{}\" in {}", self.staple_key(key), self.shown)
    }

    fn lease_name(&self, key: &StapleKey) -> String {
        format!("the lease key \"{}\" in {}", self.lease_key(key), self.shown)
    }

    fn read(&self, key: &StapleKey) -> io::Result<Option<Vec<u8>>> {
        let k = self.staple_key(key);
        self.with(|con| redis::cmd("GET").arg(&k).query(con))
    }

    fn read_many(&self, keys: &[StapleKey]) -> io::Result<Vec<(StapleKey, Vec<u8>)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // Its own connection, not kept: this runs in the master, whose
        // connections the workers must not inherit. A start or reload waits
        // for a Redis that does not answer at most this long.
        let mut con = self.connect_within(self.timeout.min(MASTER_TIMEOUT))?;
        let mut out = Vec::new();
        for chunk in keys.chunks(1000) {
            let mut cmd = redis::cmd("MGET");
            for key in chunk {
                cmd.arg(self.staple_key(key));
            }
            let values: Vec<Option<Vec<u8>>> = cmd.query(&mut con).map_err(|e| self.error(e))?;
            out.extend(chunk.iter().zip(values).filter_map(|(k, v)| v.map(|v| (*k, v))));
        }
        Ok(out)
    }

    fn take_lease(&self, key: &StapleKey, me: &str, now: i64, until: i64) -> io::Result<StoreLease> {
        let lease = self.lease_key(key);
        let ms = (until - now).max(1) * 1000;
        self.with(|con| {
            let mut displaced = None;
            for _ in 0..3 {
                if Self::set_lease(con, &lease, me, ms)? {
                    return Ok(StoreLease::Taken { displaced });
                }
                // Held: by whom, and for how long by Redis's clock.
                let holder: Result<Option<Vec<u8>>, RedisError> = redis::cmd("GET").arg(&lease).query(con);
                let pttl: i64 = redis::cmd("PTTL").arg(&lease).query(con)?;
                let why = match holder {
                    // Gone meanwhile: try again.
                    Ok(None) => continue,
                    Ok(Some(v)) => match std::str::from_utf8(&v) {
                        Ok(by) if by == me => None,
                        Ok(by) if valid_holder(by) => {
                            if pttl == -2 {
                                continue;
                            }
                            if (0..=MAX_LEASE_AHEAD_SECS * 1000).contains(&pttl) {
                                return Ok(StoreLease::Held {
                                    by: by.to_string(),
                                    until: now + (pttl + 999) / 1000,
                                });
                            }
                            Some(if pttl < 0 {
                                Displaced::NotALease(NotALease::NeverExpires(by.to_string()))
                            } else {
                                Displaced::TooFarAhead {
                                    by: by.to_string(),
                                    until: (now * 1000 + pttl) as f64 / 1000.0,
                                }
                            })
                        }
                        _ => Some(Displaced::NotALease(NotALease::BadHolder(v.len()))),
                    },
                    Err(e) if e.kind() == redis::ErrorKind::TypeError || e.code() == Some("WRONGTYPE") => {
                        Some(Displaced::NotALease(NotALease::NotAString))
                    }
                    Err(e) => return Err(e),
                };
                // Ours from before, void, or no lease: removed, then taken.
                let _: i64 = redis::cmd("DEL").arg(&lease).query(con)?;
                displaced = why;
            }
            Err(RedisError::from(io::Error::other("the lease key keeps changing")))
        })
    }

    fn finish(&self, key: &StapleKey, me: Option<&str>, persist: Persist, now: i64) -> io::Result<()> {
        let staple = self.staple_key(key);
        let lease = self.lease_key(key);
        self.with(|con| {
            let written = match &persist {
                Persist::Keep => Ok(()),
                Persist::Write(resp) => {
                    let next_update = resp.next_update.unwrap_or(0);
                    let ttl = if next_update > now {
                        next_update - now
                    } else if next_update == 0 {
                        TTL_WITHOUT_NEXT_UPDATE
                    } else {
                        1
                    };
                    redis::cmd("SET")
                        .arg(&staple)
                        .arg(&resp.der)
                        .arg("PX")
                        .arg(ttl * 1000)
                        .query::<()>(con)
                }
                Persist::Remove => redis::cmd("DEL").arg(&staple).query::<()>(con),
            };
            if let Some(me) = me {
                redis::cmd("EVAL")
                    .arg(RELEASE)
                    .arg(1)
                    .arg(&lease)
                    .arg(me)
                    .query::<i64>(con)?;
            }
            written
        })
    }
}

/// A lease's value as this module writes it: "<host> <pid>".
fn valid_holder(by: &str) -> bool {
    let mut parts = by.split(' ');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(h), Some(p), None) if !h.is_empty() && h.len() <= 255 && p.parse::<u32>().is_ok()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let info = parse_url("redis://user:s3cret@127.0.0.1:6390/2").unwrap();
        assert_eq!(shown(&info), "redis://127.0.0.1:6390/2");
        assert_eq!(info.redis.password.as_deref(), Some("s3cret"));
        assert_eq!(shown(&parse_url("redis://h").unwrap()), "redis://h:6379/0");
        assert!(parse_url("http://h:1").is_err());
        assert!(matches!(parse_url("unix:///tmp/x"), Err(SetupError::Scheme)));
        let e = parse_url("redis://u:pw@h:notaport").unwrap_err().to_string();
        assert!(!e.contains("pw"), "{e}");
    }

    #[test]
    fn ca_files() {
        let setting = |url: &str, ca: Option<&str>| RedisSetting {
            url: url.into(),
            prefix: DEFAULT_PREFIX.into(),
            password_file: None,
            ca_file: ca.map(str::to_string),
        };
        let t = Duration::from_secs(1);
        let e = RedisStore::new(&setting("redis://h", Some("/nonexistent")), t)
            .err()
            .unwrap();
        assert!(matches!(e, SetupError::CaWithoutTls), "{e}");
        let e = RedisStore::new(&setting("rediss://h", Some("/nonexistent")), t)
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("cannot read the CA file \"/nonexistent\": "),
            "{e}"
        );
        let s = RedisStore::new(&setting("rediss://u:pw@h:7000/3", None), t)
            .ok()
            .unwrap();
        assert_eq!(s.name(), "rediss://h:7000/3");
    }

    #[test]
    fn holders() {
        assert!(valid_holder("host 42"));
        assert!(!valid_holder("host"));
        assert!(!valid_holder("host x"));
        assert!(!valid_holder("host 1 2"));
        assert!(!valid_holder(" 1"));
    }
}
