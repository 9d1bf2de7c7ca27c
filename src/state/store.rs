//! The stores (`ssl_stapling_store`) behind one interface, `StapleStore`:
//! a directory of this instance's, a directory shared by several
//! instances (`shared`), and Valkey/Redis (`kv`). Their calls may block:
//! the workers make them off the event loop (`fetch::blocking`).
//!
//! The directory store: one file per staple, `<staple
//! id>.der` (see `StapleKey`), holding its last accepted response and that
//! response's seal (`seal`), so that a restarted nginx staples its first
//! handshakes even while the responder is down. Files are written
//! atomically (a temporary file in the same directory, then renamed over
//! the old one): a crash of nginx leaves the old file or the new one, never
//! half of either. They are not fsync'ed: the store is a cache — after a
//! power loss a file the kernel had not written is at worst empty, which is
//! one warning at the next start and a fetch.

use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::ocsp::response::CheckedResponse;
use crate::state::certificate::StapleKey;
use seal::SealKey;

pub mod kv;
pub mod seal;

const SUFFIX: &str = ".der";

/// What a fetch leaves for the store to do with a staple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persist {
    /// Nothing (the fetch failed: the stored staple stays).
    Keep,
    /// A new staple, which passed every check.
    Write(CheckedResponse),
    /// No staple (the certificate is revoked).
    Remove,
}

/// A store of staples, as the fetch path sees it: read the one another
/// instance may have written, take the lease on fetching it, and after the
/// fetch write or remove it and give the lease back. Implemented by the
/// directory store (`Store`) and Valkey/Redis (`kv::RedisStore`). Calls
/// may block; errors say what went wrong, never a credential.
pub trait StapleStore: Send + Sync {
    /// How log lines name the store: a path or a URL without credentials.
    fn name(&self) -> &str;
    /// Whether other instances write it too: then it is read before a
    /// fetch and a lease decides which instance fetches.
    fn shared(&self) -> bool;
    /// False when staples are only read from it (the workers cannot write).
    fn writable(&self) -> bool;
    /// Where a staple is kept, for log lines: `"<path>"`, or `key "<key>"
    /// in <url>`.
    fn staple_name(&self, key: &StapleKey) -> String;
    /// Where a staple's lease is kept, for log lines: `the lease file
    /// "<path>"`, or `the lease key "<key>" in <url>`.
    fn lease_name(&self, key: &StapleKey) -> String;
    /// The staple stored, if any.
    fn read(&self, key: &StapleKey) -> io::Result<Option<Vec<u8>>>;
    /// Takes the fetch lease of a staple for `me` until `until`.
    fn take_lease(&self, key: &StapleKey, me: &str, now: i64, until: i64) -> io::Result<StoreLease>;
    /// What the fetch brought, then the lease given back if `me` holds it.
    fn finish(&self, key: &StapleKey, me: Option<&str>, persist: Persist, now: i64) -> io::Result<()>;
    /// The directory store, for what only it does (reading every file at a
    /// start, the files of earlier releases).
    fn as_dir(&self) -> Option<&Store> {
        None
    }
    /// The key that seals the staples this store keeps, if it has one:
    /// a staple it sealed needs no signature check when it is read back.
    fn seal_key(&self) -> Option<&SealKey> {
        None
    }
    /// The staples stored for `keys`, read at a start (in the master).
    fn read_many(&self, keys: &[StapleKey]) -> io::Result<Vec<(StapleKey, Vec<u8>)>> {
        let mut out = Vec::new();
        for key in keys {
            if let Some(der) = self.read(key)? {
                out.push((*key, der));
            }
        }
        Ok(out)
    }
}
const TEMP_MARK: &str = ".tmp.";

#[derive(Clone)]
pub struct Store {
    pub dir: PathBuf,
    /// `dir` as log lines show it.
    pub shown: String,
    /// False when the workers cannot write it (logged once at startup):
    /// staples are still read from it, never written.
    pub writable: bool,
    /// Shared by several nginx instances (`ssl_stapling_store PATH
    /// shared`): a staple another instance wrote is taken before fetching,
    /// and a lease file per staple lets one instance fetch it.
    pub shared: bool,
    /// Seals the staples written (`.seal-key`, see `seal`).
    pub seal: Option<SealKey>,
}

