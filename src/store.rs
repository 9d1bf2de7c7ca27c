//! The disk store (`ssl_stapling_store`): one file per staple,
//! `<staple id>.der` (see `StapleKey`), holding the last accepted staple, so that a
//! restarted nginx staples its first handshakes even while the responder is
//! down. Files are written atomically (a temporary file in the same
//! directory, then renamed over the old one): a crash of nginx leaves the
//! old file or the new one, never half of either. They are not fsync'ed:
//! the write happens on the worker's event loop, and the store is a cache —
//! after a power loss a file the kernel had not written is at worst empty,
//! which is one warning at the next start and a fetch.

use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::certificate::StapleKey;

const SUFFIX: &str = ".der";
const TEMP_MARK: &str = ".tmp.";

pub struct Store {
    pub dir: PathBuf,
    /// False when the workers cannot write it (logged once at startup):
    /// staples are still read from it, never written.
    pub writable: bool,
}

impl Store {
    pub fn path_of(&self, key: &StapleKey) -> PathBuf {
        self.dir.join(format!("{key}{SUFFIX}"))
    }

    pub fn read(&self, key: &StapleKey) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path_of(key)) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the certificate's file with `der`, atomically.
    pub fn write(&self, key: &StapleKey, der: &[u8]) -> io::Result<()> {
        let tmp = self
            .dir
            .join(format!(".{key}{SUFFIX}{TEMP_MARK}{}", std::process::id()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(der)?;
            drop(f);
            fs::rename(&tmp, self.path_of(key))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
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

/// Makes sure the workers (running as `uid`:`gid` when the master is root)
/// can write `dir`: creates it (mode 0700, owned by them) when missing, then
/// creates and removes a probe file with their identity. Runs in the master
/// at configuration time; the error says what is wrong, once.
pub fn prepare(dir: &Path, worker: Option<(libc::uid_t, libc::gid_t)>) -> Result<(), String> {
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err("it is not a directory".into()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create it: {e}"))?;
            if let Some((uid, gid)) = worker {
                let c = CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
                // SAFETY: a valid C path.
                if unsafe { libc::chown(c.as_ptr(), uid, gid) } != 0 {
                    return Err(format!("cannot chown it: {}", io::Error::last_os_error()));
                }
            }
        }
        Err(e) => return Err(format!("cannot stat it: {e}")),
    }
    as_worker(worker, || {
        let probe = dir.join(format!(".probe{TEMP_MARK}{}", std::process::id()));
        fs::File::create(&probe)?;
        fs::remove_file(&probe)
    })
    .map_err(|e| format!("the worker processes cannot write to it: {e}"))
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
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ssl-stapling-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn write_read_list_remove() {
        let dir = tmpdir("rw");
        prepare(&dir, None).unwrap();
        let store = Store {
            dir: dir.clone(),
            writable: true,
        };
        let key = StapleKey([0xab; 32]);
        assert_eq!(store.read(&key).unwrap(), None);
        store.write(&key, b"one").unwrap();
        store.write(&key, b"two").unwrap();
        assert_eq!(store.read(&key).unwrap().as_deref(), Some(&b"two"[..]));
        fs::write(dir.join("not-a-key.der"), b"x").unwrap();
        fs::write(dir.join(".abc.der.tmp.1"), b"x").unwrap();
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, key);
        // No temporary file is left behind by writes.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|d| d.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.iter().filter(|n| n.contains(TEMP_MARK)).count(), 1);
        store.remove(&key).unwrap();
        store.remove(&key).unwrap();
        assert_eq!(store.read(&key).unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn prepare_refuses_a_file() {
        let dir = tmpdir("file");
        fs::write(&dir, b"x").unwrap();
        assert!(prepare(&dir, None).unwrap_err().contains("not a directory"));
        fs::remove_file(&dir).unwrap();
    }
}
