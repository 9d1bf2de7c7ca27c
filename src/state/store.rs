//! The disk store (`ssl_stapling_store`): one file per staple, `<staple
//! id>.der` (see `StapleKey`), holding its last accepted response, so that a
//! restarted nginx staples its first handshakes even while the responder is
//! down. Files are written atomically (a temporary file in the same
//! directory, then renamed over the old one): a crash of nginx leaves the
//! old file or the new one, never half of either. They are not fsync'ed: the
//! write happens on the worker's event loop, and the store is a cache —
//! after a power loss a file the kernel had not written is at worst empty,
//! which is one warning at the next start and a fetch.

use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::state::certificate::StapleKey;

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

    /// Replaces the staple's file with `der`, atomically: a temporary file
    /// created exclusively (never through a link someone left at its name),
    /// mode 0600, then renamed over the old one.
    pub fn write(&self, key: &StapleKey, der: &[u8]) -> io::Result<()> {
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

/// The largest file the store reads: the largest response a fetch reads.
const MAX_FILE: u64 = crate::ocsp::responder::MAX_BODY as u64;

/// Reads one store file the way a file in a directory others can write
/// must be read, above all by the master running as root: without
/// following a symbolic link, without blocking (a FIFO), only a regular
/// file of at most `MAX_FILE` bytes. The error says what the file is.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let refuse = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refuse("it is a symbolic link, not followed".into()),
            _ => e,
        })?;
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        let kind = match meta.file_type() {
            t if t.is_dir() => "a directory",
            t if std::os::unix::fs::FileTypeExt::is_fifo(&t) => "a FIFO",
            t if std::os::unix::fs::FileTypeExt::is_socket(&t) => "a socket",
            t if std::os::unix::fs::FileTypeExt::is_char_device(&t) => "a character device",
            t if std::os::unix::fs::FileTypeExt::is_block_device(&t) => "a block device",
            _ => "not a regular file",
        };
        return Err(refuse(format!("it is {kind}, not a regular file")));
    }
    if meta.len() > MAX_FILE {
        return Err(refuse(format!(
            "it is {} bytes, larger than any OCSP response read ({MAX_FILE} bytes)",
            meta.len()
        )));
    }
    let mut der = Vec::with_capacity(meta.len() as usize);
    // Bounded even if the file grows meanwhile.
    (&mut f).take(MAX_FILE + 1).read_to_end(&mut der)?;
    if der.len() as u64 > MAX_FILE {
        return Err(refuse(format!("it grew past {MAX_FILE} bytes while read")));
    }
    Ok(der)
}

/// Makes sure the workers (running as `uid`:`gid` when the master is root)
/// can write `dir`: creates it (mode 0700, owned by them) when missing, then
/// creates and removes a probe file with their identity. Runs in the master
/// at configuration time; the error says what is wrong, once.
pub fn prepare(dir: &Path, worker: Option<(libc::uid_t, libc::gid_t)>) -> Result<(), String> {
    if let Some(fs_name) = kernel_file_system(dir) {
        return Err(format!(
            "it is in {fs_name}, a file system of the kernel's where no file can be kept"
        ));
    }
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
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
        assert!(!store.path_of(&key).exists());
        store.write(&key, b"one").unwrap();
        store.write(&key, b"two").unwrap();
        assert_eq!(read_file(&store.path_of(&key)).unwrap(), b"two");
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
        assert!(!store.path_of(&key).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hostile_files_are_refused_without_blocking() {
        let dir = tmpdir("hostile");
        prepare(&dir, None).unwrap();
        let fifo = dir.join("fifo.der");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_file(&fifo).unwrap_err().to_string();
        assert!(e.contains("a FIFO, not a regular file"), "{e}");
        let target = dir.join("target");
        fs::write(&target, b"secret").unwrap();
        let link = dir.join("link.der");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = read_file(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let big = dir.join("big.der");
        fs::File::create(&big).unwrap().set_len(1 << 30).unwrap();
        let e = read_file(&big).unwrap_err().to_string();
        assert!(e.contains("1073741824 bytes, larger than"), "{e}");
        let e = read_file(&dir).unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
        // A link where a temporary file goes is replaced, never written
        // through.
        let store = Store {
            dir: dir.clone(),
            writable: true,
        };
        let key = StapleKey([0x11; 32]);
        let tmp = dir.join(format!(".{key}{SUFFIX}{TEMP_MARK}{}", std::process::id()));
        std::os::unix::fs::symlink(&target, &tmp).unwrap();
        store.write(&key, b"staple").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"secret");
        assert_eq!(read_file(&store.path_of(&key)).unwrap(), b"staple");
        let mode = fs::metadata(store.path_of(&key)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn prepare_names_proc() {
        let e = prepare(Path::new("/proc/self"), None).unwrap_err();
        assert!(e.contains("it is in /proc"), "{e}");
    }

    #[test]
    fn prepare_refuses_a_file() {
        let dir = tmpdir("file");
        fs::write(&dir, b"x").unwrap();
        assert!(prepare(&dir, None).unwrap_err().contains("not a directory"));
        fs::remove_file(&dir).unwrap();
    }
}
