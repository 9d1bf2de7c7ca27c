//! The disk store: staples written as they are fetched, read back at a
//! start so that nginx staples before its first fetch.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::{size_problem, Settings, StaplingContext, TooLarge};
use crate::base::log::{log_info, log_warn, Log};
use crate::base::parallel;
use crate::ocsp::response::{
    check_response_cached, check_validity, peek_next_update, CertCache, CertStatus, CertificateStatusId,
    ChainSignatureCheck, CheckedResponse, OcspError, TimeRules,
};
use crate::state::certificate::{Certificate, StapleKey};
use crate::state::store::seal::{self, SealKey, SEAL_LEN};
use crate::state::store::StapleStore;

impl StaplingContext {
    /// The size of each staple in a store directory, by key, from the
    /// files' metadata (a store file is the response's DER, and its seal
    /// when the store seals): what the zone is sized from. Empty for other
    /// stores and when the directory cannot be listed (the fill says why).
    pub(super) fn stored_sizes(&self) -> HashMap<StapleKey, usize> {
        let Some(dir) = self.store.as_ref().and_then(|s| s.as_dir()) else {
            return HashMap::new();
        };
        let Ok(files) = dir.list() else {
            return HashMap::new();
        };
        let seal = if dir.seal.is_some() { SEAL_LEN } else { 0 };
        files
            .into_iter()
            .filter_map(|(key, path)| {
                let meta = std::fs::metadata(path).ok()?;
                let len = usize::try_from(meta.len()).ok()?.saturating_sub(seal);
                (meta.is_file() && len > 0 && len <= self.settings.max_staple_bytes).then_some((key, len))
            })
            .collect()
    }

    /// The store's staples for the configured staples in `wanted` (those
    /// without a staple in the zone), checked as fetched ones are; each
    /// file that cannot be used gets one warning.
    pub(super) fn read_store(
        &self,
        wanted: &HashSet<StapleKey>,
        log_: Log,
        now: i64,
    ) -> Vec<(StapleKey, CheckedResponse)> {
        let Some(store) = &self.store else {
            return Vec::new();
        };
        let started = Instant::now();
        let Some(dir) = store.as_dir() else {
            return self.read_keys(&**store, wanted, log_, now, started);
        };
        let files = match dir.list() {
            Ok(f) => f,
            Err(e) => {
                log_warn!(log_, "cannot read the store \"{}\": {e}", store.name());
                return Vec::new();
            }
        };
        let fetched = || self.certs.iter().filter(|c| c.plan.is_some() && c.file.is_none());
        let by_key: HashMap<_, _> = fetched().map(|c| (c.key, c)).collect();
        // Releases before staple keys named a file by the certificate's
        // SHA-256 alone: such a file is tried for every staple of that
        // certificate still wanted, with that staple's checks.
        let mut by_sha256: HashMap<StapleKey, Vec<&Certificate>> = HashMap::new();
        for c in fetched() {
            by_sha256.entry(c.sha256).or_default().push(c);
        }
        let mut legacy = Vec::new();
        let mut to_read = Vec::new();
        for (key, path) in files {
            if by_key.contains_key(&key) && !wanted.contains(&key) {
                // The zone has a staple already (a reload): not read.
                continue;
            }
            if !by_key.contains_key(&key) && by_sha256.contains_key(&key) {
                legacy.push((key, path));
                continue;
            }
            to_read.push((key, path));
        }
        // Read on every core too: with seals, opening and reading the
        // files is most of what a start spends on the store.
        let contents = parallel::map(&to_read, |_: &mut (), (_, path)| {
            crate::state::store::read_file(path)
        });
        let mut read = Vec::new();
        for ((key, path), content) in to_read.into_iter().zip(contents) {
            let Some(der) = logged(&path, content, log_) else {
                continue;
            };
            let Some(&cert) = by_key.get(&key) else {
                // Kept while it could serve a certificate put back in the
                // configuration; removed once it never could.
                let removed = useless(&der, now) && std::fs::remove_file(&path).is_ok();
                log_warn!(
                    log_,
                    "\"{}\" in the store is for no configured certificate; ignored{}",
                    path.display(),
                    if removed { " and removed" } else { "" }
                );
                continue;
            };
            read.push((key, cert, path, der));
        }
        let (mut out, sealed) =
            self.check_read(&read, |_, path| format!("\"{}\"", path.display()), log_, now);
        let found: HashSet<StapleKey> = out.iter().map(|(key, _)| *key).collect();
        for (sha256, path) in legacy {
            let want: Vec<&Certificate> = by_sha256
                .get(&sha256)
                .into_iter()
                .flatten()
                .copied()
                .filter(|c| wanted.contains(&c.key) && !found.contains(&c.key))
                .collect();
            if want.is_empty() {
                continue;
            }
            let shown = path.display();
            let Some(der) = logged(&path, crate::state::store::read_file(&path), log_) else {
                continue;
            };
            let mut why = None;
            for cert in want {
                match self.usable(cert, &der, now) {
                    Ok(resp) => out.push((cert.key, resp)),
                    Err(e) => why = Some((cert, e)),
                }
            }
            if let Some((cert, why)) = why {
                let removed = useless(&der, now) && std::fs::remove_file(&path).is_ok();
                log_warn!(
                    log_,
                    "stored OCSP response \"{shown}\" (written by an earlier release) \
                     for certificate \"{}\" ignored for a server whose settings it does not satisfy: {why}{}",
                    cert.name,
                    if removed { "; removed" } else { "" }
                );
            }
        }
        log_read(out.len(), sealed, &**store, log_, started);
        out
    }

