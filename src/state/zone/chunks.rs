//! A staple's bytes in the zone, as a chain of slab slots: the slab
//! allocator rounds every allocation up to a power of two (a 1,265-byte
//! response took a 2 KB slot, 783 bytes lost), so a response is cut into
//! pieces whose slots it nearly fills: 1,265 bytes take 1,024 + 256 + 16.
//! Each piece starts with the pointer to the next (null in the last);
//! the pieces' sizes follow from the length alone (`slots`). A staple's
//! first bytes are not here: they fill the end of its entry's slot
//! (`entry::HEAD`).

use std::ptr;

use super::Memory;

/// The largest piece: the slab's largest slot below a page (4 KB pages:
/// larger allocations take whole pages).
pub const CHUNK_MAX: usize = 2048;
/// A piece's link to the next.
const HEADER: usize = std::mem::size_of::<*mut u8>();
/// The smallest slot the slab allocator hands out.
const SLOT_MIN: usize = 16;
/// The rounding a last piece may waste before the rest is cut once more.
const TOLERANCE: usize = 32;

/// The slots a staple of `len` bytes takes, in order.
pub fn slots(len: usize) -> Vec<usize> {
    slot_sizes(len).collect()
}

/// `slots`, one at a time (the handshake's copy allocates nothing for it).
fn slot_sizes(len: usize) -> impl Iterator<Item = usize> {
    let mut rest = len;
    std::iter::from_fn(move || {
        if rest == 0 {
            return None;
        }
        let need = rest + HEADER;
        let slot = if need >= CHUNK_MAX {
            CHUNK_MAX
        } else {
            let up = need.next_power_of_two().max(SLOT_MIN);
            let down = up / 2;
            // The whole rest in one slot when that wastes little, or when
            // a smaller slot would carry too little.
            if up - need <= TOLERANCE || down < 4 * HEADER {
                up
            } else {
                down
            }
        };
        rest = rest.saturating_sub(slot - HEADER);
        Some(slot)
    })
}

/// What a staple of `len` bytes takes in the zone, slot rounding included.
#[cfg(test)]
pub fn footprint(len: usize) -> usize {
    slots(len).iter().sum()
}

/// Copies `bytes` into newly allocated pieces; the first piece, or `None`
/// (nothing left allocated) when the zone is full. The lock is held.
pub fn write<M: Memory>(mem: M, bytes: &[u8]) -> Option<*mut u8> {
    let mut pieces = Vec::new();
    for slot in slots(bytes.len()) {
        match mem.alloc(slot) {
            Some(p) => pieces.push((p, slot)),
            None => {
                for (p, _) in pieces {
                    // SAFETY: allocated just above, not linked anywhere.
                    unsafe { mem.free(p) };
                }
                return None;
            }
        }
    }
    let mut rest = bytes;
    for (i, &(p, slot)) in pieces.iter().enumerate() {
        let next = pieces.get(i + 1).map_or(ptr::null_mut(), |&(n, _)| n);
        let n = rest.len().min(slot - HEADER);
        // SAFETY: p has room for `slot` bytes: the link, then n <= slot -
        // HEADER bytes; pieces come aligned for a pointer.
        unsafe {
            p.cast::<*mut u8>().write(next);
            ptr::copy_nonoverlapping(rest.as_ptr(), p.add(HEADER), n);
        }
        rest = &rest[n..];
    }
    pieces.first().map(|&(p, _)| p)
}

/// Frees a chain `write` made.
///
/// # Safety
/// `first` is null or the first piece of a chain `write` made on `mem`,
/// not used again; the lock is held.
pub unsafe fn free<M: Memory>(mem: M, first: *mut u8) {
    let mut p = first;
    while !p.is_null() {
        // SAFETY: the contract above: each piece starts with its link.
        let next = unsafe { p.cast::<*mut u8>().read() };
        // SAFETY: as above.
        unsafe { mem.free(p) };
        p = next;
    }
}

/// A staple's bytes in the zone, read under the lock: its first bytes in
/// its entry (`head`), the rest in a chain of pieces.
#[derive(Clone, Copy)]
pub struct Chunks<'a> {
    head: &'a [u8],
    first: *const u8,
    len: usize,
}

