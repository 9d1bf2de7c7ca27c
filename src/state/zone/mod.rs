//! The shared-memory zone: one slab pool, one red-black tree of entries
//! keyed by the staple id (see `StapleKey`). Entries hold no
//! pointers into worker memory, so every worker, and the next cycle after a
//! reload, reads them alike.
//!
//! Locking: the slab pool's own `ngx_shmtx`. When a worker dies holding it,
//! the master force-unlocks it (`ngx_unlock_mutexes`); a spinlock of our own
//! would stay locked forever.
//!
//! The zone's logic reaches its memory through `Memory`: nginx's slab pool
//! (`Slab`) in nginx, plain heap memory in the unit tests (`tests.rs`),
//! which run leases, eviction, sweeps and reuse without nginx.

mod chunks;
mod entry;
mod lru;
mod room;
#[cfg(test)]
mod tests;
mod tree;
mod view;

use std::mem;
use std::ptr::{self, NonNull};

use nginx_sys::{
    ngx_rbtree_delete, ngx_rbtree_insert, ngx_rbtree_node_t, ngx_rbtree_t, ngx_shmtx_lock, ngx_shmtx_unlock,
    ngx_slab_alloc_locked, ngx_slab_free_locked, ngx_slab_init, ngx_slab_pool_t,
};

use crate::state::certificate::StapleKey;
use ngx::collections::rbtree::NgxRbTree;

pub use entry::{Entry, EntryMut, NotYet, RefreshSkipped};
pub use room::{size_for, SizeGuess};
pub use view::{EntryView, StapleSource};
#[cfg(test)]
pub use view::{FetchResult, LAST_ERROR_LEN};

/// Changes whenever `Root` or `Entry` change layout; a reused zone stamped
/// with another value is wiped and started afresh.
const LAYOUT_MAGIC: u64 = 0x5354_4150_4c45_0008;

#[repr(C)]
pub struct Root {
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
    /// Entries of certificates loaded by variables, most recently used
    /// first (`lru`).
    lru: lru::Link,
}

/// What the zone's logic needs from the memory it lives in: a lock, an
/// allocator, the pointer to its root, and the tree's rebalancing insert
/// and delete. Between `lock` and `unlock` no other process changes it.
///
/// # Safety
/// An implementation's `alloc` hands out memory that stays valid and
/// unshared until given to `free`; `data` returns what `set_data` stored
/// (or null); `reset` frees every allocation at once; `tree_insert` and
/// `tree_delete` keep a tree that `tree::find` and `tree_nodes` can walk.
pub unsafe trait Memory: Copy {
    fn lock(self);
    fn unlock(self);
    /// `size` bytes, or `None` when full. The lock is held.
    fn alloc(self, size: usize) -> Option<*mut u8>;
    /// # Safety
    /// `p` came from `alloc` of this memory and is not used again; the lock
    /// is held.
    unsafe fn free(self, p: *mut u8);
    fn data(self) -> *mut Root;
    fn set_data(self, root: *mut Root);
    /// Frees everything: a zone of another layout starts afresh.
    fn reset(self);
    /// The module says when the zone is full, once, with the size it
    /// needs; the slab pool's own "ngx_slab_alloc() failed: no memory" at
    /// every failed allocation would only repeat it.
    fn quiet_when_full(self);
    /// # Safety
    /// `tree` is the root's valid tree, `node` a live entry's node not in it;
    /// the lock is held.
    unsafe fn tree_insert(self, tree: *mut ngx_rbtree_t, node: *mut ngx_rbtree_node_t);
    /// # Safety
    /// `node` is in `tree`, the root's valid tree; the lock is held.
    unsafe fn tree_delete(self, tree: *mut ngx_rbtree_t, node: *mut ngx_rbtree_node_t);
    /// Every node of `tree`, in any order.
    ///
    /// # Safety
    /// `tree` is the root's valid tree; the lock is held.
    unsafe fn tree_nodes(self, tree: *mut ngx_rbtree_t) -> Vec<NonNull<ngx_rbtree_node_t>>;
}

