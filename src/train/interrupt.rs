//! Ctrl-C and SIGTERM: the first one asks the run to stop after the current
//! step (the loop then writes a checkpoint and returns
//! [`Interrupted`]); a second one exits at once with status
//! 130, for a user who does not want to wait.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The run stopped on Ctrl-C (or SIGTERM) after a checkpoint.
#[derive(Debug, thiserror::Error)]
#[error("interrupted after iteration {iteration}; checkpoint {}", checkpoint.display())]
pub struct Interrupted {
    pub iteration: u64,
    pub checkpoint: PathBuf,
}

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers (once per process; later calls do nothing).
pub fn install() -> std::io::Result<()> {
    if FLAG.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag before the second handler sets it.
        signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone())?;
        signal_hook::flag::register(sig, flag.clone())?;
    }
    let _ = FLAG.set(flag);
    Ok(())
}

/// Whether a stop was asked for (always false without [`install`]).
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst))
}

/// Asks the running loop to stop as Ctrl-C would (for tests and embedders).
pub fn request() {
    let _ = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)));
    FLAG.get().expect("set above").store(true, Ordering::SeqCst);
}

/// Clears a request (a new run in the same process).
pub fn clear() {
    if let Some(f) = FLAG.get() {
        f.store(false, Ordering::SeqCst);
    }
}

/// The exit status of a command whose run may have been interrupted: on
/// [`Interrupted`], says where the checkpoint is and how
/// to continue (`resume_with RUN_DIR`), and returns status 130 (the shell's
/// convention for Ctrl-C); any other result passes through.
pub fn exit_status(
    result: anyhow::Result<std::process::ExitCode>,
    resume_with: &str,
) -> anyhow::Result<std::process::ExitCode> {
    match result {
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => {
            let i = e.downcast_ref::<Interrupted>().expect("checked");
            let run_dir = i
                .checkpoint
                .parent()
                .and_then(|c| c.parent())
                .unwrap_or(&i.checkpoint);
            eprintln!(
                "interrupted after step {}; saved {}\nresume with: {resume_with} {}",
                i.iteration,
                i.checkpoint.display(),
                run_dir.display()
            );
            Ok(std::process::ExitCode::from(130))
        }
        other => other,
    }
}
