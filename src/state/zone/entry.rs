//! One staple's record in the zone: the staple itself, how it was fetched
//! and served, and the lease that lets one worker fetch it. Fields are
//! private; what changes them is a fetch's outcome, a handshake, a lease,
//! each one method here, so every writer keeps the record consistent.

use std::mem;
use std::ptr;

use nginx_sys::ngx_rbtree_node_t;

use super::chunks::{self, Chunks};
use super::view::{EntryView, FetchResult, StapleSource, LAST_ERROR_LEN};
use super::{bump_generation, Memory, Slab, ZoneFull};
use crate::ocsp::response::{CertStatus, CheckedResponse};
use crate::state::certificate::StapleKey;

/// A time in whole seconds since 1970, in 4 bytes (until 2106): an entry
/// holds ten, and 4 bytes each leave room in its slot for the first bytes
/// of its staple. Earlier times read as 0 (none), later ones as 2106.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
#[repr(transparent)]
struct Secs(u32);

impl Secs {
    fn of(t: i64) -> Secs {
        Secs(u32::try_from(t.max(0)).unwrap_or(u32::MAX))
    }

    fn get(self) -> i64 {
        i64::from(self.0)
    }
}

/// The staple's first bytes kept in the entry itself, in what its slot
/// would otherwise waste; the rest is a chain of pieces (`chunks`).
pub const HEAD: usize = 55;

/// The bytes of a staple of `len` bytes that go in pieces outside the
/// entry.
pub fn chain_len(len: usize) -> usize {
    len.saturating_sub(HEAD)
}

#[repr(C)]
pub struct Entry {
    /// First field: the tree's nodes are entries.
    pub(super) node: ngx_rbtree_node_t,
    key: StapleKey,
    /// The staple's bytes after the first `HEAD`: a chain of pieces, or
    /// null when the staple fits in `head`.
    der: *mut u8,
    /// The last fetch's error, if any: its own allocation ([length, bytes
    /// ...]), made only while fetches fail.
    last_error: *mut u8,
    /// Its place in the eviction order (dynamic entries only).
    pub(super) lru: super::lru::Link,
    fetch_ok: u64,
    fetch_failed: u64,
    stapled: u64,
    unstapled: u64,
    pub(super) config_seq: u64,
    /// The staple's length (0: none).
    der_len: u32,
    failures: u32,
    lease_pid: i32,
    this_update: Secs,
    /// 0 when the response has no nextUpdate.
    next_update: Secs,
    stored_at: Secs,
    /// Fetch scheduling and the lease that lets exactly one worker fetch.
    next_refresh: Secs,
    lease_until: Secs,
    /// When the last fetch ended, and how.
    last_fetch: Secs,
    /// When a fetch last ended or a staple was last taken from a shared
    /// store: refreshes on demand are coalesced against it.
    settled_at: Secs,
    /// The nextUpdate of the last staple a handshake found expired (said
    /// once per staple).
    expiry_noted: Secs,
    /// Last handshake that asked for it (dynamic entries' LRU order).
    last_used: Secs,
    /// When "must-staple certificate served without a staple" was last
    /// logged, so that all workers together log it once a minute.
    gap_logged: Secs,
    source: StapleSource,
    status: CertStatus,
    last_result: FetchResult,
    /// Registered by a handshake (a certificate loaded by variables), not
    /// by the configuration; evicted least recently used first.
    pub(super) dynamic: bool,
    /// The last fetched staple did not fit in the zone (its size was
    /// reckoned smaller when the zone was filled): it has no room, as the
    /// staples the fill refused; cleared when a staple is stored.
    no_room: bool,
    /// The staple's first `HEAD` bytes.
    head: [u8; HEAD],
}

// An entry fills a 256-byte slab slot exactly, its last bytes holding the
// staple's first: a staple costs these 256 bytes, and for what does not
// fit in them its pieces' links and rounding (`chunks`).
const _: () = assert!(mem::size_of::<Entry>() == 256);

/// Why a worker may not fetch an entry now, and when to look again.
pub struct NotYet(pub i64);

