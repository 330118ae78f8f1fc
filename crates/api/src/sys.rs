//! The server's direct calls into the C library: glibc's allocator tuning.

/// At most one glibc arena per core (instead of glibc's 8 per core), before any thread
/// starts. A burst of requests runs on up to 128 blocking threads; with 8 arenas a core,
/// each arena of a thread that ran keeps the top of its heap resident after the burst
/// (`malloc_trim` returns only free chunks inside a secondary arena, not its top). No more
/// threads run at once than there are cores, so one arena each keeps them apart.
pub fn limit_arenas() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max = i32::try_from(cores).unwrap_or(i32::MAX);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes no pointer; called from main before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, max);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = max;
}

/// Hands the allocator's free memory back to the kernel (glibc's `malloc_trim(0)`: the
/// main heap's top and the free pages of every arena), so that an idle server does not keep
/// the peak of the last burst.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only walks the allocator's own free lists,
    // under the arenas' locks (it is safe to call from any thread at any time).
    unsafe {
        libc::malloc_trim(0);
    }
}
