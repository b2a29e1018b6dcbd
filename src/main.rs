use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> std::process::ExitCode {
    keep_freed_memory_mapped();
    ftb::cli::main()
}

/// A training step frees and re-allocates the same multi-megabyte activations
/// every iteration. By default mimalloc hands freed memory back to the OS after
/// a delay, so each step faulted in and zeroed fresh pages again (5,900-7,300 page
/// faults in 40 steps at batch 512, about 490 without purging, and 9% less CPU:
/// BENCHMARKS.md). The process keeps its peak instead, which it reaches anyway.
fn keep_freed_memory_mapped() {
    // `mi_option_purge_delay` in mimalloc 3.x (libmimalloc-sys names no
    // constant for it); another major version is left untouched.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: reading the version and setting an option have no preconditions.
    unsafe {
        if libmimalloc_sys::mi_version() / 10_000 == 3 {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
        }
    }
}
