//! The zone's logic on the heap (`Heap`, a `Memory` with a byte budget):
//! registering, exact lookups among ids that share their tree key, sweeps
//! after a reload, reuse and wiping of a zone, least-recently-used eviction
//! of certificates loaded by variables, a full zone, the once-per-
//! configuration "full" warning. nginx's slab pool and rbtree rebalancing
//! are not here: the Perl suite runs them in nginx.

use std::alloc::{alloc, dealloc, Layout};
use std::cell::RefCell;
use std::collections::HashMap;

use nginx_sys::{ngx_rbtree_node_t, ngx_rbtree_t};

use super::*;
use crate::ocsp::response::{CertStatus, CheckedResponse};

struct HeapState {
    budget: usize,
    used: usize,
    blocks: HashMap<usize, Layout>,
    data: *mut Root,
    locked: bool,
    quiet: bool,
}

/// Heap memory for one test (leaked when the test ends).
#[derive(Clone, Copy)]
pub(super) struct Heap(&'static RefCell<HeapState>);

impl Heap {
    pub(super) fn new(budget: usize) -> Heap {
        Heap(Box::leak(Box::new(RefCell::new(HeapState {
            budget,
            used: 0,
            blocks: HashMap::new(),
            data: ptr::null_mut(),
            locked: false,
            quiet: false,
        }))))
    }

    pub(super) fn used(self) -> usize {
        self.0.borrow().used
    }
}

// SAFETY: blocks from the global allocator, freed once each; `reset` frees
// them all; the tree is nginx's rbtree layout, kept as a plain (unbalanced)
// binary search tree through the module's own insert function, which is
// all `tree::find` and `tree_nodes` rely on.
unsafe impl Memory for Heap {
    fn lock(self) {
        let mut s = self.0.borrow_mut();
        assert!(!s.locked, "the zone is locked twice");
        s.locked = true;
    }

    fn unlock(self) {
        let mut s = self.0.borrow_mut();
        assert!(s.locked, "the zone is unlocked without its lock");
        s.locked = false;
    }

    fn alloc(self, size: usize) -> Option<*mut u8> {
        let mut s = self.0.borrow_mut();
        assert!(s.locked, "an allocation without the lock");
        if s.used + size > s.budget {
            return None;
        }
        let layout = Layout::from_size_align(size.max(1), 16).ok()?;
        // SAFETY: a layout of non-zero size.
        let p = unsafe { alloc(layout) };
        assert!(!p.is_null());
        s.used += size;
        s.blocks.insert(p as usize, layout);
        Some(p)
    }

    unsafe fn free(self, p: *mut u8) {
        let mut s = self.0.borrow_mut();
        assert!(s.locked, "a free without the lock");
        let layout = s
            .blocks
            .remove(&(p as usize))
            .expect("a block freed twice or never allocated");
        s.used -= layout.size().min(s.used);
        // SAFETY: allocated above with this layout, freed once.
        unsafe { dealloc(p, layout) };
    }

    fn data(self) -> *mut Root {
        self.0.borrow().data
    }

    fn set_data(self, root: *mut Root) {
        self.0.borrow_mut().data = root;
    }

    fn reset(self) {
        let mut s = self.0.borrow_mut();
        for (p, layout) in s.blocks.drain() {
            // SAFETY: every block still allocated, freed once.
            unsafe { dealloc(p as *mut u8, layout) };
        }
        s.used = 0;
        s.data = ptr::null_mut();
    }

    fn quiet_when_full(self) {
        self.0.borrow_mut().quiet = true;
    }

    unsafe fn tree_insert(self, tree: *mut ngx_rbtree_t, node: *mut ngx_rbtree_node_t) {
        // SAFETY: the contract: a valid tree and a node not in it.
        unsafe {
            let t = &mut *tree;
            if t.root == t.sentinel {
                (*node).parent = ptr::null_mut();
                (*node).left = t.sentinel;
                (*node).right = t.sentinel;
                (*node).color = 0;
                t.root = node;
                return;
            }
            let insert = t.insert.expect("the tree has its insert function");
            insert(t.root, node, t.sentinel);
        }
    }

    unsafe fn tree_delete(self, tree: *mut ngx_rbtree_t, node: *mut ngx_rbtree_node_t) {
        // SAFETY: the contract: `node` is in the valid tree; the others are
        // put back one by one.
        unsafe {
            let rest: Vec<_> = self
                .tree_nodes(tree)
                .into_iter()
                .filter(|&n| n.as_ptr() != node)
                .collect();
            (*tree).root = (*tree).sentinel;
            for n in rest {
                self.tree_insert(tree, n.as_ptr());
            }
        }
    }

    /// A walk of the tree's links (nginx's `ngx_rbtree_next`, which `Slab`
    /// uses through ngx, is not linked into unit tests).
    unsafe fn tree_nodes(self, tree: *mut ngx_rbtree_t) -> Vec<NonNull<ngx_rbtree_node_t>> {
        let mut out = Vec::new();
        // SAFETY: the contract: a valid tree whose links end at its sentinel.
        unsafe {
            let sentinel = (*tree).sentinel;
            let mut stack = vec![(*tree).root];
            while let Some(n) = stack.pop() {
                let Some(nn) = NonNull::new(n).filter(|_| n != sentinel) else {
                    continue;
                };
                out.push(nn);
                stack.push((*n).left);
                stack.push((*n).right);
            }
        }
        out
    }
}

const NOW: i64 = 1_800_000_000;

fn key(first: u8, rest: u8) -> StapleKey {
    let mut k = [rest; 32];
    k[0] = first;
    StapleKey(k)
}

fn response(len: usize) -> CheckedResponse {
    CheckedResponse {
        der: (0..len).map(|i| (i % 251) as u8).collect(),
        status: CertStatus::Good,
        this_update: NOW,
        next_update: Some(NOW + 3600),
    }
}

fn count(z: &mut Locked<'_, Heap>) -> usize {
    let mut n = 0;
    z.for_each(|_| n += 1);
    n
}

fn generation(z: &mut Locked<'_, Heap>) -> u64 {
    z.root().map_or(0, |r| r.generation)
}

#[test]
fn a_configuration_registers_its_certificates_and_finds_each_exactly() {
    let zone = Zone {
        mem: Heap::new(1 << 20),
    };
    let mut z = zone.lock();
    let (state, seq) = z.prepare().unwrap();
    assert!(matches!(state, Prepared::Fresh));
    assert_eq!(seq, 1);
    assert!(
        zone.mem.0.borrow().quiet,
        "the slab pool's own no-memory lines are off"
    );
    // Ids that share their first 8 bytes (the tree key) and differ after.
    let keys: Vec<_> = (0..20).map(|i| key(1, i)).collect();
    for k in &keys {
        z.register(k, seq).unwrap();
    }
    z.register(&keys[3], seq).unwrap();
    assert_eq!(count(&mut z), 20, "registering twice makes one entry");
    for k in &keys {
        assert!(z.find(k).is_some_and(|e| e.key() == *k));
    }
    assert!(z.find(&key(2, 0)).is_none());
}

#[test]
fn a_reload_keeps_the_zone_and_sweeps_what_it_no_longer_configures() {
    let mem = Heap::new(1 << 20);
    let zone = Zone { mem };
    let (a, b, c) = (key(1, 1), key(1, 2), key(9, 9));
    {
        let mut z = zone.lock();
        let (_, seq) = z.prepare().unwrap();
        for k in [&a, &b] {
            z.register(k, seq)
                .unwrap()
                .store(&response(500), StapleSource::Fetched, NOW)
                .unwrap();
        }
        z.register_dynamic(&c, NOW, 10).unwrap();
    }
    let before = mem.used();
    let mut z = zone.lock();
    let (state, seq) = z.prepare().unwrap();
    assert!(matches!(state, Prepared::Reused));
    assert_eq!(seq, 2);
    assert!(
        z.find(&b).is_some_and(|e| e.servable(NOW).is_some()),
        "staples survive a reload"
    );
    z.register(&a, seq).unwrap();
    assert_eq!(z.sweep(seq), 1, "only b went");
    assert!(z.find(&b).is_none());
    assert!(z.find(&a).is_some());
    assert!(
        z.find(&c).is_some(),
        "entries of certificates loaded by variables stay"
    );
    assert_eq!(
        before - mem.used(),
        super::chunks::footprint(super::entry::chain_len(500)) + mem::size_of::<Entry>(),
        "b's entry and staple are freed"
    );
}

#[test]
fn a_zone_of_another_layout_is_wiped() {
    let mem = Heap::new(1 << 20);
    let zone = Zone { mem };
    {
        let mut z = zone.lock();
        let (_, seq) = z.prepare().unwrap();
        z.register(&key(1, 1), seq).unwrap();
        z.root().unwrap().magic = LAYOUT_MAGIC ^ 1;
    }
    let mut z = zone.lock();
    let (state, seq) = z.prepare().unwrap();
    assert!(matches!(state, Prepared::Wiped));
    assert_eq!(seq, 1);
    assert_eq!(count(&mut z), 0);
    assert_eq!(mem.used(), mem::size_of::<Root>());
}

#[test]
fn certificates_loaded_by_variables_are_evicted_least_recently_used_first() {
    let zone = Zone {
        mem: Heap::new(1 << 20),
    };
    let mut z = zone.lock();
    let (_, seq) = z.prepare().unwrap();
    let (d1, d2, d3) = (key(5, 1), key(5, 2), key(5, 3));
    assert!(z.register_dynamic(&d1, NOW + 1, 2).unwrap().1, "new");
    assert!(z.register_dynamic(&d2, NOW + 2, 2).unwrap().1);
    // d1 used again: d2 is now the least recently used.
    assert!(!z.register_dynamic(&d1, NOW + 3, 2).unwrap().1, "known");
    z.find(&d1).unwrap().count_handshake(true, NOW + 4);
    z.register_dynamic(&d3, NOW + 5, 2).unwrap();
    assert!(z.find(&d2).is_none(), "the least recently used went");
    assert!(z.find(&d1).is_some() && z.find(&d3).is_some());
    assert_eq!(z.dynamic_entries(), 2);
    assert!(
        z.register_dynamic(&key(5, 4), NOW, 0).is_err(),
        "none allowed: no entry"
    );

    // Configured by the next configuration: no longer evicted.
    z.register(&d1, seq).unwrap();
    assert_eq!(z.dynamic_entries(), 1);
    assert_eq!(z.trim_dynamic(0), 1);
    assert!(z.find(&d1).is_some() && z.find(&d3).is_none());
}

#[test]
fn eviction_follows_the_order_of_use_among_many_configured_entries() {
    let zone = Zone {
        mem: Heap::new(64 << 20),
    };
    let mut z = zone.lock();
    let (_, seq) = z.prepare().unwrap();
    // Configured entries never take part, however many there are.
    for i in 0..2000u32 {
        let [a, b, ..] = i.to_le_bytes();
        z.register(&key(a, b.wrapping_add(100)), seq).unwrap();
    }
    // Eight dynamic entries met in the same second: the order of use
    // decides, not the clock.
    let d: Vec<StapleKey> = (0..8).map(|i| key(7, 200 + i)).collect();
    for k in &d {
        z.register_dynamic(k, NOW, 8).unwrap();
    }
    // Used again, in this order: 3, then 0 (through a handshake), then 5.
    z.register_dynamic(&d[3], NOW, 8).unwrap();
    z.find(&d[0]).unwrap().count_handshake(true, NOW);
    z.register_dynamic(&d[5], NOW, 8).unwrap();
    // The status page lists them from their list, most recently used
    // first, without walking the 2,000 configured entries.
    let mut listed = Vec::new();
    z.for_each_dynamic(|e| listed.push(d.iter().position(|k| *k == e.key()).unwrap()));
    assert_eq!(listed, [5, 0, 3, 7, 6, 4, 2, 1]);
    // Least recently used first: 1 2 4 6 7 3 0 5.
    let mut order = Vec::new();
    for max in (0..8).rev() {
        assert_eq!(z.trim_dynamic(max), 1);
        let gone: Vec<usize> = (0..8)
            .filter(|&i| !order.contains(&i) && z.find(&d[i]).is_none())
            .collect();
        assert_eq!(gone.len(), 1, "one at a time: {gone:?}");
        order.extend(gone);
    }
    assert_eq!(order, [1, 2, 4, 6, 7, 3, 0, 5]);
    assert_eq!(z.dynamic_entries(), 0);
    assert_eq!(count(&mut z), 2000, "every configured entry stays");
}

#[test]
fn a_full_zone_keeps_the_staple_it_has_and_says_so_once_per_configuration() {
    let mem = Heap::new(mem::size_of::<Root>() + mem::size_of::<Entry>() + 650);
    let zone = Zone { mem };
    let mut z = zone.lock();
    let (_, seq) = z.prepare().unwrap();
    let k = key(3, 3);
    z.register(&k, seq)
        .unwrap()
        .store(&response(600), StapleSource::Fetched, NOW)
        .unwrap();
    let g = generation(&mut z);
    // A newer staple that does not fit beside the old one.
    let mut e = z.find(&k).unwrap();
    assert!(e.record_fetched(&response(700), NOW + 1, NOW + 1800).is_err());
    assert_eq!(
        e.servable(NOW + 1).map(|c| c.len()),
        Some(600),
        "the previous staple stays"
    );
    assert_eq!(generation(&mut z), g, "nothing changed");
    let mut e = z.find(&k).unwrap();
    assert!(!e.view().no_room);
    e.mark_no_room();
    assert!(e.view().no_room, "the status page shows it without room");
    e.clear();
    assert!(e.record_fetched(&response(550), NOW + 2, NOW + 1800).is_ok());
    assert!(!e.view().no_room, "until a staple fits again");
    assert!(z.register(&key(4, 4), seq).is_err(), "no room for another entry");
    assert!(z.take_full_warning());
    assert!(!z.take_full_warning(), "once per configuration");
    drop(z);
    let mut z = zone.lock();
    z.prepare().unwrap();
    assert!(z.take_full_warning(), "and again after a reload");
}

#[test]
fn a_staple_replaced_or_dropped_frees_its_bytes_and_tells_the_workers() {
    let mem = Heap::new(1 << 20);
    let zone = Zone { mem };
    let mut z = zone.lock();
    let (_, seq) = z.prepare().unwrap();
    let k = key(6, 6);
    z.register(&k, seq).unwrap();
    let base = mem.used();
    let g0 = generation(&mut z);
    z.find(&k)
        .unwrap()
        .record_fetched(&response(800), NOW, NOW + 1800)
        .unwrap();
    z.find(&k)
        .unwrap()
        .record_fetched(&response(300), NOW + 1, NOW + 1800)
        .unwrap();
    assert_eq!(
        mem.used() - base,
        super::chunks::footprint(super::entry::chain_len(300)),
        "the old staple's bytes are freed"
    );
    assert_eq!(
        z.find(&k).unwrap().servable(NOW).map(|c| c.to_vec()),
        Some(response(300).der),
        "the staple reads back as it was stored"
    );
    assert_eq!(generation(&mut z), g0 + 2);
    let v = z.find(&k).unwrap().view();
    assert_eq!((v.fetch_ok, v.bytes, v.last_result), (2, 300, FetchResult::Ok));
    z.find(&k).unwrap().record_revoked(&response(10), NOW + 3600);
    assert_eq!(
        mem.used() - base,
        1 + "certificate is revoked".len(),
        "a revoked certificate has no staple, only its last error"
    );
    assert!(z.find(&k).unwrap().servable(NOW).is_none());
    assert_eq!(generation(&mut z), g0 + 3);
}

#[test]
fn a_staple_of_any_length_reads_back_and_takes_its_entry_and_pieces() {
    let mem = Heap::new(1 << 20);
    let zone = Zone { mem };
    let mut z = zone.lock();
    let (_, seq) = z.prepare().unwrap();
    let k = key(9, 9);
    z.register(&k, seq).unwrap();
    let base = mem.used();
    let head = super::entry::HEAD;
    for len in [1, head - 1, head, head + 1, 470, 588, 1265, 2100, 16384] {
        let mut e = z.find(&k).unwrap();
        e.store(&response(len), StapleSource::Fetched, NOW).unwrap();
        let back = e.servable(NOW).map(|c| c.to_vec());
        assert_eq!(back, Some(response(len).der), "{len} bytes read back");
        assert_eq!(e.view().bytes, len);
        assert_eq!(
            mem.used() - base,
            super::chunks::footprint(super::entry::chain_len(len)),
            "{len} bytes: the first {head} in the entry, the rest in pieces"
        );
    }
    // 588 bytes, the bench's responses: 256 with the entry, 512 + 64 in
    // pieces, at most DER + 256 in all.
    assert!(mem::size_of::<Entry>() + super::chunks::footprint(super::entry::chain_len(588)) <= 588 + 256);
}