    /// The staples a key-value store holds for the staples in `wanted`,
    /// checked as fetched ones are; each that cannot be used gets one
    /// warning, and a store that does not answer one for all.
    fn read_keys(
        &self,
        store: &dyn StapleStore,
        wanted: &HashSet<StapleKey>,
        log_: Log,
        now: i64,
        started: Instant,
    ) -> Vec<(StapleKey, CheckedResponse)> {
        let certs: HashMap<StapleKey, &Certificate> = self
            .certs
            .iter()
            .filter(|c| c.plan.is_some() && c.file.is_none() && wanted.contains(&c.key))
            .map(|c| (c.key, c))
            .collect();
        let mut keys: Vec<StapleKey> = certs.keys().copied().collect();
        keys.sort_unstable_by_key(|k| k.0);
        let values = match store.read_many(&keys) {
            Ok(v) => v,
            Err(e) => {
                log_warn!(
                    log_,
                    "cannot read the store \"{}\": {e}; staples are fetched",
                    store.name()
                );
                return Vec::new();
            }
        };
        let read: Vec<_> = values
            .into_iter()
            .filter_map(|(key, der)| Some((key, *certs.get(&key)?, (), der)))
            .collect();
        let (out, sealed) = self.check_read(&read, |key, ()| store.staple_name(key), log_, now);
        log_read(out.len(), sealed, store, log_, started);
        out
    }

    /// The stored responses in `read` (staple, its certificate, where the
    /// store keeps it, the bytes) checked as fetched ones are, spread over
    /// the cores: those that pass, and how many of them their seal vouched
    /// for; one warning for each that does not, naming the response as
    /// `name` says (made only then: a start reads thousands).
    fn check_read<T>(
        &self,
        read: &[(StapleKey, &Certificate, T, Vec<u8>)],
        name: impl Fn(&StapleKey, &T) -> String,
        log_: Log,
        now: i64,
    ) -> (Vec<(StapleKey, CheckedResponse)>, usize) {
        let checks: Vec<_> = read
            .iter()
            .map(|(_, cert, _, der)| (self.stored_check(cert), &der[..]))
            .collect();
        let mut out = Vec::new();
        let mut sealed = 0;
        for ((key, cert, at, _), result) in read.iter().zip(check_all(&checks, now)) {
            match result {
                Ok((resp, by_seal)) => {
                    sealed += usize::from(by_seal);
                    out.push((*key, resp));
                }
                Err(why) => {
                    log_warn!(
                        log_,
                        "stored OCSP response {} for certificate \"{}\" ignored: {why}",
                        name(key, at),
                        cert.name
                    );
                }
            }
        }
        (out, sealed)
    }

    /// A stored response checked for `cert`'s staple as a fetched one is
    /// (or, sealed by this store's key, as it was when it was fetched).
    pub fn usable(&self, cert: &Certificate, bytes: &[u8], now: i64) -> Result<CheckedResponse, Unusable> {
        self.stored_check(cert)
            .run(bytes, now, &mut CertCache::default())
            .map(|(resp, _)| resp)
    }

