//! The allocator of the `chronicle` binary (and the benchmark): mimalloc, except in
//! `chronicle serve`, which switches to the system allocator before it starts.
//!
//! The views' folds and queries allocate many small short-lived values (JSON documents,
//! keys, ids): measured side by side at 100k events, mimalloc made queries 1.5-1.7x,
//! replays 1.45x and imports about 1.2x faster than the system allocator. A server is
//! different: after 30 stalled live subscribers were dropped, mimalloc kept some 280 MiB
//! more of its memory (the system allocator, tuned below, under 5 MiB; `tests/abuse.rs`
//! bounds it), so a long-running server keeps the allocator that gives memory back.
//!
//! Every block is freed by the allocator that made it: a block is mimalloc's exactly
//! when it lies in mimalloc's segments (`mi_is_in_heap_region`), which holds whichever
//! allocator was current when it was made.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

static SYSTEM_ONLY: AtomicBool = AtomicBool::new(false);

/// From now on, new blocks come from the system allocator (`chronicle serve`), and
/// memory freed when connections close goes back to the system within a second.
///
/// glibc's allocator raises its mmap threshold each time a large block is freed, after
/// which a subscriber's buffers (256 KiB and more) come from the heaps and stay there
/// once freed; a fixed threshold keeps every block of 128 KiB or more in a mapping of
/// its own that goes back to the system when it is freed. Smaller blocks (an event of
/// 30 KB in a subscriber's buffer) leave free pages inside the heaps, which only
/// `malloc_trim` returns: a thread calls it at most once a second, after
/// [`connection_closed`].
pub fn use_system_allocator() {
    SYSTEM_ONLY.store(true, Ordering::Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets a tunable of glibc's allocator.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
        let trimmer = std::thread::Builder::new()
            .name("chronicle-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    if CLOSED_SINCE_TRIM.swap(false, Ordering::Relaxed) {
                        // SAFETY: malloc_trim only returns free pages of glibc's heaps.
                        unsafe {
                            libc::malloc_trim(0);
                        }
                    }
                }
            });
        // Without the thread the server works as before, only keeping freed pages.
        drop(trimmer);
    }
}

static CLOSED_SINCE_TRIM: AtomicBool = AtomicBool::new(false);

/// A connection closed: its buffers were freed, to be given back at the next trim.
pub fn connection_closed() {
    CLOSED_SINCE_TRIM.store(true, Ordering::Relaxed);
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