impl<'a> Chunks<'a> {
    /// # Safety
    /// `head` is the staple's first bytes and `first` the first piece of a
    /// live chain `write` made for the other `len - head.len()` bytes (or
    /// null when there are none), left alone for `'a`.
    pub unsafe fn new(head: &'a [u8], first: *const u8, len: usize) -> Self {
        Chunks { head, first, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The staple's bytes, in order: the head, then the pieces'.
    pub fn pieces(&self) -> impl Iterator<Item = &'a [u8]> {
        let mut p = self.first;
        let mut rest = self.len.saturating_sub(self.head.len());
        let mut slots = slot_sizes(rest);
        let head = (!self.head.is_empty()).then_some(self.head);
        head.into_iter().chain(std::iter::from_fn(move || {
            let slot = slots.next()?;
            if p.is_null() {
                return None;
            }
            let n = rest.min(slot - HEADER);
            // SAFETY: `new`'s contract: a live chain whose pieces hold the
            // link, then up to slot - HEADER bytes of the staple.
            let (bytes, next) = unsafe {
                (
                    std::slice::from_raw_parts(p.add(HEADER), n),
                    p.cast::<*const u8>().read(),
                )
            };
            rest -= n;
            p = next;
            Some(bytes)
        }))
    }

    /// Copies the staple into `out`, which is `len()` bytes long.
    pub fn copy_to(&self, out: &mut [u8]) {
        let mut at = 0;
        for piece in self.pieces() {
            let end = (at + piece.len()).min(out.len());
            out[at..end].copy_from_slice(&piece[..end - at]);
            at = end;
        }
    }

    #[cfg(test)]
    pub fn to_vec(self) -> Vec<u8> {
        let mut v = vec![0; self.len];
        self.copy_to(&mut v);
        v
    }
}

/// A chain as `write` makes it, on leaked heap memory (a test's few
/// bytes), for tests of entries outside a zone.
#[cfg(test)]
pub fn leak_chain(bytes: &[u8]) -> *mut u8 {
    let pieces: Vec<*mut u8> = slots(bytes.len())
        .into_iter()
        .map(|slot| {
            Box::leak(vec![0u64; slot / 8].into_boxed_slice())
                .as_mut_ptr()
                .cast()
        })
        .collect();
    let mut rest = bytes;
    for (i, &p) in pieces.iter().enumerate() {
        let next = pieces.get(i + 1).copied().unwrap_or(ptr::null_mut());
        let n = rest.len().min(slots(bytes.len())[i] - HEADER);
        // SAFETY: as in `write`, on the leaked slots just made.
        unsafe {
            p.cast::<*mut u8>().write(next);
            ptr::copy_nonoverlapping(rest.as_ptr(), p.add(HEADER), n);
        }
        rest = &rest[n..];
    }
    pieces.first().copied().unwrap_or(ptr::null_mut())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        for len in [1, 7, 8, 9, 100, 588, 1265, 2040, 2041, 5000, 16384] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            for head in [0, 1, 55] {
                let head = head.min(len);
                let first = leak_chain(&bytes[head..]);
                // SAFETY: a chain just made for the bytes after the head,
                // leaked.
                let chunks = unsafe { Chunks::new(&bytes[..head], first, len) };
                assert_eq!(chunks.to_vec(), bytes, "{len}, head {head}");
                let pieces = slots(len - head).len() + usize::from(head > 0);
                assert_eq!(chunks.pieces().count(), pieces);
            }
        }
    }

    #[test]
    fn pieces_nearly_fill_their_slots() {
        assert_eq!(slots(1265), vec![1024, 256, 16]);
        assert_eq!(slots(588), vec![512, 64, 64]);
        assert_eq!(slots(1), vec![16]);
        assert!(slots(0).is_empty());
        for len in 1..=20_000 {
            let s = slots(len);
            let carried: usize = s.iter().map(|slot| slot - HEADER).sum();
            assert!(carried >= len, "{len}");
            assert!(s.iter().all(|&slot| slot.is_power_of_two() && slot <= CHUNK_MAX));
            // what is lost: the links, and less than 64 bytes of rounding
            let waste = footprint(len) - len;
            assert!(waste <= HEADER * s.len() + 63, "{len}: {s:?}");
            if len <= 4096 {
                assert!(waste <= 120, "{len}: {s:?}");
            }
        }
    }
}
