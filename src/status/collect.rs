//! The status page's data: plain copies of the registry's certificates and
//! their zone entries, taken under the zone lock in one go, so the page
//! costs the handshake path nothing but that copy.

use crate::ocsp::response::CertStatus;
use crate::state::certificate::{Certificate, StapleKey};
use crate::state::zone::{Entry, FetchResult, StapleSource, LAST_ERROR_LEN};

/// One certificate as the page shows it.
#[derive(Debug, Clone, Default)]
pub struct CertView {
    /// The staple's id (certificate and server settings).
    pub id: Option<StapleKey>,
    pub subject: Option<String>,
    pub serial: Option<String>,
    /// The certificate's SHA-256 (unknown for a certificate loaded by
    /// variables in another worker).
    pub sha256: Option<String>,
    pub servers: Vec<String>,
    pub protocol: &'static str,
    pub responder: Option<String>,
    pub file: Option<String>,
    pub dynamic: bool,
    pub must_staple: bool,
    /// The zone had no room for this staple: it is neither fetched nor
    /// served (see the crit line at startup).
    pub zone_full: bool,
    pub state: Option<EntryView>,
}

/// A copy of a zone entry.
#[derive(Debug, Clone, Copy)]
pub struct EntryView {
    pub source: StapleSource,
    pub has_staple: bool,
    pub status: CertStatus,
    pub this_update: i64,
    pub next_update: i64,
    pub next_refresh: i64,
    pub last_fetch: i64,
    pub last_result: FetchResult,
    pub last_error: [u8; LAST_ERROR_LEN],
    pub last_error_len: usize,
    pub fetch_ok: u64,
    pub fetch_failed: u64,
    pub stapled: u64,
    pub unstapled: u64,
    pub bytes: usize,
}

impl EntryView {
    pub fn of(e: &Entry) -> Self {
        let err = e.last_error();
        let mut last_error = [0u8; LAST_ERROR_LEN];
        let n = err.len().min(last_error.len());
        last_error[..n].copy_from_slice(&err[..n]);
        EntryView {
            source: e.source,
            has_staple: e.der().is_some(),
            status: e.status,
            this_update: e.this_update,
            next_update: e.next_update,
            next_refresh: e.next_refresh,
            last_fetch: e.last_fetch,
            last_result: e.last_result,
            last_error,
            last_error_len: n,
            fetch_ok: e.fetch_ok,
            fetch_failed: e.fetch_failed,
            stapled: e.stapled,
            unstapled: e.unstapled,
            bytes: e.der().map_or(0, |d| d.len()),
        }
    }

    pub fn error(&self) -> String {
        String::from_utf8_lossy(&self.last_error[..self.last_error_len.min(LAST_ERROR_LEN)]).into_owned()
    }

    /// A staple that may be served at `now`.
    pub fn valid(&self, now: i64) -> bool {
        self.has_staple && (self.next_update == 0 || self.next_update > now)
    }

    pub fn status_str(&self) -> &'static str {
        if self.has_staple {
            self.status.as_str()
        } else if self.last_result == FetchResult::Revoked {
            "revoked"
        } else {
            "none"
        }
    }
}

pub struct ZoneView {
    pub name: String,
    pub size: usize,
    pub used: usize,
    pub entries: usize,
    pub dynamic_entries: usize,
    /// Staples of the configuration the zone has no room for.
    pub without_room: usize,
}

pub struct Page {
    pub now: i64,
    pub zone: Option<ZoneView>,
    pub certs: Vec<CertView>,
}

impl CertView {
    pub fn of(cert: &Certificate, dynamic: bool) -> Self {
        let serial = cert
            .x509
            .serial_number()
            .to_bn()
            .ok()
            .and_then(|b| b.to_hex_str().ok().map(|h| h.to_lowercase()));
        CertView {
            subject: Some(crate::state::registry::subject_of(&cert.x509)),
            serial,
            id: Some(cert.key),
            sha256: Some(cert.sha256.to_string()),
            servers: cert.servers.clone(),
            protocol: match cert.protocol {
                crate::state::certificate::Protocol::Http => "http",
                crate::state::certificate::Protocol::Stream => "stream",
            },
            responder: cert.plan.as_ref().map(|p| p.url.to_string()),
            file: cert.file.clone(),
            dynamic,
            must_staple: cert.must_staple,
            zone_full: false,
            state: None,
        }
    }
}

/// Copies what the page shows: the configured certificates, then those
/// loaded by variables (the zone's, described by this worker where it
/// knows them).
pub fn collect(ctx: &crate::state::registry::StaplingContext, now: i64) -> Page {
    let mut certs: Vec<CertView> = ctx
        .certs
        .iter()
        .map(|c| CertView {
            zone_full: ctx.without_room(&c.key),
            ..CertView::of(c, false)
        })
        .collect();
    let dynamic = ctx.dynamic_snapshot();
    let Some(zone) = ctx.zone() else {
        return Page {
            now,
            zone: None,
            certs,
        };
    };
    let mut dynamic_states = Vec::new();
    let zone_view;
    {
        let mut z = zone.lock();
        for view in certs.iter_mut() {
            if let Some(key) = view.id {
                view.state = z.find(&key).map(|e| EntryView::of(e));
            }
        }
        z.for_each(|e| {
            if e.is_dynamic() {
                dynamic_states.push((e.key, EntryView::of(e)));
            }
        });
        let usage = z.usage();
        zone_view = ZoneView {
            name: ctx.zone_name(),
            size: usage.size,
            used: usage.used(),
            entries: usage.entries,
            dynamic_entries: z.dynamic_entries(),
            without_room: certs.iter().filter(|c| c.zone_full).count(),
        };
    }
    for (key, state) in dynamic_states {
        let mut view = match dynamic.iter().find(|c| c.key == key) {
            Some(c) => CertView::of(c, true),
            None => CertView {
                id: Some(key),
                dynamic: true,
                ..CertView::default()
            },
        };
        view.state = Some(state);
        certs.push(view);
    }
    Page {
        now,
        zone: Some(zone_view),
        certs,
    }
}