const LEASE_SUFFIX: &str = ".lease";

/// The longest a lease this module writes can reach ahead of the clock of
/// the host that wrote it (the longest `ssl_stapling_fetch_timeout`, 10m,
/// plus the 35 s margin of `Settings::lease_secs`), and the 5-minute
/// allowance for clocks that disagree that responses get
/// (`ssl_stapling_time_skew`'s default). A lease further ahead of this
/// host's clock was not written by a live instance of this module with a
/// sane clock: it is void.
pub const MAX_LEASE_AHEAD_SECS: i64 =
    MAX_FETCH_TIMEOUT_SECS + LEASE_MARGIN_SECS + crate::ocsp::response::DEFAULT_SKEW_SECS;

/// What a lease adds to the fetch timeout: time to resolve the responder's
/// name, and a margin (`Settings::lease_secs`).
pub const LEASE_MARGIN_SECS: i64 = 35;

/// The longest `ssl_stapling_fetch_timeout`: a lease lasts as long as a
/// fetch may, so it bounds leases.
pub const MAX_FETCH_TIMEOUT_SECS: i64 = 600;

/// The largest lease file read: "<host> <pid> <deadline>\n" is well under.
const MAX_LEASE_FILE: u64 = 512;

/// What was in the way of a lease that `take_lease` took.
#[derive(Debug, PartialEq)]
pub enum Displaced {
    /// That holder's lease, whose deadline passed.
    Expired { by: String },
    /// That holder's lease, with a deadline further ahead than any lease
    /// this module writes (a clock far off, a bug, or a hostile writer).
    TooFarAhead { by: String, until: f64 },
    /// Something that is no lease: what (a directory, a FIFO, a link,
    /// garbage, ...).
    NotALease(NotALease),
}

/// What a lease file holds when it is no lease.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotALease {
    #[error("{0}")]
    Refused(#[from] Refused),
    #[error("it is empty")]
    Empty,
    #[error("its {0} bytes are not \"<host> <pid> <deadline>\"")]
    Garbage(usize),
    /// A Redis lease key whose value is no holder.
    #[error("its {0} bytes are not \"<host> <pid>\"")]
    BadHolder(usize),
    /// A Redis lease key without a time to live.
    #[error("the lease of {0} never expires")]
    NeverExpires(String),
    /// A Redis lease key of another type.
    #[error("it is not a string")]
    NotAString,
}

/// Why the store does not read a file at all.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("it is a symbolic link, not followed")]
    Link,
    #[error("it is {0}, not a regular file")]
    NotAFile(&'static str),
    #[error("it is {len} bytes, larger than any file the store reads there ({max} bytes)")]
    TooLarge { len: u64, max: u64 },
    #[error("it grew past {0} bytes while read")]
    Grew(u64),
}

/// Why `prepare` cannot make a directory the store.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("it is in {0}, a file system of the kernel's where no file can be kept")]
    KernelFileSystem(&'static str),
    #[error("it is not a directory")]
    NotADirectory,
    #[error("cannot create it: {0}")]
    Create(io::Error),
    #[error("cannot chown it: {0}")]
    Chown(io::Error),
    #[error("cannot stat it: {0}")]
    Stat(io::Error),
    #[error("the worker processes cannot write to it: {0}")]
    NotWritable(io::Error),
}

/// What `take_lease` found.
#[derive(Debug, PartialEq)]
pub enum StoreLease {
    /// Ours now, after what was in the way was removed, if anything was.
    Taken { displaced: Option<Displaced> },
    /// Another instance's ("host pid"), until then (Unix seconds).
    Held { by: String, until: i64 },
}

/// A lease file's content: "<host> <pid> <deadline>", the deadline written
/// inside it (shared file systems cache file times), in seconds, with a
/// fraction or not.
fn parse_lease(text: &str) -> Option<(String, f64)> {
    let mut parts = text.split_whitespace();
    let (host, pid, until) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    pid.parse::<u32>().ok()?;
    let until: f64 = until.parse().ok()?;
    until.is_finite().then(|| (format!("{host} {pid}"), until))
}

