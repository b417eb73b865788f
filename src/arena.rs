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

/// Start-up is over: from now on every allocation goes to the system allocator, which reuses
/// what is freed. WHY: arena memory is never reused, so a thread that lives on (the DNS proxy)
/// would bump through the rest of the buffer, each of its pages faulted in for good: +56 kB of
/// RSS under load, for nothing.
pub fn seal() {
    USED.store(SIZE, Relaxed);
}

/// The allocator: `#[global_allocator] static A: shim::arena::Arena = shim::arena::Arena;` in the
/// binary. Tests of the library use the system allocator and call this one directly.
pub struct Arena;

fn offset_in_buffer(ptr: *mut u8) -> Option<usize> {
    let offset = (ptr as usize).wrapping_sub(BUFFER.0.get() as usize);
    (offset < SIZE).then_some(offset)
}

// SAFETY (the GlobalAlloc contract):
// - `alloc` returns either a block of the system allocator, or a range of BUFFER that no other call
//   returned: the compare-exchange on USED hands every byte range out once, also between threads,
//   and the range starts at a multiple of `layout.align()` and holds `layout.size()` bytes inside
//   BUFFER (checked against SIZE). BUFFER is aligned to 4096, so any alignment up to a page is met
//   by rounding the address; a larger one makes `next_multiple_of` skip ahead inside the buffer or
//   fall to the system allocator, which honours it.
// - `dealloc` and `realloc` tell the two kinds of block apart by address: a pointer inside BUFFER
//   was ours (the system allocator never returns memory inside a static), anything else goes back
//   to the system allocator with the layout it was allocated with.
// - Arena memory is never reused, so a block stays valid until freed, as the contract requires;
//   the cost is at most SIZE bytes for the life of the process.
/// A fresh block of the buffer for `layout`, if it still fits.
fn bump(layout: Layout) -> Option<*mut u8> {
    let base = BUFFER.0.get() as usize;
    let mut used = USED.load(Relaxed);
    loop {
        let start = (base + used).next_multiple_of(layout.align()) - base;
        let end = start + layout.size();
        if end > SIZE {
            return None;
        }
        match USED.compare_exchange_weak(used, end, Relaxed, Relaxed) {
            Ok(_) => return Some((base + start) as *mut u8),
            Err(now) => used = now,
        }
    }
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump(layout).unwrap_or_else(|| System.alloc(layout))
    }

    /// Arena memory is never handed out twice and the buffer starts zeroed (it is .bss), so a
    /// fresh block of it is zero already: writing zeros would only fault its pages in for nothing
    /// (a 64 KiB `vec![0; N]` would cost 16 pages of RSS). Past the arena, the system's calloc
    /// knows when its fresh pages are zero.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump(layout).unwrap_or_else(|| System.alloc_zeroed(layout))
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
        // SAFETY: the caller guarantees `new_size`, rounded up to `layout.align()`, does not
        // overflow isize (GlobalAlloc::realloc's contract), so this layout is valid.
        let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !new.is_null() {
            // SAFETY: `ptr` holds `layout.size()` initialised bytes; `new` is a fresh block of
            // `new_size` bytes that cannot overlap it.
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test, not several: the arena is one static buffer for the whole process, and tests run
    /// in parallel threads.
    #[test]
    fn bumps_aligns_grows_in_place_and_falls_back_to_the_system() {
        let arena = Arena;
        let in_buffer = |p: *mut u8| offset_in_buffer(p).is_some();
        unsafe {
            // Blocks are aligned, inside the buffer and do not overlap.
            let a = arena.alloc(Layout::from_size_align(3, 1).unwrap());
            let b = arena.alloc(Layout::from_size_align(16, 16).unwrap());
            assert!(in_buffer(a) && in_buffer(b));
            assert_eq!(b as usize % 16, 0);
            assert!(b as usize >= a as usize + 3);
            b.write_bytes(0xab, 16);

            // The last block grows in place; an earlier one moves, its bytes with it.
            let grown = arena.realloc(b, Layout::from_size_align(16, 16).unwrap(), 64);
            assert_eq!(grown, b, "the last block grows in place");
            a.write_bytes(7, 3);
            let moved = arena.realloc(a, Layout::from_size_align(3, 1).unwrap(), 100);
            assert_ne!(moved, a);
            assert_eq!(std::slice::from_raw_parts(moved, 3), [7, 7, 7]);
            // Shrinking keeps the block.
            assert_eq!(
                arena.realloc(moved, Layout::from_size_align(100, 1).unwrap(), 10),
                moved
            );
            // Freeing an arena block does nothing (and must not reach the system allocator).
            arena.dealloc(moved, Layout::from_size_align(10, 1).unwrap());

            // Past the buffer, the system allocator answers, and its blocks go back to it.
            let big = Layout::from_size_align(SIZE + 1, 8).unwrap();
            let sys = arena.alloc(big);
            assert!(!sys.is_null() && !in_buffer(sys));
            sys.write_bytes(1, SIZE + 1);
            let sys = arena.realloc(sys, big, 2 * SIZE);
            assert!(!in_buffer(sys));
            assert_eq!(*sys.add(SIZE), 1);
            arena.dealloc(sys, Layout::from_size_align(2 * SIZE, 8).unwrap());

            // A zeroed block from the arena reads zero without having been written.
            let z = arena.alloc_zeroed(Layout::from_size_align(64, 8).unwrap());
            assert!(in_buffer(z));
            assert!(std::slice::from_raw_parts(z, 64).iter().all(|&b| b == 0));
            let big_zeroed = arena.alloc_zeroed(big);
            assert!(!in_buffer(big_zeroed));
            assert!(std::slice::from_raw_parts(big_zeroed, SIZE + 1)
                .iter()
                .all(|&b| b == 0));
            arena.dealloc(big_zeroed, big);

            // Once the buffer is used up, every block comes from the system.
            let rest = Layout::from_size_align(SIZE, 1).unwrap();
            let p = arena.alloc(rest);
            assert!(!in_buffer(p));
            arena.dealloc(p, rest);

            // Sealed, the arena hands out nothing more, even a block that would still fit,
            // and its last block no longer grows in place.
            USED.store(0, Relaxed);
            let last = arena.alloc(Layout::from_size_align(8, 8).unwrap());
            assert!(in_buffer(last));
            seal();
            let small = Layout::from_size_align(8, 8).unwrap();
            let after = arena.alloc(small);
            assert!(!after.is_null() && !in_buffer(after));
            arena.dealloc(after, small);
            let moved = arena.realloc(last, small, 16);
            assert!(!in_buffer(moved));
            arena.dealloc(moved, Layout::from_size_align(16, 8).unwrap());
        }
    }
}