/// nginx's slab pool of a shared zone, with its mutex and its rbtree code.
#[derive(Clone, Copy)]
pub struct Slab(NonNull<ngx_slab_pool_t>);

// SAFETY: the slab pool's allocator, its `data` field, ngx_slab_init and
// nginx's rbtree functions are exactly what the contract names.
unsafe impl Memory for Slab {
    fn lock(self) {
        // SAFETY: the pool is live for the process' lifetime of the cycle.
        unsafe { ngx_shmtx_lock(&mut (*self.0.as_ptr()).mutex) };
    }

    fn unlock(self) {
        // SAFETY: called by `Locked`'s drop, which holds the lock.
        unsafe { ngx_shmtx_unlock(&mut (*self.0.as_ptr()).mutex) };
    }

    fn alloc(self, size: usize) -> Option<*mut u8> {
        // SAFETY: called under the lock (`Locked`).
        let p = unsafe { ngx_slab_alloc_locked(self.0.as_ptr(), size) } as *mut u8;
        (!p.is_null()).then_some(p)
    }

    unsafe fn free(self, p: *mut u8) {
        // SAFETY: the contract above.
        unsafe { ngx_slab_free_locked(self.0.as_ptr(), p.cast()) }
    }

    fn data(self) -> *mut Root {
        // SAFETY: a live pool; `data` is null or our Root.
        unsafe { (*self.0.as_ptr()).data as *mut Root }
    }

    fn set_data(self, root: *mut Root) {
        // SAFETY: a live pool, under the lock.
        unsafe { (*self.0.as_ptr()).data = root.cast() }
    }

    fn reset(self) {
        // SAFETY: a live pool, under the lock; nothing of it is used after.
        unsafe { ngx_slab_init(self.0.as_ptr()) }
    }

    fn quiet_when_full(self) {
        // SAFETY: a live pool, under the lock.
        unsafe { (*self.0.as_ptr()).set_log_nomem(0) };
    }

    unsafe fn tree_insert(self, tree: *mut ngx_rbtree_t, node: *mut ngx_rbtree_node_t) {
        // SAFETY: the contract above.
        unsafe { ngx_rbtree_insert(tree, node) }
    }

    unsafe fn tree_delete(self, tree: *mut ngx_rbtree_t, node: *mut ngx_rbtree_node_t) {
        // SAFETY: the contract above.
        unsafe { ngx_rbtree_delete(tree, node) }
    }

    unsafe fn tree_nodes(self, tree: *mut ngx_rbtree_t) -> Vec<NonNull<ngx_rbtree_node_t>> {
        // ngx's iterator over an nginx rbtree (ngx_rbtree_min, then
        // ngx_rbtree_next), as ngx-rust's own maps walk theirs.
        // SAFETY: the contract above: a valid tree, not changed while the
        // iterator lives (the lock is held and nothing is removed here).
        unsafe { NgxRbTree::<ngx_rbtree_node_t>::from_ptr(tree) }
            .iter()
            .collect()
    }
}

/// A zone as seen by one process. Copyable; the memory is shared.
#[derive(Clone, Copy)]
pub struct Zone<M: Memory = Slab> {
    mem: M,
}

// SAFETY: nginx processes are single-threaded; the zone is locked across
// processes by the slab mutex.
unsafe impl Send for Zone {}
unsafe impl Sync for Zone {}

impl Zone {
    /// # Safety
    /// `addr` is the start of an initialised zone (its slab pool).
    pub unsafe fn from_addr(addr: *mut u8) -> Option<Zone> {
        NonNull::new(addr.cast()).map(|pool| Zone { mem: Slab(pool) })
    }
}

impl<M: Memory> Zone<M> {
    pub fn lock(&self) -> Locked<'_, M> {
        self.mem.lock();
        Locked { zone: self }
    }
}

pub struct Locked<'a, M: Memory = Slab> {
    zone: &'a Zone<M>,
}

