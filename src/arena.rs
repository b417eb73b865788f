//! A start-up arena as the global allocator: shim allocates a few dozen small blocks before the
//! app starts, and musl's allocator (mallocng) spends ~300 instructions on each, more on the
//! first of each size class. Here an allocation is a bump in a static buffer and a free inside it
//! is nothing; when the buffer is used up, or for a block that is not in it, the system allocator
//! takes over, so a long-running supervisor wastes at most the buffer's size. Untouched pages of
//! the buffer are never faulted in, so they cost no RSS.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

const SIZE: usize = 64 * 1024;

#[repr(C, align(4096))]
struct Buffer(UnsafeCell<[u8; SIZE]>);

// SAFETY: every byte range is handed out once, by the atomic bump in `Arena::alloc`.
unsafe impl Sync for Buffer {}

static BUFFER: Buffer = Buffer(UnsafeCell::new([0; SIZE]));
static USED: AtomicUsize = AtomicUsize::new(0);

pub struct Arena;

fn offset_in_buffer(ptr: *mut u8) -> Option<usize> {
    let offset = (ptr as usize).wrapping_sub(BUFFER.0.get() as usize);
    (offset < SIZE).then_some(offset)
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = BUFFER.0.get() as usize;
        let mut used = USED.load(Relaxed);
        loop {
            let start = (base + used).next_multiple_of(layout.align()) - base;
            let end = start + layout.size();
            if end > SIZE {
                return System.alloc(layout);
            }
            match USED.compare_exchange_weak(used, end, Relaxed, Relaxed) {
                Ok(_) => return (base + start) as *mut u8,
                Err(now) => used = now,
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if offset_in_buffer(ptr).is_none() {
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(offset) = offset_in_buffer(ptr) else {
            return System.realloc(ptr, layout, new_size);
        };
        if new_size <= layout.size() {
            return ptr;
        }
        // The last block handed out grows in place when it still fits.
        let end = offset + layout.size();
        if offset + new_size <= SIZE
            && USED
                .compare_exchange(end, offset + new_size, Relaxed, Relaxed)
                .is_ok()
        {
            return ptr;
        }
        let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
        }
        new
    }
}
