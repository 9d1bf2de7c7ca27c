//! Sealed staples: what the directory store writes after a staple passed
//! every check, so that a restart can take it back without checking its
//! signature again.
//!
//! A file is the response's DER followed by a seal of `SEAL_LEN` bytes:
//!
//! ```text
//! version (1) | status (1) | thisUpdate (8, big-endian) | nextUpdate (8; 0: none) | HMAC-SHA256 (32)
//! ```
//!
//! The HMAC covers a label, the staple's id (the certificate, its issuer
//! and chain, the responder and the verification settings: see
//! `StapleKey`), the three fields and the DER. Its key is 32 random bytes
//! in the store's `.seal-key`, made by the master and taken only when it
//! is a regular file of the master's own user that no one else may read:
//! when the master runs as root, the worker user who can write the store
//! can neither read the key nor put in one of their own (a file they make
//! is theirs, not root's). When nginx runs as one user, that user can read
//! the key and also the servers' private keys, which is worse than a
//! staple. A staple whose seal does not verify is checked in full, as any
//! stored response is; nothing is served on the seal's word but what this
//! module itself accepted for that very staple id.
//!
//! A seal spares the signature only: the time rules, the size limit and
//! the status rules are applied again at every start, to the sealed times.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;

use crate::ocsp::response::{leading_response, CertStatus, CheckedResponse};
use crate::state::certificate::StapleKey;

/// The key's file in the store directory.
const KEY_FILE: &str = ".seal-key";
const KEY_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// The bytes a seal adds to a staple's DER.
pub const SEAL_LEN: usize = 1 + 1 + 8 + 8 + MAC_LEN;
const VERSION: u8 = 1;
const LABEL: &[u8] = b"ngx_ssl_stapling sealed staple v1\0";

/// The store's sealing key (shared by the master's check threads and the
/// workers' store threads: `PKey` is reference-counted and thread-safe).
#[derive(Clone)]
pub struct SealKey {
    pkey: PKey<Private>,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key's bytes.
        f.write_str("SealKey")
    }
}

/// Why the store's key file is not taken.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("it is a symbolic link")]
    Link,
    #[error("it is not a regular file")]
    NotAFile,
    #[error("it belongs to uid {owner}, not to uid {me} the master process runs as")]
    Owner { owner: u32, me: u32 },
    #[error("its mode {0:03o} lets others read it")]
    Readable(u32),
    #[error("it is {0} bytes long, not {KEY_LEN}")]
    Length(u64),
    #[error("no random bytes for a new key: {0}")]
    Random(openssl::error::ErrorStack),
}

/// A stored staple's bytes taken apart: the response's DER, and the seal
/// after it if it has one. Bytes after the DER that are no seal are not
/// part of the response and are dropped.
#[derive(Debug, Clone, Copy)]
pub struct StoredBytes<'a> {
    pub der: &'a [u8],
    seal: Option<&'a [u8]>,
}

impl StoredBytes<'_> {
    #[cfg(test)]
    pub fn is_sealed(&self) -> bool {
        self.seal.is_some()
    }
}

pub fn take_apart(bytes: &[u8]) -> StoredBytes<'_> {
    match leading_response(bytes) {
        Some((der, rest)) if rest.len() == SEAL_LEN && rest.first() == Some(&VERSION) => StoredBytes {
            der,
            seal: Some(rest),
        },
        Some((der, _)) => StoredBytes { der, seal: None },
        None => StoredBytes {
            der: bytes,
            seal: None,
        },
    }
}

fn status_byte(s: CertStatus) -> u8 {
    match s {
        CertStatus::Good => 0,
        CertStatus::Revoked => 1,
        CertStatus::Unknown => 2,
    }
}

fn status_of(b: u8) -> Option<CertStatus> {
    match b {
        0 => Some(CertStatus::Good),
        1 => Some(CertStatus::Revoked),
        2 => Some(CertStatus::Unknown),
        _ => None,
    }
}

fn be_i64(b: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(b.try_into().ok()?))
}