impl<M: Memory> Drop for Locked<'_, M> {
    fn drop(&mut self) {
        self.zone.mem.unlock();
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

/// The zone's root, when the memory holds one of this layout.
///
/// # Safety
/// The memory's lock is held; the returned reference is not used after it
/// is released, nor alongside another reference to the root.
unsafe fn root_of<'a, M: Memory>(mem: M) -> Option<&'a mut Root> {
    // SAFETY: `data` is null or our Root, set by `prepare` under the lock.
    unsafe {
        let root = mem.data();
        if root.is_null() || (*root).magic != LAYOUT_MAGIC {
            return None;
        }
        Some(&mut *root)
    }
}

/// Marks a change of a staple, for per-worker caches.
///
/// # Safety
/// As for `root_of`.
unsafe fn bump_generation<M: Memory>(mem: M) {
    // SAFETY: the contract above.
    if let Some(root) = unsafe { root_of(mem) } {
        root.generation = root.generation.wrapping_add(1);
    }
}

impl Locked<'_> {
    fn pool(&self) -> *mut ngx_slab_pool_t {
        self.zone.mem.0.as_ptr()
    }
}

impl<M: Memory> Locked<'_, M> {
    fn root(&mut self) -> Option<&mut Root> {
        // SAFETY: we hold the lock; the root's borrow is tied to `self`.
        unsafe { root_of(self.zone.mem) }
    }

    fn alloc(&self, size: usize) -> Option<*mut u8> {
        self.zone.mem.alloc(size)
    }

    fn free(&self, p: *mut u8) {
        // SAFETY: p came from `alloc` on this memory; we hold the lock.
        unsafe { self.zone.mem.free(p) }
    }

    /// Makes the zone usable by a new configuration: keeps the tree of a
    /// previous cycle when its layout matches, starts afresh otherwise, and
    /// returns the sequence number entries of this configuration carry.
    pub fn prepare(&mut self) -> Result<(Prepared, u64), ZoneFull> {
        let memory = self.zone.mem;
        // SAFETY: we hold the lock; data is null or was set by us.
        let (state, root) = unsafe {
            let old = memory.data();
            let state = if old.is_null() {
                Prepared::Fresh
            } else if (*old).magic == LAYOUT_MAGIC {
                Prepared::Reused
            } else {
                memory.reset();
                memory.set_data(ptr::null_mut());
                Prepared::Wiped
            };
            if memory.data().is_null() {
                let root = self.alloc(mem::size_of::<Root>()).ok_or(ZoneFull)? as *mut Root;
                ptr::write_bytes(root, 0, 1);
                (*root).magic = LAYOUT_MAGIC;
                lru::init(&mut (*root).lru);
                nginx_sys::ngx_rbtree_init(
                    &mut (*root).tree,
                    &mut (*root).sentinel,
                    Some(tree::insert_entry),
                );
                memory.set_data(root);
            }
            (state, &mut *memory.data())
        };
        // The insert function lives in this module's code: point the tree
        // at this load of it.
        root.tree.insert = Some(tree::insert_entry);
        root.config_seq += 1;
        root.full_logged = 0;
        memory.quiet_when_full();
        Ok((state, root.config_seq))
    }

    /// The entry of `key`'s node, as a raw pointer (the caller decides how
    /// long to borrow it).
    fn lookup(&mut self, key: &StapleKey) -> Option<NonNull<Entry>> {
        let root = self.root()?;
        // SAFETY: a valid tree of entries, under the lock.
        unsafe { tree::find(&root.tree, key) }
    }

    fn entry_mut(&mut self, e: NonNull<Entry>) -> EntryMut<'_, M> {
        EntryMut {
            // SAFETY: `e` is an entry of this tree, allocated while the
            // lock is held; the EntryMut borrows the lock mutably, so no
            // other reference into the zone exists while it lives.
            entry: unsafe { &mut *e.as_ptr() },
            mem: self.zone.mem,
        }
    }

    pub fn find(&mut self, key: &StapleKey) -> Option<EntryMut<'_, M>> {
        let e = self.lookup(key)?;
        Some(self.entry_mut(e))
    }

    /// Allocates and links a new entry.
    fn insert(&mut self, key: &StapleKey, dynamic: bool, now: i64) -> Result<NonNull<Entry>, ZoneFull> {
        let root = self.root().ok_or(ZoneFull)? as *mut Root;
        let p = self.alloc(mem::size_of::<Entry>()).ok_or(ZoneFull)? as *mut Entry;
        // SAFETY: fresh allocation of the right size; tree and root are ours
        // and the lock is held.
        unsafe {
            ptr::write(p, Entry::new(*key, (*root).config_seq, dynamic, now));
            (*p).node.key = tree::tree_key(key);
            self.zone.mem.tree_insert(&mut (*root).tree, &mut (*p).node);
            (*root).entries += 1;
            if dynamic {
                (*root).dynamic_entries += 1;
                lru::to_front(&mut (*root).lru, &mut (*p).lru);
            }
        }
        NonNull::new(p).ok_or(ZoneFull)
    }

    /// The entry for `key`, created if missing, marked as part of the
    /// configuration `seq`.
    pub fn register(&mut self, key: &StapleKey, seq: u64) -> Result<EntryMut<'_, M>, ZoneFull> {
        let e = match self.lookup(key) {
            Some(e) => {
                // SAFETY: an entry of this tree, lock held; no other
                // reference to it is live.
                let was_dynamic = unsafe { mem::replace(&mut (*e.as_ptr()).dynamic, false) };
                // Now configured: no longer subject to eviction.
                if was_dynamic {
                    if let Some(root) = self.root() {
                        root.dynamic_entries -= 1;
                    }
                    // SAFETY: as above.
                    unsafe { lru::unlink(&mut (*e.as_ptr()).lru) };
                }
                e
            }
            None => self.insert(key, false, 0)?,
        };
        let e = self.entry_mut(e);
        e.entry.config_seq = seq;
        Ok(e)
    }

    /// Every entry (for sweeps and the status page).
    fn entries(&mut self) -> Vec<*mut Entry> {
        let mem = self.zone.mem;
        match self.root() {
            // SAFETY: the root's valid tree, under the lock; its nodes are
            // the first field of entries (`#[repr(C)]`).
            Some(root) => unsafe { mem.tree_nodes(&mut root.tree) }
                .into_iter()
                .map(|n| n.as_ptr() as *mut Entry)
                .collect(),
            None => Vec::new(),
        }
    }

    /// Calls `f` with every entry of a certificate loaded by variables,
    /// most recently used first: at most `ssl_stapling_dynamic_max`, from
    /// their list, whatever the number of configured staples.
    pub fn for_each_dynamic(&mut self, mut f: impl FnMut(&Entry)) {
        let Some(root) = self.root() else { return };
        // SAFETY: the zone's list, under the lock; it links only entries'
        // `lru` fields, alive while the lock is held.
        unsafe { lru::for_each(&mut root.lru, |l| f(&*Entry::of_lru_link(l))) };
    }

    /// Calls `f` with every entry (the unit tests' count; nginx's paths
    /// never walk the whole zone under the lock).
    #[cfg(test)]
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
            self.zone.mem.tree_delete(&mut (*root).tree, &mut (*e).node);
            (*root).entries -= 1;
            if (*e).dynamic {
                (*root).dynamic_entries -= 1;
            }
            lru::unlink(&mut (*e).lru);
        }
        // SAFETY: as above; the EntryMut frees what it holds with this pool.
        self.entry_mut(unsafe { NonNull::new_unchecked(e) }).release_all();
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
            let Some(root) = self.root() else { break };
            // SAFETY: the zone's root, under the lock: the list's tail is
            // the link of the least recently used dynamic entry (O(1), no
            // walk).
            let Some(last) = (unsafe { lru::tail(&mut root.lru) }) else {
                break;
            };
            // SAFETY: the list links only entries' `lru` fields.
            let e = unsafe { Entry::of_lru_link(last) };
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
    ) -> Result<(EntryMut<'_, M>, bool), ZoneFull> {
        if let Some(e) = self.lookup(key) {
            let mut e = self.entry_mut(e);
            e.touch(now);
            return Ok((e, false));
        }
        if max == 0 {
            return Err(ZoneFull);
        }
        self.trim_dynamic(max - 1);
        let e = self.insert(key, true, now)?;
        Ok((self.entry_mut(e), true))
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
}
