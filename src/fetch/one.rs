//! One fetch of one staple: the request to the responder, and what its
//! answer (or failure) does to the zone's entry and the schedule. Returns
//! what the store is to do with the staple.

use nginx_sys::{NGX_LOG_CRIT, NGX_LOG_DEBUG, NGX_LOG_ERR, NGX_LOG_INFO, NGX_LOG_WARN};

use crate::base::log::{log_info, log_prefixed, Log};
use crate::fetch::exchange::{fetch, FetchError, FetchJob};
use crate::fetch::task::{exiting, now};
use crate::ocsp::response::CertStatus;
use crate::ocsp::schedule;
use crate::state::certificate::Certificate;
use crate::state::certificate::Fetched;
use crate::state::registry::{size_problem, StaplingContext};
use crate::state::store::Persist;
use crate::state::zone::{EntryMut, Zone};

/// Fetches one staple and applies the result; returns what the store is
/// to get (a staple, or its removal), if anything.
pub async fn fetch_one(ctx: &StaplingContext, zone: Zone, cert: &Certificate, log: Log) -> Persist {
    let Some(plan) = cert.plan.as_ref() else {
        return Persist::Keep;
    };
    log_info!(
        log,
        "fetching OCSP response for certificate \"{}\" from {}{}",
        cert.name,
        plan.describe(),
        plan.proxy
            .as_ref()
            .map(|p| format!(" through proxy {p}"))
            .unwrap_or_default()
    );
    let job = FetchJob {
        name: &cert.name,
        status_id: &cert.status_id,
        check: cert.signature_check(),
        plan,
        rules: &ctx.settings.time,
    };
    let result = fetch(job, ctx.settings.fetch_timeout_ms, log).await;
    if exiting() {
        return Persist::Keep;
    }
    apply(ctx, zone, cert, result, log)
}

/// Stores what a fetch brought (or counts its failure) and schedules the
/// next one; logs after the zone is unlocked. Returns what the store is
/// to do.
fn apply(
    ctx: &StaplingContext,
    zone: Zone,
    cert: &Certificate,
    result: Result<Fetched, FetchError>,
    log: Log,
) -> Persist {
    let now = now();
    let random = nginx_sys::ngx_random() as u32;
    let policy = &ctx.settings.policy;
    let name = &cert.name;
    // The responder that answered, or (on failure) those tried.
    let mut url = cert.plan.as_ref().map(|p| p.describe()).unwrap_or_default();
    let result = result.and_then(|f| {
        url = f.from;
        match size_problem(f.response.der.len(), ctx.settings.max_staple_bytes) {
            Some(why) => Err(FetchError::TooLarge(why)),
            None => Ok(f.response),
        }
    });
    let mut z = zone.lock();
    let Some(mut e) = z.find(&cert.key) else {
        return Persist::Keep;
    };
    e.end_fetch(now);
    let mut persist = Persist::Keep;
    let outcome: Option<(usize, String)> = match result {
        Ok(resp) if resp.status == CertStatus::Revoked && !ctx.settings.serve_revoked => {
            let new = e.is_new_revocation(&resp);
            let next = schedule::after_success(policy, resp.this_update, resp.next_update, now, random);
            e.record_revoked(&resp, next);
            persist = Persist::Remove;
            // Said once, not at every refresh.
            new.then(|| {
                (
                    NGX_LOG_ERR as usize,
                    format!(
                        "certificate \"{name}\" is revoked (OCSP response from {url}); \
                         its staple is no longer served"
                    ),
                )
            })
        }
        Ok(resp) if resp.status == CertStatus::Unknown => Some(fail(
            &mut e,
            policy,
            now,
            random,
            name,
            &url,
            "certificate status \"unknown\" in the OCSP response",
        )),
        Ok(resp) => {
            let next = schedule::after_success(policy, resp.this_update, resp.next_update, now, random);
            match e.record_fetched(&resp, now, next) {
                Ok(()) => {
                    persist = Persist::Write(resp.clone());
                    Some((
                        NGX_LOG_INFO as usize,
                        format!(
                            "OCSP response for certificate \"{name}\" fetched from {url}: {}, \
                             {} bytes, next fetch in {} s",
                            resp.status.as_str(),
                            resp.der.len(),
                            next - now
                        ),
                    ))
                }
                Err(full) => {
                    let (_, msg) = fail(&mut e, policy, now, random, name, &url, &full.to_string());
                    e.mark_no_room();
                    // Once per configuration at crit; the slab pool's own
                    // no-memory lines are off.
                    Some(if z.take_full_warning() {
                        (
                            NGX_LOG_CRIT as usize,
                            format!(
                                "{msg}; about {} KB needed: raise its size with \"ssl_stapling_zone\"",
                                ctx.zone_bytes_needed().div_ceil(1024)
                            ),
                        )
                    } else {
                        (NGX_LOG_DEBUG as usize, msg)
                    })
                }
            }
        }
        Err(err) => Some(fail(&mut e, policy, now, random, name, &url, &err.to_string())),
    };
    drop(z);
    if let Some((level, msg)) = outcome {
        log_prefixed!(level, log, "{msg}");
    }
    persist
}

/// Counts a failed fetch and says when the next one is, with a line that
/// tells whether the previous staple is still served.
#[allow(clippy::too_many_arguments)]
fn fail(
    e: &mut EntryMut<'_>,
    policy: &schedule::Policy,
    now: i64,
    random: u32,
    name: &str,
    url: &str,
    cause: &str,
) -> (usize, String) {
    let kept = e.record_failure(cause, now, |failures, kept| {
        schedule::after_failure(policy, failures, kept, now, random)
    });
    let kept = match kept {
        Some(0) => "; the previous staple is still served".to_string(),
        Some(n) => format!(
            "; the previous staple is served until its nextUpdate, {} s from now",
            n - now
        ),
        None => String::new(),
    };
    (
        NGX_LOG_WARN as usize,
        format!(
            "cannot fetch OCSP response for certificate \"{name}\" from {url}: {cause}; \
             retry in {} s{kept}",
            e.next_refresh() - now
        ),
    )
}