impl SealKey {
    pub fn from_bytes(key: &[u8]) -> Result<SealKey, openssl::error::ErrorStack> {
        Ok(SealKey {
            pkey: PKey::hmac(key)?,
        })
    }

    /// The HMAC of one staple's fields and DER.
    fn mac(&self, id: &StapleKey, fields: &[u8], der: &[u8]) -> Option<Vec<u8>> {
        let mut s = Signer::new(MessageDigest::sha256(), &self.pkey).ok()?;
        for part in [LABEL, &id.0[..], fields, der] {
            s.update(part).ok()?;
        }
        s.sign_to_vec().ok().filter(|m| m.len() == MAC_LEN)
    }

    /// `resp` (which passed every check for staple `id`) with its seal:
    /// what the store writes. `None` if OpenSSL cannot compute the HMAC
    /// (the DER is then written alone).
    pub fn seal(&self, id: &StapleKey, resp: &CheckedResponse) -> Option<Vec<u8>> {
        let mut fields = Vec::with_capacity(SEAL_LEN - MAC_LEN);
        fields.push(VERSION);
        fields.push(status_byte(resp.status));
        fields.extend_from_slice(&resp.this_update.to_be_bytes());
        fields.extend_from_slice(&resp.next_update.unwrap_or(0).to_be_bytes());
        let mac = self.mac(id, &fields, &resp.der)?;
        let mut out = Vec::with_capacity(resp.der.len() + SEAL_LEN);
        out.extend_from_slice(&resp.der);
        out.extend_from_slice(&fields);
        out.extend_from_slice(&mac);
        Some(out)
    }

    /// The response as it was accepted for staple `id`, when `stored`
    /// carries a seal this key made for that id over these very bytes;
    /// `None` otherwise (the response must then be checked in full).
    pub fn open(&self, id: &StapleKey, stored: &StoredBytes<'_>) -> Option<CheckedResponse> {
        let seal = stored.seal?;
        let (fields, mac) = seal.split_at_checked(SEAL_LEN - MAC_LEN)?;
        let want = self.mac(id, fields, stored.der)?;
        if !openssl::memcmp::eq(&want, mac) {
            return None;
        }
        let status = status_of(*fields.get(1)?)?;
        let this_update = be_i64(fields.get(2..10)?)?;
        let next_update = be_i64(fields.get(10..18)?)?;
        Some(CheckedResponse {
            der: stored.der.to_vec(),
            status,
            this_update,
            next_update: (next_update != 0).then_some(next_update),
        })
    }
}

/// Where the key of store directory `dir` is.
pub fn key_path(dir: &Path) -> std::path::PathBuf {
    dir.join(KEY_FILE)
}

