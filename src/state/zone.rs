//! The shared-memory zone: one slab pool, one red-black tree of entries
//! keyed by the staple id (see `StapleKey`). Entries hold no
//! pointers into worker memory, so every worker, and the next cycle after a
//! reload, reads them alike.
//!
//! Locking: the slab pool's own `ngx_shmtx`. When a worker dies holding it,
//! the master force-unlocks it (`ngx_unlock_mutexes`); a spinlock of our own
//! would stay locked forever.

use std::mem;
use std::ptr::{self, NonNull};

use nginx_sys::{
    ngx_rbtree_delete, ngx_rbtree_insert, ngx_rbtree_key_t, ngx_rbtree_node_t, ngx_rbtree_t, ngx_shmtx_lock,
    ngx_shmtx_unlock, ngx_slab_alloc_locked, ngx_slab_free_locked, ngx_slab_init, ngx_slab_pool_t,
};

use crate::ocsp::response::{CertStatus, CheckedResponse};
use crate::state::certificate::StapleKey;

/// Changes whenever `Root` or `Entry` change layout; a reused zone stamped
/// with another value is wiped and started afresh.
const LAYOUT_MAGIC: u64 = 0x5354_4150_4c45_0003;

pub const LAST_ERROR_LEN: usize = 120;

/// What one entry takes in the slab pool (its size rounded up to the slot
/// the allocator gives it).
pub const ENTRY_SLOT: usize = mem::size_of::<Entry>().next_power_of_two();
/// What a staple is reckoned to take before it is fetched: the 2 KB slot
/// of a response of 1 to 2 KB, the common size.
pub const STAPLE_ESTIMATE: usize = 2048;
/// The root, the slab pool's own header and page rounding.
const ZONE_OVERHEAD: usize = 64 * 1024;

/// About how large a zone must be for `staples` staples.
pub fn size_for(staples: usize) -> usize {
    staples
        .saturating_mul(ENTRY_SLOT + STAPLE_ESTIMATE)
        .saturating_add(ZONE_OVERHEAD)
}

/// Decides which new staples a zone has room for, counting whole pages as
/// the slab allocator uses them: entries and staples of each slot size
/// share pages of their own, so n of them take ceil(n * slot / page) pages.
pub struct RoomPlan {
    page: usize,
    free_pages: usize,
    entries: usize,
    /// (slot size, count) of the staples planned.
    staples: Vec<(usize, usize)>,
}

impl RoomPlan {
    pub fn new(free_bytes: usize, page: usize) -> Self {
        let page = page.max(1);
        RoomPlan {
            page,
            free_pages: free_bytes / page,
            entries: 0,
            staples: Vec::new(),
        }
    }

    fn pages(&self, entries: usize, staples: &[(usize, usize)]) -> usize {
        let pages_of = |n: usize, slot: usize| n.saturating_mul(slot).div_ceil(self.page);
        staples
            .iter()
            .fold(pages_of(entries, ENTRY_SLOT), |sum, &(slot, n)| {
                sum + pages_of(n, slot)
            })
    }

    /// Plans one more entry with a staple of `staple_bytes`; false (and
    /// nothing planned) when it would not fit.
    pub fn try_add(&mut self, staple_bytes: usize) -> bool {
        let slot = slot_for(staple_bytes);
        let mut staples = self.staples.clone();
        match staples.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, n)) => *n += 1,
            None => staples.push((slot, 1)),
        }
        if self.pages(self.entries + 1, &staples) > self.free_pages {
            return false;
        }
        self.entries += 1;
        self.staples = staples;
        true
    }
}

/// The slot the slab allocator gives `len` bytes: a power of two, at least
/// 8 bytes; whole pages above half a page.
pub fn slot_for(len: usize) -> usize {
    len.max(8).next_power_of_two()
}

#[repr(C)]
struct Root {
    magic: u64,
    /// Bumped on every change of a staple, for per-worker caches.
    generation: u64,
    /// Bumped by every configuration that (re)initialises the zone; entries
    /// not marked with the current value belong to removed certificates.
    config_seq: u64,
    entries: usize,
    /// Entries of certificates registered while serving (variables).
    dynamic_entries: usize,
    /// Non-zero once "the zone is full" was logged at `crit` in this
    /// configuration (later failures are logged at `debug`).
    full_logged: usize,
    tree: ngx_rbtree_t,
    sentinel: ngx_rbtree_node_t,
}

