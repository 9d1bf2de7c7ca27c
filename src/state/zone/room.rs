//! How much room staples take in the zone: sizes for a configuration,
//! and a plan of which new staples fit in the free pages.

use super::chunks::slots;
use super::entry::{chain_len, Entry};
use super::Locked;

/// What one entry takes in the slab pool (its size rounded up to the slot
/// the allocator gives it).
pub const ENTRY_SLOT: usize = std::mem::size_of::<Entry>().next_power_of_two();
/// The size a staple is reckoned to have, before it is known, when a zone
/// is sized without `ssl_stapling_zone`: 2 KB, the larger of the common
/// sizes (responses without certificates are about 0.5 KB, with the
/// responder's certificate 1 to 2 KB). Generous on purpose: the zone's size
/// then does not change at a reload that learns the real sizes (a new size
/// is a new zone), and pages no staple uses are never touched.
pub const STAPLE_ESTIMATE: usize = 2048;
/// The size an unknown staple is reckoned to have when a zone is checked
/// for room, while no staple of the configuration is known yet (a first
/// start without a store): 1 KB. Lower than `STAPLE_ESTIMATE` so that a
/// zone sized from what staples measurably take is not refused; a staple
/// larger than its guess that then does not fit fails its fetch with the
/// zone-full `crit`.
pub const ADMISSION_ESTIMATE: usize = 1024;
/// Pages a zone needs besides its staples' and entries': the root, the
/// alignment of the first page, the last fetch errors, a spare.
const SPARE_PAGES: usize = 4;
/// The slab pool's header (`ngx_slab_pool_t`, its slots and statistics).
const SLAB_HEADER: usize = 2048;
/// What the slab pool keeps per page (`ngx_slab_page_t`).
const PAGE_DESCRIPTOR: usize = 24;

/// The size of a page of the slab allocator.
pub fn page_size() -> usize {
    #[cfg(not(test))]
    {
        // SAFETY: nginx sets ngx_pagesize at startup (ngx_os_init), before
        // it reads its configuration.
        let page = unsafe { nginx_sys::ngx_pagesize };
        if page > 0 {
            return page;
        }
    }
    4096
}

/// What staples not known yet are reckoned to take: the median of the
/// sizes known in the same configuration (staples from one responder are
/// about the same size), or else the estimates above.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SizeGuess {
    median: Option<usize>,
}

impl SizeGuess {
    pub fn from_known(mut sizes: Vec<usize>) -> Self {
        sizes.sort_unstable();
        SizeGuess {
            median: sizes.get(sizes.len() / 2).copied(),
        }
    }

    /// For deciding whether a zone has room for a staple, and for the size
    /// a configuration needs (the warnings name the size that admits all).
    pub fn for_need(self) -> usize {
        self.median.unwrap_or(ADMISSION_ESTIMATE)
    }

    /// For the size of a zone the module picks itself.
    pub fn for_sizing(self) -> usize {
        self.median.unwrap_or(0).max(STAPLE_ESTIMATE)
    }
}

/// About how large a zone must be for staples of these sizes: each an
/// entry and its pieces, counted in whole pages per slot size as the slab
/// allocator uses them (`RoomPlan`), with the pool's own header and pages.
pub fn size_for(sizes: impl IntoIterator<Item = usize>) -> usize {
    let page = page_size();
    let mut plan = RoomPlan::new(usize::MAX, page);
    for len in sizes {
        plan.try_add(len);
    }
    plan.pages(plan.entries, &plan.staples)
        .saturating_add(SPARE_PAGES)
        .saturating_mul(page + PAGE_DESCRIPTOR)
        .saturating_add(SLAB_HEADER)
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
        for slot in slots(chain_len(staple_bytes)) {
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
        self.size
            .saturating_sub(self.free_pages.saturating_mul(page_size()))
    }
}

impl Locked<'_> {
    /// A plan for new entries in the zone's free pages.
    pub fn room_plan(&mut self) -> RoomPlan {
        let page = page_size();
        // SAFETY: reading a pool field under the lock.
        let free_pages = unsafe { (*self.pool()).pfree };
        RoomPlan::new(free_pages.saturating_mul(page), page)
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
    use super::{chain_len, size_for, RoomPlan, SizeGuess, ENTRY_SLOT};
    use crate::state::zone::entry::HEAD;

    #[test]
    fn room_counts_whole_pages() {
        let page = 4096;
        assert_eq!(ENTRY_SLOT, 256);
        // A staple whose bytes after the entry's take pieces of 1,024, 256
        // and 64 bytes; entries and each piece size share pages of their
        // own.
        let len = 1300 + HEAD;
        assert_eq!(super::slots(chain_len(len)), vec![1024, 256, 64]);
        let pages = |n: usize| n.div_ceil(16) + n.div_ceil(4) + n.div_ceil(16) + n.div_ceil(64);
        let mut plan = RoomPlan::new(6 * page, page);
        let mut n: usize = 0;
        while plan.try_add(len) {
            n += 1;
        }
        assert!(pages(n) <= 6 && pages(n + 1) > 6, "{n}");
        // A staple with pieces of other sizes needs pages of their own.
        let mut plan = RoomPlan::new(4 * page, page);
        assert!(plan.try_add(len));
        assert!(!plan.try_add(3000));
        assert!(plan.try_add(len));
        // A staple that fits in its entry takes no piece.
        let mut plan = RoomPlan::new(page, page);
        assert_eq!((0..16).filter(|_| plan.try_add(HEAD)).count(), 16);
        // Nothing fits in no room.
        assert!(!RoomPlan::new(0, page).try_add(1));
    }

    #[test]
    fn unknown_sizes_are_guessed_from_known_ones() {
        let none = SizeGuess::from_known(Vec::new());
        assert_eq!((none.for_need(), none.for_sizing()), (1024, 2048));
        let known = SizeGuess::from_known(vec![600, 590, 5000, 588]);
        assert_eq!((known.for_need(), known.for_sizing()), (600, 2048));
        let large = SizeGuess::from_known(vec![3000]);
        assert_eq!(large.for_sizing(), 3000);
    }

    #[test]
    fn a_zone_of_the_size_needed_has_room_for_every_staple() {
        let page = 4096;
        for len in [300, 588, 1265, 2000, 3000, 9000] {
            for n in [1, 7, 100, 1000, 10_000] {
                // The pages of a slab pool of that size (ngx_slab_init: a
                // header, then a 24-byte descriptor per page), less one
                // for the zone's root.
                let size = size_for(std::iter::repeat_n(len, n));
                let free = ((size - 2048) / (page + 24) - 1) * page;
                let mut plan = RoomPlan::new(free, page);
                let fit = (0..n).filter(|_| plan.try_add(len)).count();
                assert_eq!(fit, n, "{n} staples of {len} bytes");
            }
        }
    }
}
