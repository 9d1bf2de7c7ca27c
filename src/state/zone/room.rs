//! How much room staples take in the zone: sizes for a configuration,
//! and a plan of which new staples fit in the free pages.

use super::entry::Entry;
use super::Locked;

/// What one entry takes in the slab pool (its size rounded up to the slot
/// the allocator gives it).
pub const ENTRY_SLOT: usize = std::mem::size_of::<Entry>().next_power_of_two();
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

impl Locked<'_> {
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
