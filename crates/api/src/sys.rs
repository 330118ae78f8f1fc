//! The server's one direct call into the C library.

/// Hands the allocator's free memory back to the kernel (glibc's `malloc_trim(0)`: every
/// arena's free pages, not only the top of the main heap). A burst of requests runs on up
/// to 128 blocking threads, each allocating in one of glibc's arenas (up to 8 per core);
/// what they freed stays resident until trimmed, so an idle server would keep its peak.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only walks the allocator's own free lists,
    // under the arenas' locks (it is safe to call from any thread at any time).
    unsafe {
        libc::malloc_trim(0);
    }
}
