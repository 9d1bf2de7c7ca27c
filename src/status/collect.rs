//! The status page's data: plain copies of the registry's certificates and
//! their zone entries, taken under the zone lock a batch at a time
//! (`BATCH` entries), so a handshake waits at most for one batch's copy,
//! whatever the number of certificates.

use crate::state::certificate::{Certificate, StapleKey};
pub use crate::state::zone::EntryView;

/// How many entries are copied per hold of the zone lock.
const BATCH: usize = 256;

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
    /// What the totals and the selection need: cheap to copy.
    fn bare(cert: &Certificate, dynamic: bool) -> Self {
        CertView {
            id: Some(cert.key),
            sha256: Some(cert.sha256.to_string()),
            protocol: match cert.protocol {
                crate::state::certificate::Protocol::Http => "http",
                crate::state::certificate::Protocol::Stream => "stream",
            },
            dynamic,
            must_staple: cert.must_staple,
            ..CertView::default()
        }
    }

    /// What a listed certificate shows besides: subject, serial, servers,
    /// responder, file.
    fn describe(&mut self, cert: &Certificate) {
        self.subject = Some(crate::state::registry::subject_of(&cert.x509));
        self.serial = cert
            .x509
            .serial_number()
            .to_bn()
            .ok()
            .and_then(|b| b.to_hex_str().ok().map(|h| h.to_lowercase()));
        self.servers = cert.servers.clone();
        self.responder = cert.plan.as_ref().map(|p| p.describe());
        self.file = cert.file.clone();
    }

    pub fn of(cert: &Certificate, dynamic: bool) -> Self {
        let mut view = CertView::bare(cert, dynamic);
        view.describe(cert);
        view
    }
}

/// Copies what the page shows: the configured certificates, then those
/// loaded by variables (the zone's, described by this worker where it
/// knows them). Only the configured certificates `listed` picks (from
/// their state) get their subject, serial and the rest: the page lists
/// only those, and the others count in its totals alone.
pub fn collect(
    ctx: &crate::state::registry::StaplingContext,
    now: i64,
    listed: &dyn Fn(&CertView, i64) -> bool,
) -> Page {
    let mut page = collect_states(ctx, now);
    for (view, cert) in page.certs.iter_mut().zip(&ctx.certs) {
        if listed(view, now) {
            view.describe(cert);
        }
    }
    page
}

/// Every certificate bare (see `CertView::bare`) with its zone state,
/// those loaded by variables described.
fn collect_states(ctx: &crate::state::registry::StaplingContext, now: i64) -> Page {
    let mut certs: Vec<CertView> = ctx
        .certs
        .iter()
        .map(|c| CertView {
            zone_full: ctx.without_room(&c.key),
            ..CertView::bare(c, false)
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
    for batch in certs.chunks_mut(BATCH) {
        let mut z = zone.lock();
        for view in batch {
            if let Some(key) = view.id {
                view.state = z.find(&key).map(|e| e.view());
                // A fetched staple larger than the zone was filled for.
                view.zone_full |= view.state.as_ref().is_some_and(|s| s.no_room);
            }
        }
    }
    let mut dynamic_states = Vec::new();
    let zone_view;
    {
        // At most ssl_stapling_dynamic_max entries, from their list.
        let mut z = zone.lock();
        z.for_each_dynamic(|e| dynamic_states.push((e.key(), e.view())));
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