/// Where the staple currently held came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StapleSource {
    None = 0,
    File = 1,
    Fetched = 2,
    Store = 3,
}

#[repr(C)]
pub struct Entry {
    node: ngx_rbtree_node_t,
    pub key: StapleKey,
    der: *mut u8,
    der_len: usize,
    pub source: StapleSource,
    pub status: CertStatus,
    pub this_update: i64,
    /// 0 when the response has no nextUpdate.
    pub next_update: i64,
    pub stored_at: i64,
    /// Fetch scheduling and the lease that lets exactly one worker fetch.
    pub next_refresh: i64,
    pub failures: u32,
    pub lease_pid: i32,
    pub lease_until: i64,
    pub fetch_ok: u64,
    pub fetch_failed: u64,
    pub stapled: u64,
    pub unstapled: u64,
    /// When the last fetch ended, and how.
    pub last_fetch: i64,
    pub last_result: FetchResult,
    /// Registered by a handshake (a certificate loaded by variables), not
    /// by the configuration; evicted least recently used first.
    dynamic: bool,
    /// Last handshake that asked for it (dynamic entries' LRU order).
    pub last_used: i64,
    /// When "must-staple certificate served without a staple" was last
    /// logged, so that all workers together log it once a minute.
    pub gap_logged: i64,
    last_error: [u8; LAST_ERROR_LEN],
    last_error_len: usize,
    config_seq: u64,
}

/// How the last fetch of an entry ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FetchResult {
    None = 0,
    Ok = 1,
    Failed = 2,
    Revoked = 3,
}

impl FetchResult {
    pub fn as_str(self) -> &'static str {
        match self {
            FetchResult::None => "none",
            FetchResult::Ok => "ok",
            FetchResult::Failed => "failed",
            FetchResult::Revoked => "revoked",
        }
    }
}

impl Entry {
    fn new(key: StapleKey, config_seq: u64) -> Self {
        // SAFETY: an all-zero rbtree node is what nginx starts nodes from.
        let node: ngx_rbtree_node_t = unsafe { mem::zeroed() };
        Entry {
            node,
            key,
            der: ptr::null_mut(),
            der_len: 0,
            source: StapleSource::None,
            status: CertStatus::Unknown,
            this_update: 0,
            next_update: 0,
            stored_at: 0,
            next_refresh: 0,
            failures: 0,
            lease_pid: 0,
            lease_until: 0,
            fetch_ok: 0,
            fetch_failed: 0,
            stapled: 0,
            unstapled: 0,
            last_fetch: 0,
            last_result: FetchResult::None,
            dynamic: false,
            last_used: 0,
            gap_logged: 0,
            last_error: [0; LAST_ERROR_LEN],
            last_error_len: 0,
            config_seq,
        }
    }

    /// The staple, if there is one that may be served at `now`: never at or
    /// after its nextUpdate. (Whether a revoked response may be a staple at
    /// all is decided before it is stored.)
    pub fn servable(&self, now: i64) -> Option<&[u8]> {
        if self.der.is_null() || self.der_len == 0 {
            return None;
        }
        if self.next_update != 0 && self.next_update <= now {
            return None;
        }
        // SAFETY: der/der_len describe a live slab allocation owned by this
        // entry; it is only read under the zone lock.
        Some(unsafe { std::slice::from_raw_parts(self.der, self.der_len) })
    }

    pub fn is_dynamic(&self) -> bool {
        self.dynamic
    }

    /// The staple's DER, whatever its validity (for the disk store).
    pub fn der(&self) -> Option<&[u8]> {
        if self.der.is_null() || self.der_len == 0 {
            return None;
        }
        // SAFETY: as in `servable`.
        Some(unsafe { std::slice::from_raw_parts(self.der, self.der_len) })
    }

    pub fn last_error(&self) -> &[u8] {
        &self.last_error[..self.last_error_len.min(LAST_ERROR_LEN)]
    }