/// The store directory's key: read from `.seal-key`, or made there when
/// there is none. The bool says it was made now. Called by the master
/// (before the workers start, as the user that owns the key).
pub fn load_or_make(dir: &Path) -> Result<(SealKey, bool), KeyError> {
    let path = key_path(dir);
    match read_key(&path) {
        Err(KeyError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other.map(|k| (k, false)),
    }
    let mut key = [0u8; KEY_LEN];
    openssl::rand::rand_bytes(&mut key).map_err(KeyError::Random)?;
    let tmp = dir.join(format!("{KEY_FILE}.tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let made = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(&key)?;
        drop(f);
        // A link, not a rename: another instance sharing the store that
        // made a key first keeps it, and this one takes that key.
        match fs::hard_link(&tmp, &path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(_) => fs::rename(&tmp, &path).map(|()| true),
            Ok(()) => Ok(true),
        }
    })();
    let _ = fs::remove_file(&tmp);
    let made = made?;
    // Read back through the same checks: on a file system that gives the
    // file another owner (NFS's root squashing) the key is not private.
    Ok((read_key(&path)?, made))
}

/// The key in `path`, if it is a regular file of this process's user,
/// that no one else may read, of exactly `KEY_LEN` bytes.
fn read_key(path: &Path) -> Result<SealKey, KeyError> {
    let mut f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(KeyError::Link),
        r => r?,
    };
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile);
    }
    // SAFETY: geteuid cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(KeyError::Owner {
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o077 != 0 {
        return Err(KeyError::Readable(meta.mode() & 0o777));
    }
    if meta.len() != KEY_LEN as u64 {
        return Err(KeyError::Length(meta.len()));
    }
    let mut key = [0u8; KEY_LEN];
    f.read_exact(&mut key)?;
    SealKey::from_bytes(&key).map_err(|e| KeyError::Io(io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der() -> Vec<u8> {
        let path = format!("{}/src/ocsp/fixtures/good.der", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap()
    }

    fn resp(der: Vec<u8>) -> CheckedResponse {
        CheckedResponse {
            der,
            status: CertStatus::Good,
            this_update: 1_700_000_000,
            next_update: Some(1_700_086_400),
        }
    }

    #[test]
    fn a_seal_opens_for_its_staple_and_key_only() {
        let key = SealKey::from_bytes(&[7; 32]).unwrap();
        let id = StapleKey([1; 32]);
        let r = resp(der());
        let sealed = key.seal(&id, &r).unwrap();
        assert_eq!(sealed.len(), r.der.len() + SEAL_LEN);
        let stored = take_apart(&sealed);
        assert!(stored.is_sealed());
        assert_eq!(stored.der, &r.der[..]);
        let opened = key.open(&id, &stored).unwrap();
        assert_eq!(
            (opened.der, opened.status, opened.this_update, opened.next_update),
            (r.der.clone(), r.status, r.this_update, r.next_update)
        );
        // Another staple's id, another key: not opened.
        assert!(key.open(&StapleKey([2; 32]), &stored).is_none());
        assert!(SealKey::from_bytes(&[8; 32])
            .unwrap()
            .open(&id, &stored)
            .is_none());
        // Any byte changed, in the DER or in the seal: not opened.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let stored = take_apart(&bad);
            assert!(key.open(&id, &stored).is_none(), "byte {i} changed");
        }
    }

    #[test]
    fn bytes_without_a_seal() {
        let key = SealKey::from_bytes(&[7; 32]).unwrap();
        let id = StapleKey([1; 32]);
        let d = der();
        let plain = take_apart(&d);
        assert!(!plain.is_sealed());
        assert_eq!(plain.der, &d[..]);
        assert!(key.open(&id, &plain).is_none());
        // Trailing bytes that are no seal are not part of the response.
        let mut junk = d.clone();
        junk.extend_from_slice(b"junk");
        assert_eq!(take_apart(&junk).der, &d[..]);
        // Not DER at all: the bytes as they are, for the full check to refuse.
        assert_eq!(take_apart(b"garbage").der, b"garbage");
        // No nextUpdate round-trips as none.
        let mut r = resp(d);
        r.next_update = None;
        let sealed = key.seal(&id, &r).unwrap();
        assert_eq!(key.open(&id, &take_apart(&sealed)).unwrap().next_update, None);
    }

    #[test]
    fn the_key_file_is_made_once_and_must_be_private() {
        let dir = std::env::temp_dir().join(format!("seal-key-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (k1, made) = load_or_make(&dir).unwrap();
        assert!(made);
        let meta = fs::metadata(dir.join(KEY_FILE)).unwrap();
        assert_eq!((meta.mode() & 0o777, meta.len()), (0o600, 32));
        let (k2, made) = load_or_make(&dir).unwrap();
        assert!(!made);
        let id = StapleKey([1; 32]);
        let sealed = k1.seal(&id, &resp(der())).unwrap();
        assert!(
            k2.open(&id, &take_apart(&sealed)).is_some(),
            "the same key read back"
        );
        let path = dir.join(KEY_FILE);
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load_or_make(&dir), Err(KeyError::Readable(0o644))));
        fs::remove_file(&path).unwrap();
        fs::write(&path, b"short").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(load_or_make(&dir), Err(KeyError::Length(5))));
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/null", &path).unwrap();
        assert!(matches!(load_or_make(&dir), Err(KeyError::Link)));
        // No temporary file is left behind.
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from(KEY_FILE)]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
