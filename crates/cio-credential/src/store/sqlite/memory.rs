//! SQLite's memory from the process's allocator, through SQLite's documented hook
//! (`SQLITE_CONFIG_MALLOC`, <https://sqlite.org/c3ref/mem_methods.html>).
//!
//! Why: the shipped static build links musl, whose allocator gives a freed page back to the
//! kernel at once, so each short-lived SQLite buffer (an overflow page read, a parsed
//! statement) cost an `mmap` and a `munmap`: 30 pairs and about 30 page faults in one
//! `cio credential list`. The Rust side of the process already uses one allocator that keeps
//! freed memory (`cio`'s `#[global_allocator]`); this hands SQLite to it. Written here because
//! rusqlite does not wrap the hook; the code only adapts SQLite's five calls to
//! [`std::alloc`], with the size SQLite asks `xSize` for kept in a 16-byte header.
//!
//! With it, SQLite's two memory pools are turned off (`SQLITE_CONFIG_LOOKASIDE` and
//! `SQLITE_CONFIG_PAGECACHE`, both to zero): each connection carved about 120 KiB of
//! lookaside slots and 20 page buffers out of fresh memory up front and wrote into every one,
//! which cost `list` about 45 page faults (13 % of its CPU) for a store of a few pages; the
//! allocator above serves those small blocks as fast. SQLite's memory statistics are off too
//! (`SQLITE_CONFIG_MEMSTATUS`): kept, they take a global mutex around every allocation, and
//! cio never reads them.

use std::alloc::{Layout, alloc, dealloc, realloc};
use std::ffi::{c_int, c_void};

use rusqlite::ffi;

/// Bytes before each allocation: its usable size. 16 keeps SQLite's 8-byte alignment and
/// the 16 bytes `long double` wants.
const HEADER: usize = 16;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    let Ok(size) = usize::try_from(n) else {
        return std::ptr::null_mut();
    };
    let Some(layout) = layout(size) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the layout's size is at least HEADER, never zero.
    let base = unsafe { alloc(layout) };
    if base.is_null() {
        return base.cast();
    }
    // SAFETY: `base` holds HEADER + size bytes, aligned to 16.
    unsafe {
        base.cast::<usize>().write(size);
        base.add(HEADER).cast()
    }
}

/// The start of the block and its usable size, from a pointer `x_malloc` returned.
///
/// # Safety
/// `p` came from `x_malloc` or `x_realloc` and was not freed.
unsafe fn block(p: *mut c_void) -> (*mut u8, usize) {
    // SAFETY: per the contract, the header sits HEADER bytes before `p`.
    unsafe {
        let base = p.cast::<u8>().sub(HEADER);
        (base, base.cast::<usize>().read())
    }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only what its xMalloc/xRealloc returned.
    let (base, size) = unsafe { block(p) };
    if let Some(layout) = layout(size) {
        // SAFETY: the block was allocated with this very layout.
        unsafe { dealloc(base, layout) };
    }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    if p.is_null() {
        // SAFETY: as x_malloc.
        return unsafe { x_malloc(n) };
    }
    let Ok(new_size) = usize::try_from(n) else {
        return std::ptr::null_mut();
    };
    // SAFETY: SQLite reallocates only what its xMalloc/xRealloc returned.
    let (base, size) = unsafe { block(p) };
    let (Some(old), Some(_)) = (layout(size), layout(new_size)) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `base` was allocated with `old`; the new size fits a Layout (checked above).
    let moved = unsafe { realloc(base, old, new_size + HEADER) };
    if moved.is_null() {
        // The old block stays valid, as SQLite expects of a failed xRealloc.
        return moved.cast();
    }
    // SAFETY: `moved` holds HEADER + new_size bytes.
    unsafe {
        moved.cast::<usize>().write(new_size);
        moved.add(HEADER).cast()
    }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: SQLite asks the size only of what its xMalloc/xRealloc returned.
    let (_, size) = unsafe { block(p) };
    c_int::try_from(size).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    // Multiples of 8, as SQLite's own allocator rounds.
    n.checked_add(7).map_or(n, |m| m & !7)
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Gives SQLite's memory to the process's global allocator, without SQLite's own pools.
/// Returns whether SQLite took it:
/// it refuses (and keeps its own allocator, which is as correct) once it was initialized.
///
/// # Safety
/// No other thread may be using SQLite while this runs (`sqlite3_config` is not thread-safe):
/// call it first thing in `main`.
pub unsafe fn use_process_allocator() -> bool {
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLite copies the methods (they need not outlive the call); the caller keeps
    // other threads out of SQLite meanwhile.
    let taken = unsafe {
        ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &raw const methods) == ffi::SQLITE_OK
    };
    if taken {
        // SAFETY: as above; both take plain integers (and a null buffer: SQLite allocates).
        unsafe {
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_LOOKASIDE, 0 as c_int, 0 as c_int);
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_PAGECACHE,
                std::ptr::null_mut::<c_void>(),
                0 as c_int,
                0 as c_int,
            );
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_their_size_and_contents_through_realloc() {
        // SAFETY: each pointer comes from x_malloc/x_realloc and is freed once.
        unsafe {
            let p = x_malloc(100);
            assert!(!p.is_null());
            assert_eq!(p as usize % 8, 0, "SQLite needs 8-byte alignment");
            assert_eq!(x_size(p), 100);
            std::ptr::write_bytes(p.cast::<u8>(), 0xA5, 100);
            let q = x_realloc(p, 5000);
            assert_eq!(x_size(q), 5000);
            let kept = std::slice::from_raw_parts(q.cast::<u8>(), 100);
            assert!(kept.iter().all(|&b| b == 0xA5), "realloc kept the contents");
            let r = x_realloc(q, 10);
            assert_eq!(x_size(r), 10);
            x_free(r);
            x_free(std::ptr::null_mut());
            assert_eq!(x_size(std::ptr::null_mut()), 0);
            assert!(
                x_malloc(-1).is_null(),
                "a negative size is refused, not wrapped"
            );
        }
    }

    #[test]
    fn sizes_round_up_to_multiples_of_eight() {
        // SAFETY: x_roundup is pure arithmetic.
        let rounded: Vec<c_int> = [1, 8, 9, 100, c_int::MAX]
            .into_iter()
            .map(|n| unsafe { x_roundup(n) })
            .collect();
        assert_eq!(rounded, [8, 8, 16, 104, c_int::MAX]);
    }
}