    pub fn set_last_error(&mut self, msg: &str) {
        let b = msg.as_bytes();
        let n = b.len().min(LAST_ERROR_LEN);
        self.last_error[..n].copy_from_slice(&b[..n]);
        self.last_error_len = n;
    }
}

fn tree_key(key: &StapleKey) -> ngx_rbtree_key_t {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key.0[..8]);
    u64::from_le_bytes(b) as ngx_rbtree_key_t
}

/// Orders nodes by (tree key, full staple id), so that lookups are
/// exact even if two ids share their first 8 bytes.
unsafe extern "C" fn insert_entry(
    temp: *mut ngx_rbtree_node_t,
    node: *mut ngx_rbtree_node_t,
    sentinel: *mut ngx_rbtree_node_t,
) {
    // SAFETY: nginx passes a valid tree, its sentinel and a new node.
    crate::module::guard::guard((), || unsafe { insert_entry_inner(temp, node, sentinel) })
}

/// # Safety
/// `temp` is the root of a valid tree with `sentinel`, whose nodes (and
/// `node`) are each the first field of an `Entry`.
unsafe fn insert_entry_inner(
    mut temp: *mut ngx_rbtree_node_t,
    node: *mut ngx_rbtree_node_t,
    sentinel: *mut ngx_rbtree_node_t,
) {
    // SAFETY: the contract above: every pointer followed is a node of the
    // tree or the new node, each the first field of an `Entry`.
    unsafe {
        loop {
            let p = if (*node).key != (*temp).key {
                if (*node).key < (*temp).key {
                    &mut (*temp).left
                } else {
                    &mut (*temp).right
                }
            } else {
                let a = &(*(node as *mut Entry)).key;
                let b = &(*(temp as *mut Entry)).key;
                if a.0 < b.0 {
                    &mut (*temp).left
                } else {
                    &mut (*temp).right
                }
            };
            if *p == sentinel {
                *p = node;
                break;
            }
            temp = *p;
        }
        (*node).parent = temp;
        (*node).left = sentinel;
        (*node).right = sentinel;
        (*node).color = 1; // red
    }
}

/// A zone as seen by one process. Copyable; the memory is shared.
#[derive(Clone, Copy)]
pub struct Zone {
    pool: NonNull<ngx_slab_pool_t>,
}

// SAFETY: nginx processes are single-threaded; the zone is locked across
// processes by the slab mutex.
unsafe impl Send for Zone {}
unsafe impl Sync for Zone {}

/// Zone usage, for logs and the status page.
pub struct ZoneUsage {
    pub size: usize,
    pub free_pages: usize,
    pub entries: usize,
}

impl ZoneUsage {
    /// Bytes not in free pages (slab bookkeeping included).
    pub fn used(&self) -> usize {
        // SAFETY: nginx sets ngx_pagesize at startup.
        let page = unsafe { nginx_sys::ngx_pagesize };
        self.size.saturating_sub(self.free_pages.saturating_mul(page))
    }
}

impl Zone {
    /// # Safety
    /// `addr` is the start of an initialised zone (its slab pool).
    pub unsafe fn from_addr(addr: *mut u8) -> Option<Zone> {
        NonNull::new(addr.cast()).map(|pool| Zone { pool })
    }

    pub fn lock(&self) -> Locked<'_> {
        // SAFETY: the pool is live for the process' lifetime of the cycle.
        unsafe { ngx_shmtx_lock(&mut (*self.pool.as_ptr()).mutex) };
        Locked { zone: self }
    }
}

pub struct Locked<'a> {
    zone: &'a Zone,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: we hold the lock taken in `Zone::lock`.
        unsafe { ngx_shmtx_unlock(&mut (*self.zone.pool.as_ptr()).mutex) };
    }
}

/// What `Locked::prepare` did to the zone.
pub enum Prepared {
    Fresh,
    Reused,
    Wiped,
}

/// The zone is full: nothing more could be stored.
#[derive(Debug, thiserror::Error)]
#[error("the shared zone is full")]
pub struct ZoneFull;