/// Why a refresh on demand was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshSkipped {
    /// A fetch of the staple is under way.
    InFlight,
    /// The staple was fetched (or taken from a shared store) that many
    /// seconds ago, less than `ssl_stapling_refresh_min_interval`.
    Recent { ago: i64 },
}

impl RefreshSkipped {
    pub fn reason(&self) -> String {
        match self {
            RefreshSkipped::InFlight => "being fetched".into(),
            RefreshSkipped::Recent { ago } => format!("fetched {ago} s ago"),
        }
    }
}

impl Entry {
    pub(super) fn new(key: StapleKey, config_seq: u64, dynamic: bool, now: i64) -> Self {
        // SAFETY: an all-zero rbtree node is what nginx starts nodes from.
        let node: ngx_rbtree_node_t = unsafe { mem::zeroed() };
        Entry {
            node,
            key,
            der: ptr::null_mut(),
            der_len: 0,
            source: StapleSource::None,
            status: CertStatus::Unknown,
            this_update: Secs(0),
            next_update: Secs(0),
            stored_at: Secs(0),
            next_refresh: Secs(0),
            failures: 0,
            lease_pid: 0,
            lease_until: Secs(0),
            fetch_ok: 0,
            fetch_failed: 0,
            stapled: 0,
            unstapled: 0,
            last_fetch: Secs(0),
            settled_at: Secs(0),
            expiry_noted: Secs(0),
            last_result: FetchResult::None,
            dynamic,
            no_room: false,
            last_used: if dynamic { Secs::of(now) } else { Secs(0) },
            lru: super::lru::Link::unlinked(),
            gap_logged: Secs(0),
            last_error: ptr::null_mut(),
            config_seq,
            head: [0; HEAD],
        }
    }

    pub fn key(&self) -> StapleKey {
        self.key
    }

    /// The entry whose eviction-order link is `link`.
    ///
    /// # Safety
    /// `link` is the `lru` field of a live entry.
    pub(super) unsafe fn of_lru_link(link: *mut super::lru::Link) -> *mut Entry {
        // SAFETY: the contract above: the field is at this offset of an
        // entry.
        unsafe { link.cast::<u8>().sub(mem::offset_of!(Entry, lru)).cast() }
    }

    pub fn source(&self) -> StapleSource {
        self.source
    }

    #[cfg(test)]
    pub fn is_dynamic(&self) -> bool {
        self.dynamic
    }

