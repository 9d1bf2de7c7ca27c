//! How much room staples take in the zone: sizes for a configuration,
//! and a plan of which new staples fit in the free pages.

use super::chunks::{footprint, slots};
use super::entry::Entry;
use super::Locked;

/// What one entry takes in the slab pool (its size rounded up to the slot
/// the allocator gives it).
pub const ENTRY_SLOT: usize = std::mem::size_of::<Entry>().next_power_of_two();
/// The size a staple is reckoned to have before it is fetched: 2 KB, the
/// larger of the common sizes (responses without certificates are about
/// 0.5 KB, with the responder's certificate 1 to 2 KB).
pub const STAPLE_ESTIMATE: usize = 2048;
/// The root, the slab pool's own header and page rounding.
const ZONE_OVERHEAD: usize = 64 * 1024;

/// About how large a zone must be for `staples` staples.
pub fn size_for(staples: usize) -> usize {
    staples
        .saturating_mul(ENTRY_SLOT + footprint(STAPLE_ESTIMATE))
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
        let mut staples = self.staples.clone();
        for slot in slots(staple_bytes) {
            match staples.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, n)) => *n += 1,
                None => staples.push((slot, 1)),
            }
        }
        if self.pages(self.entries + 1, &staples) > self.free_pages {
            return false;
        }
        self.entries += 1;
        self.staples = staples;
        true
    }
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
    use super::{RoomPlan, ENTRY_SLOT};

    #[test]
    fn room_counts_whole_pages() {
        let page = 4096;
        assert_eq!(ENTRY_SLOT, 256);
        // A 1,300-byte staple: pieces of 1,024, 256 and 64 bytes; entries
        // and each piece size share pages of their own.
        assert_eq!(super::slots(1300), vec![1024, 256, 64]);
        let pages = |n: usize| n.div_ceil(16) + n.div_ceil(4) + n.div_ceil(16) + n.div_ceil(64);
        let mut plan = RoomPlan::new(6 * page, page);
        let mut n: usize = 0;
        while plan.try_add(1300) {
            n += 1;
        }
        assert!(pages(n) <= 6 && pages(n + 1) > 6, "{n}");
        // A staple with pieces of other sizes needs pages of their own.
        let mut plan = RoomPlan::new(4 * page, page);
        assert!(plan.try_add(1300));
        assert!(!plan.try_add(3000));
        assert!(plan.try_add(1300));
        // Nothing fits in no room.
        assert!(!RoomPlan::new(0, page).try_add(1));
    }
}
