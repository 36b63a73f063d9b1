//! The allocator of the `chronicle` binary (and the benchmark): mimalloc, except in
//! `chronicle serve`, which switches to the system allocator before it starts.
//!
//! The views' folds and queries allocate many small short-lived values (JSON documents,
//! keys, ids): measured side by side at 100k events, mimalloc made queries 1.5-1.7x,
//! replays 1.45x and imports about 1.2x faster than the system allocator. A server is
//! different: after 30 stalled live subscribers were dropped, mimalloc kept some 280 MiB
//! more of its memory (the system allocator 30 MiB; `tests/abuse.rs` bounds it), so a
//! long-running server keeps the allocator that gives memory back.
//!
//! Every block is freed by the allocator that made it: a block is mimalloc's exactly
//! when it lies in mimalloc's segments (`mi_is_in_heap_region`), which holds whichever
//! allocator was current when it was made.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

static SYSTEM_ONLY: AtomicBool = AtomicBool::new(false);

/// From now on, new blocks come from the system allocator (`chronicle serve`).
pub fn use_system_allocator() {
    SYSTEM_ONLY.store(true, Ordering::Relaxed);
}

pub struct Allocator;

fn system_only() -> bool {
    SYSTEM_ONLY.load(Ordering::Relaxed)
}

fn is_mimallocs(ptr: *mut u8) -> bool {
    // SAFETY: only looks the address up in mimalloc's segment map.
    unsafe { libmimalloc_sys::mi_is_in_heap_region(ptr.cast()) }
}

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe {
            if system_only() {
                System.alloc(layout)
            } else {
                mimalloc::MiMalloc.alloc(layout)
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe {
            if system_only() {
                System.alloc_zeroed(layout)
            } else {
                mimalloc::MiMalloc.alloc_zeroed(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator with `layout`; the segment map
        // names which of the two made it.
        unsafe {
            if is_mimallocs(ptr) {
                mimalloc::MiMalloc.dealloc(ptr, layout);
            } else {
                System.dealloc(ptr, layout);
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; a block stays with the allocator that made it.
        unsafe {
            if is_mimallocs(ptr) {
                mimalloc::MiMalloc.realloc(ptr, layout, new_size)
            } else {
                System.realloc(ptr, layout, new_size)
            }
        }
    }
}
