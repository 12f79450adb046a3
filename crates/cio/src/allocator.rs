//! The process's allocator: dlmalloc over memory the kernel hands over already mapped in.
//!
//! Why not dlmalloc's own global allocator (`GlobalDlmalloc`): its system memory is mapped
//! page by page on first touch, one page fault each, and in a virtual machine a fault costs
//! about 2 µs (`perf stat -e page-faults`: `cio credential list` took 222 faults, 85 of them
//! dlmalloc's growth and the copies into new memory). Here each 64 KiB segment dlmalloc asks
//! for is mapped with `MAP_POPULATE`: one system call instead of up to 16 faults. The lock is
//! `std`'s mutex (a futex) rather than a musl `pthread_mutex`.
//!
//! Everything else, the allocation itself, is dlmalloc's (the allocator Rust's standard
//! library uses on wasm); this module only supplies its system memory and a lock.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rustix::mm::{MapFlags, MremapFlags, ProtFlags};

/// System memory for dlmalloc: anonymous private mappings, populated when made.
struct Populated;

// SAFETY: each method does what `dlmalloc::Allocator` asks: fresh zeroed mappings of at
// least `size` bytes, and remaps and unmaps of exactly the regions dlmalloc names.
unsafe impl dlmalloc::Allocator for Populated {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        // SAFETY: a new anonymous mapping aliases nothing.
        let mapped = unsafe {
            rustix::mm::mmap_anonymous(
                ptr::null_mut(),
                size,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::POPULATE,
            )
        };
        match mapped {
            Ok(base) => (base.cast(), size, 0),
            Err(_) => (ptr::null_mut(), 0, 0),
        }
    }

    fn remap(&self, ptr: *mut u8, oldsize: usize, newsize: usize, can_move: bool) -> *mut u8 {
        let flags = if can_move {
            MremapFlags::MAYMOVE
        } else {
            MremapFlags::empty()
        };
        // SAFETY: `ptr` and `oldsize` are a region this allocator mapped (dlmalloc's word).
        unsafe { rustix::mm::mremap(ptr.cast(), oldsize, newsize, flags) }
            .map_or(ptr::null_mut(), |p| p.cast())
    }

    fn free_part(&self, ptr: *mut u8, oldsize: usize, newsize: usize) -> bool {
        // SAFETY: as for `remap`; the tail past `newsize` is dlmalloc's to give back.
        unsafe {
            rustix::mm::mremap(ptr.cast(), oldsize, newsize, MremapFlags::empty()).is_ok()
                || rustix::mm::munmap(ptr.add(newsize).cast(), oldsize - newsize).is_ok()
        }
    }

    fn free(&self, ptr: *mut u8, size: usize) -> bool {
        // SAFETY: a whole region this allocator mapped, which dlmalloc no longer uses.
        unsafe { rustix::mm::munmap(ptr.cast(), size).is_ok() }
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        true
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        rustix::param::page_size()
    }
}

/// dlmalloc over [`Populated`] memory, behind a mutex: the `#[global_allocator]`.
pub struct Allocator(Mutex<dlmalloc::Dlmalloc<Populated>>);

impl Allocator {
    pub const fn new() -> Allocator {
        Allocator(Mutex::new(dlmalloc::Dlmalloc::new_with_allocator(
            Populated,
        )))
    }

    fn lock(&self) -> MutexGuard<'_, dlmalloc::Dlmalloc<Populated>> {
        // A panic while the lock is held leaves dlmalloc's state whole (it does not unwind
        // from inside its own code), so a poisoned lock is taken as it is.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// SAFETY: every call goes to dlmalloc under the lock, with the layout Rust gives.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { self.lock().malloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.lock().free(ptr, layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { self.lock().calloc(layout.size(), layout.align()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe {
            self.lock()
                .realloc(ptr, layout.size(), layout.align(), new_size)
        }
    }
}