    /// The staple, if there is one that may be served at `now`: never at or
    /// after its nextUpdate. (Whether a revoked response may be a staple at
    /// all is decided before it is stored.)
    pub fn servable(&self, now: i64) -> Option<Chunks<'_>> {
        let next_update = self.next_update.get();
        if next_update != 0 && next_update <= now {
            return None;
        }
        self.der()
    }

    /// The staple's DER, whatever its validity.
    pub fn der(&self) -> Option<Chunks<'_>> {
        if self.der_len == 0 {
            return None;
        }
        let len = self.der_len as usize;
        // SAFETY: head holds the first bytes, der the rest: a live chain of
        // slab pieces owned by this entry (null when nothing is left); entries are only reached under the zone lock, which
        // the borrow of `self` spans.
        Some(unsafe { Chunks::new(&self.head[..len.min(HEAD)], self.der, len) })
    }

    pub fn has_staple(&self) -> bool {
        self.der_len > 0
    }

    pub fn last_error(&self) -> &[u8] {
        if self.last_error.is_null() {
            return &[];
        }
        // SAFETY: a live allocation of this entry holding its length byte,
        // then that many bytes (`EntryMut::set_last_error`).
        unsafe {
            let n = usize::from(*self.last_error).min(LAST_ERROR_LEN);
            std::slice::from_raw_parts(self.last_error.add(1), n)
        }
    }

    pub fn view(&self) -> EntryView {
        EntryView {
            source: self.source,
            has_staple: self.has_staple(),
            status: self.status,
            this_update: self.this_update.get(),
            next_update: self.next_update.get(),
            next_refresh: self.next_refresh.get(),
            last_fetch: self.last_fetch.get(),
            last_result: self.last_result,
            last_error: {
                let mut b = [0; LAST_ERROR_LEN];
                b[..self.last_error().len()].copy_from_slice(self.last_error());
                b
            },
            last_error_len: self.last_error().len(),
            fetch_ok: self.fetch_ok,
            fetch_failed: self.fetch_failed,
            failures: self.failures,
            stapled: self.stapled,
            unstapled: self.unstapled,
            bytes: self.der_len as usize,
            no_room: self.no_room,
        }
    }

    /// A handshake served this entry's staple (`true`) or none.
    pub fn count_handshake(&mut self, stapled: bool, now: i64) {
        if stapled {
            self.stapled += 1;
        } else {
            self.unstapled += 1;
        }
        if self.dynamic {
            self.last_used = Secs::of(now);
        }
    }

    /// True when a gap (must-staple served without a staple) should be
    /// logged now: at most once per `interval` seconds, by all workers
    /// together.
    pub fn take_gap_log(&mut self, now: i64, interval: i64) -> bool {
        let logged = self.gap_logged.get();
        if logged != 0 && now - logged < interval {
            return false;
        }
        self.gap_logged = Secs::of(now);
        true
    }

    /// Takes the fetch lease for `me` until `until` when the entry is due
    /// and no live worker holds it (`may_take` decides about the holder).
    /// Returns the worker the lease was taken over from, if any.
    pub fn take_lease(
        &mut self,
        me: i32,
        now: i64,
        until: i64,
        may_take: impl FnOnce(i32, i64) -> bool,
    ) -> Result<Option<i32>, NotYet> {
        if self.next_refresh.get() > now {
            return Err(NotYet(self.next_refresh.get()));
        }
        if !may_take(self.lease_pid, self.lease_until.get()) {
            return Err(NotYet(self.lease_until.get()));
        }
        let previous = std::mem::replace(&mut self.lease_pid, me);
        self.lease_until = Secs::of(until);
        Ok((previous != 0 && previous != me).then_some(previous))
    }

    /// A fetch ended at `now`: the lease is free again.
    pub fn end_fetch(&mut self, now: i64) {
        self.lease_pid = 0;
        self.lease_until = Secs(0);
        self.last_fetch = Secs::of(now);
        self.settled_at = Secs::of(now);
    }

    /// A refresh on demand: the staple becomes due now, unless a fetch of
    /// it is under way or one ended (or another instance's staple was
    /// taken) less than `min_interval` seconds ago.
    pub fn request_refresh(&mut self, now: i64, min_interval: i64) -> Result<(), RefreshSkipped> {
        if self.lease_pid != 0 && self.lease_until.get() > now {
            return Err(RefreshSkipped::InFlight);
        }
        let settled = self.settled_at.get();
        let ago = now - settled;
        if min_interval > 0 && settled != 0 && ago < min_interval {
            return Err(RefreshSkipped::Recent { ago: ago.max(0) });
        }
        self.next_refresh = Secs::of(self.next_refresh.get().min(now));
        Ok(())
    }

    /// A handshake found no staple to serve. The first time it finds the
    /// staple held past its nextUpdate (the clock jumped, or refreshes
    /// failed until then), the staple is due now and the fetch task is to
    /// be woken: returns how long ago it expired. Once per staple: after
    /// that, failed fetches back off as usual.
    pub fn expired_seen(&mut self, now: i64) -> Option<i64> {
        let next_update = self.next_update.get();
        let expired = self.has_staple() && next_update != 0 && next_update <= now;
        if !expired || self.expiry_noted == self.next_update {
            return None;
        }
        self.expiry_noted = self.next_update;
        self.next_refresh = Secs::of(self.next_refresh.get().min(now));
        Some(now - next_update)
    }

    /// The lease is given back without a fetch (another instance fetches
    /// it); look again at `next_refresh`.
    pub fn release_lease(&mut self, next_refresh: i64) {
        self.lease_pid = 0;
        self.lease_until = Secs(0);
        self.next_refresh = Secs::of(next_refresh);
    }

    /// The thisUpdate of the staple held, if there is one.
    pub fn staple_this_update(&self) -> Option<i64> {
        self.has_staple().then_some(self.this_update.get())
    }

    pub fn set_next_refresh(&mut self, at: i64) {
        self.next_refresh = Secs::of(at);
    }

    /// Whether `resp` (a revocation) is news: another status or another
    /// response than the one recorded.
    pub fn is_new_revocation(&self, resp: &CheckedResponse) -> bool {
        self.status != CertStatus::Revoked || self.this_update != Secs::of(resp.this_update)
    }

    /// A fetch failed; `schedule(failures, kept)` says when to try again,
    /// `kept` being the nextUpdate (0: none) of a staple still served.
    /// Returns that `kept`. (`EntryMut::record_failure` keeps the cause.)
    fn note_failure(&mut self, now: i64, schedule: impl FnOnce(u32, Option<i64>) -> i64) -> Option<i64> {
        self.failures = self.failures.saturating_add(1);
        self.fetch_failed += 1;
        self.last_result = FetchResult::Failed;
        let kept = self.servable(now).map(|_| self.next_update.get());
        self.next_refresh = Secs::of(schedule(self.failures, kept.filter(|&n| n != 0)));
        kept
    }

    pub fn next_refresh(&self) -> i64 {
        self.next_refresh.get()
    }
}

