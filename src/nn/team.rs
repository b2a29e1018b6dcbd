//! A small team of helper threads that spin briefly before sleeping, for the
//! fused layers' split products and element passes ([`super::linear`]).
//!
//! Why not rayon: its idle workers fall asleep after a few microseconds of
//! looking for work, so each of a learner step's dozen splits paid a futex
//! wake-up of the other core (about ten context switches per step at batch
//! 16, measured with `perf stat`), which on this project's 2-core VMs cost
//! more than a small product's second half saved: a second thread made batch
//! 16 up to 2x slower (BENCHMARKS.md, "1 -> 2 threads"). A team helper keeps
//! spinning for [`SPIN`] after each job, so the splits of one step (which
//! follow each other within tens of microseconds) find it awake; it then
//! parks, so an idle process does not burn a core.
//!
//! One caller at a time uses the team; a second concurrent caller (an actor
//! thread sampling while the learner trains) runs its pieces itself, which is
//! what it did on the rayon pool's single thread anyway.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! let hits: Vec<AtomicUsize> = (0..5).map(|_| AtomicUsize::new(0)).collect();
//! ftb::policy::team::run(5, 2, &|p| {
//!     hits[p].fetch_add(1, Ordering::Relaxed);
//! });
//! assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
//! ```

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a helper keeps looking for the next job before it parks.
pub const SPIN: Duration = Duration::from_micros(200);

/// A job: run piece `p` (its own disjoint part of the work).
type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// The state helpers and the caller share.
struct Shared {
    /// High 32 bits: the job's number; low 32: the next unclaimed piece.
    /// Claims compare-and-swap on both, so a helper that saw an old job can
    /// never claim a piece of a newer one.
    state: AtomicU64,
    /// Pieces of the current job.
    pieces: AtomicUsize,
    /// Pieces finished (by anyone) of the current job.
    done: AtomicUsize,
    /// The first panic of a piece of the current job (re-raised on the
    /// caller with its own message once every piece has finished).
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// The current job, erased to `'static`: written by the caller only
    /// while no job is open, read by helpers only after claiming a piece of
    /// an open job (which keeps the caller, and the closure, waiting).
    job: UnsafeCell<Option<Job<'static>>>,
    /// Helpers parked (they need a notify).
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is accessed under the protocol described on the field.
unsafe impl Sync for Shared {}

/// The process's team: helper threads and the caller's exclusive use.
struct Team {
    shared: &'static Shared,
    helpers: usize,
    /// Held by the one caller using the team.
    user: Mutex<()>,
}

fn team() -> &'static Team {
    static TEAM: OnceLock<Team> = OnceLock::new();
    TEAM.get_or_init(|| {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            state: AtomicU64::new(0),
            pieces: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panic: Mutex::new(None),
            job: UnsafeCell::new(None),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut helpers = 0;
        for i in 0..cores.saturating_sub(1) {
            let spawned = std::thread::Builder::new()
                .name(format!("ftb-team-{i}"))
                .spawn(move || helper(shared));
            if spawned.is_ok() {
                helpers += 1;
            }
        }
        Team {
            shared,
            helpers,
            user: Mutex::new(()),
        }
    })
}

/// A helper's life: wait for a new job (spinning, then parked), take its
/// pieces until none is left, repeat.
fn helper(shared: &'static Shared) {
    let mut seen = 0u32;
    loop {
        seen = wait_for_job(shared, seen);
        claim_pieces(shared, seen);
    }
}

/// The number of the next job after `seen`, once one is published.
fn wait_for_job(shared: &Shared, seen: u32) -> u32 {
    let number = |s: u64| (s >> 32) as u32;
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        let now = number(shared.state.load(Ordering::Acquire));
        if now != seen {
            return now;
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(256) {
            if start.elapsed() > SPIN {
                break;
            }
            // Lets a runnable thread (an actor, another process) have this
            // core: spinning must never delay real work.
            std::thread::yield_now();
        }
    }
    let mut guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
    shared.sleepers.fetch_add(1, Ordering::SeqCst);
    loop {
        let now = number(shared.state.load(Ordering::SeqCst));
        if now != seen {
            shared.sleepers.fetch_sub(1, Ordering::SeqCst);
            return now;
        }
        guard = shared.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
    }
}