/// What a lease file holds: a lease, or why it is none.
fn read_lease(path: &Path) -> io::Result<Result<(String, f64), NotALease>> {
    let bytes = match read_bounded(path, MAX_LEASE_FILE) {
        Ok(b) => b,
        Err(Unread::Refused(why)) => return Ok(Err(why.into())),
        Err(Unread::Io(e)) => return Err(e),
    };
    if bytes.is_empty() {
        return Ok(Err(NotALease::Empty));
    }
    Ok(std::str::from_utf8(&bytes)
        .ok()
        .and_then(parse_lease)
        .ok_or(NotALease::Garbage(bytes.len())))
}

/// Removes whatever is at `path`: a file, a link (not followed), or a
/// directory with what is in it.
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    }
}

/// This instance's name in lease files: host name and pid.
pub fn lease_holder() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let host = if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end])
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .collect::<String>()
    } else {
        String::new()
    };
    let host = if host.is_empty() {
        "unknown".to_string()
    } else {
        host
    };
    format!("{host} {}", std::process::id())
}

impl Store {
    pub fn new(dir: PathBuf, writable: bool, shared: bool) -> Store {
        Store {
            shown: dir.display().to_string(),
            dir,
            writable,
            shared,
            seal: None,
        }
    }

    pub fn path_of(&self, key: &StapleKey) -> PathBuf {
        self.dir.join(format!("{key}{SUFFIX}"))
    }

    /// Replaces the staple's file with `resp`, sealed when the store has a
    /// key: see `write_bytes`.
    pub fn write(&self, key: &StapleKey, resp: &CheckedResponse) -> io::Result<()> {
        match self.seal.as_ref().and_then(|k| k.seal(key, resp)) {
            Some(sealed) => self.write_bytes(key, &sealed),
            None => self.write_bytes(key, &resp.der),
        }
    }