/// An entry of a locked zone, with the zone's allocator at hand: what
/// replaces or drops its staple. Lives no longer than the lock's borrow.
pub struct EntryMut<'a, M: Memory = Slab> {
    pub(super) entry: &'a mut Entry,
    pub(super) mem: M,
}

impl<M: Memory> std::ops::Deref for EntryMut<'_, M> {
    type Target = Entry;

    fn deref(&self) -> &Entry {
        self.entry
    }
}

impl<M: Memory> std::ops::DerefMut for EntryMut<'_, M> {
    fn deref_mut(&mut self) -> &mut Entry {
        self.entry
    }
}

impl<M: Memory> EntryMut<'_, M> {
    /// A handshake served this entry's staple (`true`) or none; a dynamic
    /// entry becomes the most recently used.
    pub fn count_handshake(&mut self, stapled: bool, now: i64) {
        self.entry.count_handshake(stapled, now);
        self.touch(now);
    }

    /// A dynamic entry was used now: the head of the eviction order.
    pub(super) fn touch(&mut self, now: i64) {
        if !self.entry.dynamic {
            return;
        }
        self.entry.last_used = Secs::of(now);
        // SAFETY: the lock is held while this EntryMut lives; the root is
        // the zone's, the entry one of its live entries.
        unsafe {
            if let Some(root) = super::root_of(self.mem) {
                super::lru::to_front(&mut root.lru, &mut self.entry.lru);
            }
        }
    }

    fn free_der(&mut self) {
        // SAFETY: der is null or a chain `chunks::write` made on this
        // memory; the lock is held for as long as this EntryMut lives.
        unsafe { chunks::free(self.mem, self.entry.der) };
        self.entry.der = ptr::null_mut();
        self.entry.der_len = 0;
    }

    /// Replaces the staple: its first `HEAD` bytes in the entry, the rest
    /// in pieces. On failure (no room) the previous staple stays.
    pub fn store(&mut self, resp: &CheckedResponse, source: StapleSource, now: i64) -> Result<(), ZoneFull> {
        let Ok(len) = u32::try_from(resp.der.len()) else {
            return Err(ZoneFull);
        };
        if len == 0 {
            return Err(ZoneFull);
        }
        let (head, rest) = resp.der.split_at(resp.der.len().min(HEAD));
        let p = if rest.is_empty() {
            ptr::null_mut()
        } else {
            chunks::write(self.mem, rest).ok_or(ZoneFull)?
        };
        self.free_der();
        let e = &mut *self.entry;
        e.head[..head.len()].copy_from_slice(head);
        e.der = p;
        e.der_len = len;
        e.no_room = false;
        e.source = source;
        e.status = resp.status;
        e.this_update = Secs::of(resp.this_update);
        e.next_update = Secs::of(resp.next_update.unwrap_or(0));
        e.stored_at = Secs::of(now);
        // SAFETY: as above.
        unsafe { bump_generation(self.mem) };
        Ok(())
    }

    /// Keeps `msg` (cut to LAST_ERROR_LEN bytes) as the last error; an
    /// empty one frees it. When the zone has no room for it, there is none.
    fn set_last_error(&mut self, msg: &str) {
        if !self.entry.last_error.is_null() {
            // SAFETY: an allocation of this memory, owned by the entry; the
            // lock is held.
            unsafe { self.mem.free(self.entry.last_error) };
            self.entry.last_error = ptr::null_mut();
        }
        let b = &msg.as_bytes()[..msg.len().min(LAST_ERROR_LEN)];
        if b.is_empty() {
            return;
        }
        if let Some(p) = self.mem.alloc(1 + b.len()) {
            // SAFETY: p has room for the length byte and the bytes; b.len()
            // <= LAST_ERROR_LEN < 256.
            unsafe {
                *p = b.len() as u8;
                ptr::copy_nonoverlapping(b.as_ptr(), p.add(1), b.len());
            }
            self.entry.last_error = p;
        }
    }

    /// A fetch failed with `cause`; `schedule(failures, kept)` says when to
    /// try again, `kept` being the nextUpdate (0: none) of a staple still
    /// served. Returns that `kept`.
    pub fn record_failure(
        &mut self,
        cause: &str,
        now: i64,
        schedule: impl FnOnce(u32, Option<i64>) -> i64,
    ) -> Option<i64> {
        self.set_last_error(cause);
        self.entry.note_failure(now, schedule)
    }

    /// A fetched staple found no room in the zone (after `record_failure`).
    pub fn mark_no_room(&mut self) {
        self.entry.no_room = true;
    }

    /// Frees everything the entry holds (before the entry itself goes).
    pub(super) fn release_all(&mut self) {
        self.free_der();
        self.set_last_error("");
    }

    /// Drops the staple (a removed file).
    pub fn clear(&mut self) {
        self.free_der();
        self.entry.source = StapleSource::None;
        // SAFETY: the lock is held for as long as this EntryMut lives.
        unsafe { bump_generation(self.mem) };
    }

    /// A fetch brought `resp`: it becomes the staple; the next fetch is at
    /// `next_refresh`. On failure (no room) nothing changes.
    pub fn record_fetched(
        &mut self,
        resp: &CheckedResponse,
        now: i64,
        next_refresh: i64,
    ) -> Result<(), ZoneFull> {
        self.store(resp, StapleSource::Fetched, now)?;
        let e = &mut *self.entry;
        e.last_result = FetchResult::Ok;
        e.fetch_ok += 1;
        e.failures = 0;
        e.next_refresh = Secs::of(next_refresh);
        self.set_last_error("");
        Ok(())
    }

    /// Another instance fetched `resp` (found in a shared store): it
    /// becomes the staple, without a fetch of ours; the lease is free.
    pub fn record_shared(
        &mut self,
        resp: &CheckedResponse,
        now: i64,
        next_refresh: i64,
    ) -> Result<(), ZoneFull> {
        self.store(resp, StapleSource::Store, now)?;
        let e = &mut *self.entry;
        e.failures = 0;
        e.settled_at = Secs::of(now);
        e.release_lease(next_refresh);
        self.set_last_error("");
        Ok(())
    }

    /// A fetch said the certificate is revoked (and revoked responses are
    /// not served): the staple goes.
    pub fn record_revoked(&mut self, resp: &CheckedResponse, next_refresh: i64) {
        self.clear();
        let e = &mut *self.entry;
        e.last_result = FetchResult::Revoked;
        e.status = CertStatus::Revoked;
        e.this_update = Secs::of(resp.this_update);
        e.next_update = Secs::of(resp.next_update.unwrap_or(0));
        e.fetch_ok += 1;
        e.failures = 0;
        e.next_refresh = Secs::of(next_refresh);
        self.set_last_error("certificate is revoked");
    }
}

#[cfg(test)]
mod tests;