impl Locked<'_> {
    fn pool(&self) -> *mut ngx_slab_pool_t {
        self.zone.pool.as_ptr()
    }

    fn root(&mut self) -> Option<&mut Root> {
        // SAFETY: `data` is null or our Root, set by `prepare` under the lock.
        unsafe {
            let root = (*self.pool()).data as *mut Root;
            if root.is_null() || (*root).magic != LAYOUT_MAGIC {
                return None;
            }
            Some(&mut *root)
        }
    }

    fn alloc(&self, size: usize) -> Option<*mut u8> {
        // SAFETY: we hold the slab lock.
        let p = unsafe { ngx_slab_alloc_locked(self.pool(), size) } as *mut u8;
        (!p.is_null()).then_some(p)
    }

    fn free(&self, p: *mut u8) {
        // SAFETY: p came from `alloc` on this pool; we hold the lock.
        unsafe { ngx_slab_free_locked(self.pool(), p.cast()) }
    }

    /// Makes the zone usable by a new configuration: keeps the tree of a
    /// previous cycle when its layout matches, starts afresh otherwise, and
    /// returns the sequence number entries of this configuration carry.
    pub fn prepare(&mut self) -> Result<(Prepared, u64), ZoneFull> {
        // SAFETY: we hold the lock; data is null or was set by us.
        let (state, root) = unsafe {
            let pool = self.pool();
            let old = (*pool).data as *mut Root;
            let state = if old.is_null() {
                Prepared::Fresh
            } else if (*old).magic == LAYOUT_MAGIC {
                Prepared::Reused
            } else {
                ngx_slab_init(pool);
                (*pool).data = ptr::null_mut();
                Prepared::Wiped
            };
            if (*pool).data.is_null() {
                let root = self.alloc(mem::size_of::<Root>()).ok_or(ZoneFull)? as *mut Root;
                ptr::write_bytes(root, 0, 1);
                (*root).magic = LAYOUT_MAGIC;
                nginx_sys::ngx_rbtree_init(&mut (*root).tree, &mut (*root).sentinel, Some(insert_entry));
                (*pool).data = root.cast();
            }
            (state, &mut *((*pool).data as *mut Root))
        };
        // The insert function lives in this module's code: point the tree
        // at this load of it.
        root.tree.insert = Some(insert_entry);
        root.config_seq += 1;
        root.full_logged = 0;
        // The module says when the zone is full, once, with the size it
        // needs; the slab pool's own "ngx_slab_alloc() failed: no memory"
        // at every failed allocation would only repeat it.
        // SAFETY: we hold the lock.
        unsafe { (*self.pool()).set_log_nomem(0) };
        Ok((state, root.config_seq))
    }

    pub fn find(&mut self, key: &StapleKey) -> Option<&mut Entry> {
        let root = self.root()?;
        let k = tree_key(key);
        let sentinel = root.tree.sentinel;
        let mut node = root.tree.root;
        // SAFETY: walking a valid tree under the lock; nodes are Entries.
        unsafe {
            while !node.is_null() && node != sentinel {
                let e = &mut *(node as *mut Entry);
                node = if k != (*node).key {
                    if k < (*node).key {
                        (*node).left
                    } else {
                        (*node).right
                    }
                } else if key.0 == e.key.0 {
                    return Some(e);
                } else if key.0 < e.key.0 {
                    (*node).left
                } else {
                    (*node).right
                };
            }
        }
        None
    }

    /// The entry for `key`, created if missing, marked as part of the
    /// configuration `seq`.
    pub fn register(&mut self, key: &StapleKey, seq: u64) -> Result<&mut Entry, ZoneFull> {
        if let Some(e) = self.find(key) {
            e.config_seq = seq;
            // Now configured: no longer subject to eviction.
            if std::mem::replace(&mut e.dynamic, false) {
                if let Some(root) = self.root() {
                    root.dynamic_entries -= 1;
                }
            }
            // Found again to return it (the borrow above ends first).
            return self.find(key).ok_or(ZoneFull);
        }
        let root = self.root().ok_or(ZoneFull)? as *mut Root;
        let p = self.alloc(mem::size_of::<Entry>()).ok_or(ZoneFull)? as *mut Entry;
        // SAFETY: fresh allocation of the right size; tree and root are ours.
        unsafe {
            ptr::write(p, Entry::new(*key, seq));
            (*p).node.key = tree_key(key);
            ngx_rbtree_insert(&mut (*root).tree, &mut (*p).node);
            (*root).entries += 1;
            Ok(&mut *p)
        }
    }

    /// Every entry, in tree order (for sweeps and the status page).
    fn entries(&mut self) -> Vec<*mut Entry> {
        let Some(root) = self.root() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // SAFETY: walking a valid tree under the lock.
        unsafe {
            let sentinel = root.tree.sentinel;
            let mut stack = vec![root.tree.root];
            while let Some(n) = stack.pop() {
                if n.is_null() || n == sentinel {
                    continue;
                }
                out.push(n as *mut Entry);
                stack.push((*n).left);
                stack.push((*n).right);
            }
        }
        out
    }

    /// Calls `f` with every entry.
    pub fn for_each(&mut self, mut f: impl FnMut(&Entry)) {
        for e in self.entries() {
            // SAFETY: entries stay allocated while the lock is held.
            f(unsafe { &*e });
        }
    }

    /// Unlinks and frees one entry.
    ///
    /// # Safety
    /// `e` is an entry of this zone's tree; the lock is held.
    unsafe fn remove(&mut self, e: *mut Entry) {
        let Some(root) = self.root() else { return };
        let root = root as *mut Root;
        // SAFETY: the contract above; `root` is the zone's live root.
        unsafe {
            ngx_rbtree_delete(&mut (*root).tree, &mut (*e).node);
            (*root).entries -= 1;
            if (*e).dynamic {
                (*root).dynamic_entries -= 1;
            }
            if !(*e).der.is_null() {
                self.free((*e).der);
            }
        }
        self.free(e.cast());
    }

    /// Frees the entries no configuration since `seq` registered. Entries
    /// of certificates loaded by variables stay (bounded by their maximum):
    /// the next configuration may well serve them again.
    pub fn sweep(&mut self, seq: u64) -> usize {
        // Collect first, then delete, so the walk never sees a
        // half-rebalanced tree.
        // SAFETY: entries stay allocated while the lock is held.
        let stale: Vec<_> = self
            .entries()
            .into_iter()
            .filter(|&e| unsafe { !(*e).dynamic && (*e).config_seq != seq })
            .collect();
        for &e in &stale {
            // SAFETY: an entry of this tree, lock held.
            unsafe { self.remove(e) };
        }
        stale.len()
    }

    pub fn dynamic_entries(&mut self) -> usize {
        self.root().map_or(0, |r| r.dynamic_entries)
    }

    /// Evicts least recently used dynamic entries until at most `max` are
    /// left; returns how many went.
    pub fn trim_dynamic(&mut self, max: usize) -> usize {
        let mut evicted = 0;
        while self.dynamic_entries() > max {
            // SAFETY: entries stay allocated while the lock is held.
            let oldest = self
                .entries()
                .into_iter()
                .filter(|&e| unsafe { (*e).dynamic })
                .min_by_key(|&e| unsafe { (*e).last_used });
            let Some(e) = oldest else { break };
            // SAFETY: an entry of this tree, lock held.
            unsafe { self.remove(e) };
            evicted += 1;
        }
        evicted
    }

    /// The entry of a certificate met during a handshake (loaded by
    /// variables), created if missing; at most `max` such entries exist,
    /// the least recently used is evicted to make room. `created` tells
    /// whether it is new.
    pub fn register_dynamic(
        &mut self,
        key: &StapleKey,
        now: i64,
        max: usize,
    ) -> Result<(&mut Entry, bool), ZoneFull> {
        let known = self.find(key).map(|e| e.last_used = now).is_some();
        if known {
            // Found again to return it (the borrow above ends first).
            return self.find(key).map(|e| (e, false)).ok_or(ZoneFull);
        }
        if max == 0 {
            return Err(ZoneFull);
        }
        self.trim_dynamic(max - 1);
        let root = self.root().ok_or(ZoneFull)? as *mut Root;
        let p = self.alloc(mem::size_of::<Entry>()).ok_or(ZoneFull)? as *mut Entry;
        // SAFETY: fresh allocation of the right size; tree and root are ours.
        unsafe {
            ptr::write(p, Entry::new(*key, (*root).config_seq));
            (*p).node.key = tree_key(key);
            (*p).dynamic = true;
            (*p).last_used = now;
            ngx_rbtree_insert(&mut (*root).tree, &mut (*p).node);
            (*root).entries += 1;
            (*root).dynamic_entries += 1;
            Ok((&mut *p, true))
        }
    }

    /// Replaces the entry's staple. On failure the previous staple stays.
    pub fn store(
        &mut self,
        entry: &mut Entry,
        resp: &CheckedResponse,
        source: StapleSource,
        now: i64,
    ) -> Result<(), ZoneFull> {
        let len = resp.der.len();
        let p = self.alloc(len.max(1)).ok_or(ZoneFull)?;
        // SAFETY: p has room for len bytes.
        unsafe { ptr::copy_nonoverlapping(resp.der.as_ptr(), p, len) };
        if !entry.der.is_null() {
            self.free(entry.der);
        }
        entry.der = p;
        entry.der_len = len;
        entry.source = source;
        entry.status = resp.status;
        entry.this_update = resp.this_update;
        entry.next_update = resp.next_update.unwrap_or(0);
        entry.stored_at = now;
        self.bump();
        Ok(())
    }

    /// Drops the entry's staple (a revoked certificate, a removed file).
    pub fn clear(&mut self, entry: &mut Entry) {
        if !entry.der.is_null() {
            self.free(entry.der);
        }
        entry.der = ptr::null_mut();
        entry.der_len = 0;
        entry.source = StapleSource::None;
        self.bump();
    }

    fn bump(&mut self) {
        if let Some(root) = self.root() {
            root.generation = root.generation.wrapping_add(1);
        }
    }

    /// True the first time it is called in this configuration (after
    /// `prepare`): the zone being full is logged at `crit` once per
    /// configuration, by whichever process meets it first.
    pub fn take_full_warning(&mut self) -> bool {
        match self.root() {
            Some(root) if root.full_logged == 0 => {
                root.full_logged = 1;
                true
            }
            _ => false,
        }
    }

    /// A plan for new entries in the zone's free pages.
    pub fn room_plan(&mut self) -> RoomPlan {
        // SAFETY: reading a pool field under the lock; nginx sets
        // ngx_pagesize at startup.
        unsafe {
            let page = nginx_sys::ngx_pagesize;
            RoomPlan::new((*self.pool()).pfree.saturating_mul(page), page)
        }
    }

    pub fn usage(&mut self) -> ZoneUsage {
        let entries = self.root().map_or(0, |r| r.entries);
        // SAFETY: reading pool fields under the lock.
        let pool = unsafe { &*self.pool() };
        ZoneUsage {
            size: (pool.end as usize).saturating_sub(pool as *const _ as usize),
            free_pages: pool.pfree,
            entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{slot_for, RoomPlan, ENTRY_SLOT};

    #[test]
    fn slots() {
        assert_eq!(slot_for(0), 8);
        assert_eq!(slot_for(588), 1024);
        assert_eq!(slot_for(1300), 2048);
        assert_eq!(slot_for(2049), 4096);
    }

    #[test]
    fn room_counts_whole_pages() {
        let page = 4096;
        let per_page = page / ENTRY_SLOT;
        // Six free pages: entries share one page while they fit in it;
        // staples of 2 KB take half a page each.
        let mut plan = RoomPlan::new(6 * page, page);
        let mut n: usize = 0;
        while plan.try_add(1300) {
            n += 1;
        }
        // n entries take ceil(n / per_page) pages, n staples ceil(n / 2).
        assert!(n.div_ceil(per_page) + n.div_ceil(2) <= 6);
        assert!((n + 1).div_ceil(per_page) + (n + 1).div_ceil(2) > 6);
        // A staple of another size class needs a page of its own.
        let mut plan = RoomPlan::new(2 * page, page);
        assert!(plan.try_add(1300));
        assert!(!plan.try_add(3000));
        assert!(plan.try_add(1300));
        // Nothing fits in no room.
        assert!(!RoomPlan::new(0, page).try_add(1));
    }
}
