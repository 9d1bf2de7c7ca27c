//! The order in which entries of certificates loaded by variables are
//! evicted: a doubly linked list through the entries, most recently used
//! at the head, with its sentinel in the zone's root. Insert, use and
//! removal move one entry (O(1)); eviction takes the tail, so no path a
//! client triggers walks the zone.
//!
//! The links are addresses in the shared zone, as the rbtree's are: every
//! worker maps the zone at the same address.

use std::ptr;

/// One place in the list: the root's sentinel, or an entry's.
#[repr(C)]
pub struct Link {
    prev: *mut Link,
    next: *mut Link,
}

impl Link {
    pub const fn unlinked() -> Link {
        Link {
            prev: ptr::null_mut(),
            next: ptr::null_mut(),
        }
    }

    fn is_linked(&self) -> bool {
        !self.next.is_null()
    }
}

/// Makes `sentinel` an empty list.
pub fn init(sentinel: &mut Link) {
    let s: *mut Link = sentinel;
    *sentinel = Link { prev: s, next: s };
}

/// Takes `l` out of its list, if it is in one.
///
/// # Safety
/// `l` is live, and so are its neighbours if it is linked; the lock is
/// held.
pub unsafe fn unlink(l: *mut Link) {
    // SAFETY: the contract above.
    unsafe {
        if !(*l).is_linked() {
            return;
        }
        (*(*l).prev).next = (*l).next;
        (*(*l).next).prev = (*l).prev;
        *l = Link::unlinked();
    }
}

/// Puts `l` at the head of `sentinel`'s list (most recently used), from
/// wherever it was.
///
/// # Safety
/// Both are live, `sentinel` an initialised list; the lock is held.
pub unsafe fn to_front(sentinel: *mut Link, l: *mut Link) {
    // SAFETY: the contract above.
    unsafe {
        unlink(l);
        (*l).prev = sentinel;
        (*l).next = (*sentinel).next;
        (*(*sentinel).next).prev = l;
        (*sentinel).next = l;
    }
}

/// The last link of `sentinel`'s list (the least recently used).
///
/// # Safety
/// `sentinel` is a live, initialised list; the lock is held.
pub unsafe fn tail(sentinel: *mut Link) -> Option<*mut Link> {
    // SAFETY: the contract above.
    let last = unsafe { (*sentinel).prev };
    (!last.is_null() && last != sentinel).then_some(last)
}

/// Calls `f` with every link of `sentinel`'s list, most recently used
/// first. `f` must not change the list.
///
/// # Safety
/// `sentinel` is a live, initialised list; the lock is held.
pub unsafe fn for_each(sentinel: *mut Link, mut f: impl FnMut(*mut Link)) {
    // SAFETY: the contract above: every link up to the sentinel is live.
    unsafe {
        let mut l = (*sentinel).next;
        while !l.is_null() && l != sentinel {
            let next = (*l).next;
            f(l);
            l = next;
        }
    }
}