    fn stored_check<'a>(&'a self, cert: &'a Certificate) -> StoredCheck<'a> {
        StoredCheck::new(
            &self.settings,
            cert,
            self.store.as_ref().and_then(|s| s.seal_key()),
        )
    }
}

/// What a stored response is checked against for one staple: the parts of
/// the settings and of the certificate the check reads, which threads may
/// share (a `Certificate` holds its SSL_CTX's pointer, a context its
/// worker's cells).
struct StoredCheck<'a> {
    max_bytes: usize,
    serve_revoked: bool,
    time: TimeRules,
    key: StapleKey,
    id: &'a CertificateStatusId,
    signature: ChainSignatureCheck<'a>,
    seal: Option<&'a SealKey>,
}

impl<'a> StoredCheck<'a> {
    fn new(settings: &Settings, cert: &'a Certificate, seal: Option<&'a SealKey>) -> Self {
        StoredCheck {
            max_bytes: settings.max_staple_bytes,
            serve_revoked: settings.serve_revoked,
            time: settings.time,
            key: cert.key,
            id: &cert.status_id,
            signature: cert.signature_check(),
            seal,
        }
    }

    /// The response in a store's `bytes`, and whether its seal vouched for
    /// it: then the signature is not checked again (the staple id the seal
    /// covers fixes the certificate, issuer, chain, responder and
    /// verification settings it was checked with), but the size, time and
    /// status rules are applied to it as to any.
    fn run(
        &self,
        bytes: &[u8],
        now: i64,
        cache: &mut CertCache,
    ) -> Result<(CheckedResponse, bool), Unusable> {
        let stored = seal::take_apart(bytes);
        if let Some(why) = size_problem(stored.der.len(), self.max_bytes) {
            return Err(why.into());
        }
        let (resp, by_seal) = match self.seal.and_then(|k| k.open(&self.key, &stored)) {
            Some(r) => {
                check_validity(r.this_update, r.next_update, now, &self.time)?;
                (r, true)
            }
            None => (
                check_response_cached(stored.der, self.id, &self.signature, now, &self.time, cache)?,
                false,
            ),
        };
        match resp.status {
            CertStatus::Revoked if !self.serve_revoked => Err(Unusable::Revoked),
            CertStatus::Unknown => Err(Unusable::Unknown),
            _ => Ok((resp, by_seal)),
        }
    }
}

/// Every stored response checked, in order, spread over the cores (a start
/// with thousands of staples in the store waits for these checks), each
/// thread parsing a certificate the responses carry once.
fn check_all(
    checks: &[(StoredCheck<'_>, &[u8])],
    now: i64,
) -> Vec<Result<(CheckedResponse, bool), Unusable>> {
    parallel::map(checks, |cache: &mut CertCache, (check, der)| {
        check.run(der, now, cache)
    })
}

/// The info line of a start that found staples in the store: how many,
/// how many of them their seal vouched for, and how long reading and
/// checking them took (what a restart spends on the store).
fn log_read(n: usize, sealed: usize, store: &dyn StapleStore, log_: Log, started: Instant) {
    if n > 0 {
        log_info!(
            log_,
            "{n} staple(s) read from the store \"{}\" and checked in {:.2} s ({sealed} by their seal)",
            store.name(),
            started.elapsed().as_secs_f64()
        );
    }
}

/// Why a stored response is not served.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("{0}")]
    TooLarge(#[from] TooLarge),
    #[error("{0}")]
    Check(#[from] OcspError),
    #[error("the certificate is revoked")]
    Revoked,
    #[error("certificate status \"unknown\"")]
    Unknown,
}

/// A store file's content as read, or the one warning saying why not.
fn logged(path: &std::path::Path, content: std::io::Result<Vec<u8>>, log_: Log) -> Option<Vec<u8>> {
    match content {
        Ok(d) => Some(d),
        Err(e) => {
            log_warn!(log_, "cannot read \"{}\": {e}", path.display());
            None
        }
    }
}

/// A stored response no certificate could use any more: past its
/// nextUpdate, or not an OCSP response at all.
fn useless(bytes: &[u8], now: i64) -> bool {
    match peek_next_update(seal::take_apart(bytes).der) {
        Ok(Some(next)) => next <= now,
        Ok(None) => false,
        Err(_) => true,
    }
}
