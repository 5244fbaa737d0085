//! Handing the C heap's freed pages back to the system. Rust's allocations
//! go to jemalloc (`src/main.rs`), which returns what it frees by itself;
//! SQLite and librdkafka allocate with glibc's malloc, which keeps what they
//! free in its arenas for reuse. After a burst (a backlog worked off, a page
//! of orders read whole) those pages stay resident: in a ten-minute overload
//! soak glibc's arenas held 140 MB, and one `malloc_trim(0)` took them to
//! 83 MB (docs/benchmarks.md). `udders up` and `udders service` call it every
//! [`RELEASE_EVERY`], once per process (`src/main.rs`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the running process hands freed C heap back.
pub const RELEASE_EVERY: Duration = Duration::from_secs(10);

/// Every `every`, until cancelled, asks the C allocator to return the pages
/// it holds free ([`release`]), on a blocking thread: glibc walks and locks
/// its arenas one by one meanwhile.
pub async fn release_freed_memory(every: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: nothing to give back yet
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let released = tokio::task::spawn_blocking(release).await.unwrap_or(false);
        tracing::trace!(released, "asked the C allocator to return its free pages");
    }
}

/// Asks glibc's malloc to return the free pages of every arena to the system
/// (`malloc_trim(0)`); true when it gave some back. Elsewhere (musl, macOS)
/// it does nothing and returns false: those allocators return memory
/// themselves or have no such call.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release() -> bool {
    // SAFETY: malloc_trim takes no pointers and touches only glibc's own free
    // lists, under the arenas' locks; any thread may call it at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Not glibc: nothing to ask.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release() -> bool {
    false
}

#[cfg(test)]
mod tests {
    /// A test binary allocates with the system allocator (jemalloc is the
    /// binary's, not the library's), so on glibc memory freed by another
    /// thread sits in that thread's arena until it is released.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn memory_freed_in_another_threads_arena_is_given_back() {
        let pins = std::thread::spawn(|| {
            // 64 KiB blocks, below glibc's mmap threshold, so they come from
            // this thread's arena; each followed by a small block that stays
            // alive, so freeing them leaves holes glibc does not return on
            // its own (it trims only the top of a heap).
            let mut blocks = Vec::new();
            let mut pins = Vec::new();
            for i in 0..2_000 {
                blocks.push(vec![i as u8; 64 * 1024]);
                pins.push(vec![i as u8; 64]);
            }
            drop(blocks);
            pins
        })
        .join()
        .unwrap();
        assert!(super::release(), "125 MB freed in a thread's arena, and nothing given back");
        drop(pins);
    }
}