    /// Replaces the staple's file with `der`, atomically: a temporary file
    /// created exclusively (never through a link someone left at its name),
    /// mode 0600, then renamed over the old one.
    pub fn write_bytes(&self, key: &StapleKey, der: &[u8]) -> io::Result<()> {
        let tmp = self
            .dir
            .join(format!(".{key}{SUFFIX}{TEMP_MARK}{}", std::process::id()));
        let create = || {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)
        };
        let result = (|| {
            let mut f = match create() {
                // Left by a crashed worker that had our pid: unlink (a link
                // is removed, not followed) and create it afresh.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    fs::remove_file(&tmp)?;
                    create()?
                }
                r => r?,
            };
            f.write_all(der)?;
            drop(f);
            fs::rename(&tmp, self.path_of(key))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    pub fn lease_path(&self, key: &StapleKey) -> PathBuf {
        self.dir.join(format!("{key}{LEASE_SUFFIX}"))
    }

    /// Takes the fetch lease of a staple for `me` until `until`: a file
    /// created exclusively. What is in the way is removed first (renamed
    /// away, so that of two instances taking it over at once only one
    /// succeeds): a lease whose deadline passed, one further ahead than
    /// `MAX_LEASE_AHEAD_SECS`, or anything that is not a lease. A file
    /// being written (empty, less than 2 s old) counts as held.
    pub fn take_lease(&self, key: &StapleKey, me: &str, now: i64, until: i64) -> io::Result<StoreLease> {
        let path = self.lease_path(key);
        let mut displaced = None;
        for _ in 0..3 {
            let created = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path);
            match created {
                Ok(mut f) => {
                    f.write_all(format!("{me} {until}\n").as_bytes())?;
                    return Ok(StoreLease::Taken { displaced });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            let found = match read_lease(&path) {
                Ok(found) => found,
                // Gone meanwhile (its holder gave it back): try again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let why = match found {
                Ok((by, _)) if by == me => None,
                Ok((by, held)) if held > (now + MAX_LEASE_AHEAD_SECS) as f64 => {
                    Some(Displaced::TooFarAhead { by, until: held })
                }
                Ok((by, held)) if held > now as f64 => {
                    return Ok(StoreLease::Held {
                        by,
                        until: held.ceil() as i64,
                    });
                }
                Ok((by, _)) => Some(Displaced::Expired { by }),
                Err(NotALease::Empty) if young(&path, now) => {
                    return Ok(StoreLease::Held {
                        by: "an instance writing its lease".into(),
                        until: now + 1,
                    });
                }
                Err(why) => Some(Displaced::NotALease(why)),
            };
            let aside = self
                .dir
                .join(format!(".{key}{LEASE_SUFFIX}{TEMP_MARK}{}", std::process::id()));
            match fs::rename(&path, &aside) {
                Ok(()) => {
                    remove_any(&aside)?;
                    displaced = why;
                }
                // Another instance moved it first: look again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("the lease file keeps changing"))
    }

    /// Removes the staple's lease file if `me` holds it.
    pub fn release_lease(&self, key: &StapleKey, me: &str) {
        let path = self.lease_path(key);
        if let Ok(Ok((by, _))) = read_lease(&path) {
            if by == me {
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// The staple's file, if there is one (read as `read_file` reads).
    pub fn read(&self, key: &StapleKey) -> io::Result<Option<Vec<u8>>> {
        // Test builds only: a store that hangs, as a hard NFS mount whose
        // server is gone, while a file ".hang" is in it.
        #[cfg(feature = "test-hooks")]
        while self.dir.join(".hang").exists() {
            std::thread::sleep(Duration::from_millis(100));
        }
        match read_file(&self.path_of(key)) {
            Ok(der) => Ok(Some(der)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn remove(&self, key: &StapleKey) -> io::Result<()> {
        match fs::remove_file(self.path_of(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every `<id>.der` file: (id, path). Temporary files a crash left
    /// behind (older than a minute, so no live writer's) are removed.
    pub fn list(&self) -> io::Result<Vec<(StapleKey, PathBuf)>> {
        let mut out = Vec::new();
        let old = SystemTime::now() - Duration::from_secs(60);
        for dirent in fs::read_dir(&self.dir)? {
            let Ok(dirent) = dirent else { continue };
            let name = dirent.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') && name.contains(TEMP_MARK) {
                let stale = dirent
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < old);
                if stale {
                    let _ = fs::remove_file(dirent.path());
                }
                continue;
            }
            if let Some(key) = name.strip_suffix(SUFFIX).and_then(StapleKey::parse) {
                out.push((key, dirent.path()));
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }
}

impl StapleStore for Store {
    fn name(&self) -> &str {
        &self.shown
    }

    fn shared(&self) -> bool {
        self.shared
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn staple_name(&self, key: &StapleKey) -> String {
        format!("\"{}\"", self.path_of(key).display())
    }

    fn lease_name(&self, key: &StapleKey) -> String {
        format!("the lease file \"{}\"", self.lease_path(key).display())
    }

    fn read(&self, key: &StapleKey) -> io::Result<Option<Vec<u8>>> {
        Store::read(self, key)
    }

    fn take_lease(&self, key: &StapleKey, me: &str, now: i64, until: i64) -> io::Result<StoreLease> {
        Store::take_lease(self, key, me, now, until)
    }

    fn finish(&self, key: &StapleKey, me: Option<&str>, persist: Persist, _now: i64) -> io::Result<()> {
        let written = match persist {
            Persist::Keep => Ok(()),
            Persist::Write(resp) => self.write(key, &resp),
            Persist::Remove => self.remove(key),
        };
        if let Some(me) = me.filter(|_| self.shared) {
            self.release_lease(key, me);
        }
        written
    }

    fn as_dir(&self) -> Option<&Store> {
        Some(self)
    }

    fn seal_key(&self) -> Option<&SealKey> {
        self.seal.as_ref()
    }
}

/// The largest file the store reads: the largest response a fetch reads,
/// and its seal.
const MAX_FILE: u64 = (crate::ocsp::responder::MAX_BODY + seal::SEAL_LEN) as u64;

/// Reads one store file the way a file in a directory others can write
/// must be read, above all by the master running as root: without
/// following a symbolic link, without blocking (a FIFO), only a regular
/// file of at most `MAX_FILE` bytes. The error says what the file is.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    read_bounded(path, MAX_FILE).map_err(|e| match e {
        Unread::Refused(why) => io::Error::new(io::ErrorKind::InvalidData, why),
        Unread::Io(e) => e,
    })
}

/// Why `read_bounded` returned no content.
enum Unread {
    Refused(Refused),
    Io(io::Error),
}

impl From<io::Error> for Unread {
    fn from(e: io::Error) -> Unread {
        Unread::Io(e)
    }
}

/// `read_file` with another bound: `max` bytes.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, Unread> {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Unread::Refused(Refused::Link),
            _ => Unread::Io(e),
        })?;
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        let kind = match meta.file_type() {
            t if t.is_dir() => "a directory",
            t if std::os::unix::fs::FileTypeExt::is_fifo(&t) => "a FIFO",
            t if std::os::unix::fs::FileTypeExt::is_socket(&t) => "a socket",
            t if std::os::unix::fs::FileTypeExt::is_char_device(&t) => "a character device",
            t if std::os::unix::fs::FileTypeExt::is_block_device(&t) => "a block device",
            _ => "something else",
        };
        return Err(Unread::Refused(Refused::NotAFile(kind)));
    }
    if meta.len() > max {
        return Err(Unread::Refused(Refused::TooLarge { len: meta.len(), max }));
    }
    let mut der = Vec::with_capacity(meta.len() as usize);
    // Bounded even if the file grows meanwhile.
    (&mut f).take(max + 1).read_to_end(&mut der)?;
    if der.len() as u64 > max {
        return Err(Unread::Refused(Refused::Grew(max)));
    }
    Ok(der)
}

/// Whether the file at `path` changed less than 2 s before `now`.
fn young(path: &Path, now: i64) -> bool {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .is_some_and(|t| t.as_secs() as i64 + 2 > now)
}

/// Makes sure the workers (running as `uid`:`gid` when the master is root)
/// can write `dir`: creates it (mode 0700, owned by them) when missing, then
/// creates and removes a probe file with their identity. Runs in the master
/// at configuration time; the error says what is wrong, once.
pub fn prepare(dir: &Path, worker: Option<(libc::uid_t, libc::gid_t)>) -> Result<(), PrepareError> {
    if let Some(fs_name) = kernel_file_system(dir) {
        return Err(PrepareError::KernelFileSystem(fs_name));
    }
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(PrepareError::NotADirectory),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(PrepareError::Create)?;
            if let Some((uid, gid)) = worker {
                // A path with a NUL byte could not have been created above.
                let c = CString::new(dir.as_os_str().as_bytes())
                    .map_err(|e| PrepareError::Chown(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
                // SAFETY: a valid C path.
                if unsafe { libc::chown(c.as_ptr(), uid, gid) } != 0 {
                    return Err(PrepareError::Chown(io::Error::last_os_error()));
                }
            }
        }
        Err(e) => return Err(PrepareError::Stat(e)),
    }
    as_worker(worker, || {
        let probe = dir.join(format!(".probe{TEMP_MARK}{}", std::process::id()));
        fs::File::create(&probe)?;
        fs::remove_file(&probe)
    })
    .map_err(PrepareError::NotWritable)
}

/// The kernel's own file system `dir` is in (/proc, /sys), if it is.
fn kernel_file_system(dir: &Path) -> Option<&'static str> {
    let real = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    [("/proc", "/proc"), ("/sys", "/sys")]
        .into_iter()
        .find(|(p, _)| real.starts_with(p))
        .map(|(_, name)| name)
}

/// Runs `f` with the effective user and group of the workers (the master
/// is single-threaded; the identity is restored before returning).
fn as_worker<T>(
    worker: Option<(libc::uid_t, libc::gid_t)>,
    f: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    // SAFETY: plain identity calls.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let Some((uid, gid)) = worker.filter(|_| euid == 0) else {
        return f();
    };
    // SAFETY: we are root; both are restored below.
    unsafe {
        if libc::setegid(gid) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::seteuid(uid) != 0 {
            let e = io::Error::last_os_error();
            libc::setegid(egid);
            return Err(e);
        }
    }
    let r = f();
    // SAFETY: back to root (the saved set-user-id is 0).
    unsafe {
        libc::seteuid(euid);
        libc::setegid(egid);
    }
    r
}

#[cfg(test)]
mod tests;