/// Claims and runs pieces of job `number` until none is left (or a newer
/// job replaced it).
fn claim_pieces(shared: &Shared, number: u32) {
    loop {
        let state = shared.state.load(Ordering::Acquire);
        if (state >> 32) as u32 != number {
            return;
        }
        let piece = (state & 0xffff_ffff) as usize;
        if piece >= shared.pieces.load(Ordering::Acquire) {
            return;
        }
        if shared
            .state
            .compare_exchange_weak(state, state + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue;
        }
        // SAFETY: piece `piece` of the open job is ours and not done, so the
        // caller is still waiting and the job it published is alive.
        let job = unsafe { (*shared.job.get()).expect("an open job") };
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(piece)))
        {
            let mut first = shared.panic.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert(payload);
        }
        shared.done.fetch_add(1, Ordering::AcqRel);
    }
}

/// Every piece on the calling thread, with the team's panic rule: all
/// pieces run, then the first panic is re-raised.
fn run_here(pieces: usize, job: &(dyn Fn(usize) + Sync)) {
    let mut first = None;
    for p in 0..pieces {
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(p))) {
            first.get_or_insert(payload);
        }
    }
    if let Some(payload) = first {
        std::panic::resume_unwind(payload);
    }
}

/// Runs `job(p)` for every `p` in `0..pieces`, each exactly once, on the
/// calling thread and up to `threads - 1` team helpers; returns when all are
/// done. With `threads <= 1`, one piece, or the team in use by another
/// thread, the caller runs every piece itself. A panicking piece does not
/// stop the others: once all have run, the first panic is re-raised here.
pub fn run(pieces: usize, threads: usize, job: &(dyn Fn(usize) + Sync)) {
    if pieces <= 1 || threads <= 1 {
        run_here(pieces, job);
        return;
    }
    let team = team();
    let _user = match team.user.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::Poisoned(guard)) => guard.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            run_here(pieces, job);
            return;
        }
    };
    if team.helpers == 0 {
        run_here(pieces, job);
        return;
    }
    let shared = team.shared;
    let pieces = pieces.min(u32::MAX as usize);
    // SAFETY: no job is open (we hold `user`, and the last caller waited for
    // all of its pieces), so no helper reads `job` now. The 'static erasure
    // is sound because this function returns only after every piece ran.
    unsafe {
        *shared.job.get() = Some(std::mem::transmute::<Job<'_>, Job<'static>>(job));
    }
    shared.pieces.store(pieces, Ordering::Release);
    shared.done.store(0, Ordering::Release);
    let number = ((shared.state.load(Ordering::Acquire) >> 32) as u32).wrapping_add(1);
    shared
        .state
        .store(u64::from(number) << 32, Ordering::SeqCst);
    if shared.sleepers.load(Ordering::SeqCst) > 0 {
        let _guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
        shared.wake.notify_all();
    }
    // The caller takes pieces too, then waits for the helpers' last ones.
    claim_pieces(shared, number);
    let mut spins = 0u32;
    while shared.done.load(Ordering::Acquire) < pieces {
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(1024) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    // SAFETY: every piece is done; helpers no longer read the job.
    unsafe { *shared.job.get() = None };
    let payload = shared
        .panic
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(payload) = payload {
        std::panic::resume_unwind(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_runs_once_over_many_jobs() {
        for pieces in [0usize, 1, 2, 3, 7, 64] {
            for _ in 0..200 {
                let hits: Vec<AtomicUsize> = (0..pieces).map(|_| AtomicUsize::new(0)).collect();
                run(pieces, 2, &|p| {
                    hits[p].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn concurrent_callers_each_get_all_their_pieces() {
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..500 {
                        let sum = AtomicUsize::new(0);
                        run(9, 4, &|p| {
                            sum.fetch_add(p + 1, Ordering::Relaxed);
                        });
                        assert_eq!(sum.load(Ordering::Relaxed), 45);
                    }
                });
            }
        });
    }

    #[test]
    fn a_panicking_piece_reaches_the_caller_with_its_message_after_all_pieces() {
        let done = AtomicUsize::new(0);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(8, 2, &|p| {
                if p == 5 {
                    panic!("piece five failed");
                }
                done.fetch_add(1, Ordering::Relaxed);
            })
        }));
        let payload = caught.expect_err("the panic is re-raised");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"piece five failed"));
        assert_eq!(done.load(Ordering::Relaxed), 7);
        // The team still works afterwards.
        let sum = AtomicUsize::new(0);
        run(4, 2, &|p| {
            sum.fetch_add(p, Ordering::Relaxed);
        });
        assert_eq!(sum.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn jobs_after_the_helpers_parked_still_run() {
        for _ in 0..3 {
            std::thread::sleep(SPIN * 5);
            let sum = AtomicUsize::new(0);
            run(4, 2, &|p| {
                sum.fetch_add(p, Ordering::Relaxed);
            });
            assert_eq!(sum.load(Ordering::Relaxed), 6);
        }
    }
}
