//! The zone's red-black tree: nginx's rbtree, keyed by the first 8 bytes
//! of the staple id, ordered by the whole id among equal keys. Its nodes
//! are entries (the node is an entry's first field).

use std::ptr::NonNull;

use nginx_sys::{ngx_rbtree_key_t, ngx_rbtree_node_t, ngx_rbtree_t};

use super::entry::Entry;
use crate::state::certificate::StapleKey;

pub(super) fn tree_key(key: &StapleKey) -> ngx_rbtree_key_t {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key.0[..8]);
    u64::from_le_bytes(b) as ngx_rbtree_key_t
}

/// Orders nodes by (tree key, full staple id), so that lookups are
/// exact even if two ids share their first 8 bytes.
pub(super) unsafe extern "C" fn insert_entry(
    temp: *mut ngx_rbtree_node_t,
    node: *mut ngx_rbtree_node_t,
    sentinel: *mut ngx_rbtree_node_t,
) {
    // SAFETY: nginx passes a valid tree, its sentinel and a new node.
    crate::base::guard::guard((), || unsafe { insert_entry_inner(temp, node, sentinel) })
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
                let a = (*(node as *const Entry)).key();
                let b = (*(temp as *const Entry)).key();
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

/// The entry with staple id `key`.
///
/// # Safety
/// `tree` is a valid tree whose nodes are entries; the zone is locked.
pub(super) unsafe fn find(tree: &ngx_rbtree_t, key: &StapleKey) -> Option<NonNull<Entry>> {
    let k = tree_key(key);
    let sentinel = tree.sentinel;
    let mut node = tree.root;
    // SAFETY: the contract above.
    unsafe {
        while !node.is_null() && node != sentinel {
            let e = &*(node as *const Entry);
            node = if k != (*node).key {
                if k < (*node).key {
                    (*node).left
                } else {
                    (*node).right
                }
            } else if key.0 == e.key().0 {
                return NonNull::new(node as *mut Entry);
            } else if key.0 < e.key().0 {
                (*node).left
            } else {
                (*node).right
            };
        }
    }
    None
}
