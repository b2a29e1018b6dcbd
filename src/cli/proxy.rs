//! `ftb proxy`: proxy models for the `proxy` molecule reward (cargo feature
//! `chem`).

use crate::chem::proxy::{self, ProxyTraining, SETTINGS_FILE};
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand, Debug)]
enum Which {
    /// Train a fingerprint MLP on a CSV of SMILES and values (a header line
    /// names the columns): a seeded train / validation split, the errors
    /// printed (and kept in proxy.json), the model saved as
    /// model.safetensors. Use it with `--set 'env.molecule.reward=["proxy"]'
    /// --set env.molecule.proxy=DIR`.
    Train(TrainArgs),
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    #[arg(long)]
    csv: PathBuf,
    #[arg(long, default_value = "smiles")]
    smiles_column: String,
    #[arg(long, default_value = "value")]
    value_column: String,
    /// Output directory (proxy.json, model.safetensors).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Share of the rows held out for validation.
    #[arg(long, default_value_t = ProxyTraining::default().valid_fraction)]
    valid_fraction: f64,
    #[arg(long, default_value_t = ProxyTraining::default().epochs)]
    epochs: usize,
    #[arg(long, default_value_t = ProxyTraining::default().hidden)]
    hidden: usize,
    /// Hidden layers.
    #[arg(long, default_value_t = ProxyTraining::default().layers)]
    layers: usize,
    #[arg(long, default_value_t = ProxyTraining::default().lr)]
    lr: f64,
    #[arg(long, default_value_t = ProxyTraining::default().batch)]
    batch: usize,
    /// Morgan radius of the features.
    #[arg(long, default_value_t = ProxyTraining::default().radius)]
    radius: u32,
    /// Folded width of the features.
    #[arg(long, default_value_t = ProxyTraining::default().n_bits)]
    bits: usize,
    /// Replace the files of an existing proxy directory.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.which {
        Which::Train(a) => train(a),
    }
}

fn train(a: TrainArgs) -> Result<ExitCode> {
    if a.out.join(SETTINGS_FILE).exists() && !a.overwrite {
        bail!(
            "{} already holds a proxy; pass --overwrite to replace it",
            a.out.display()
        );
    }
    let cfg = ProxyTraining {
        radius: a.radius,
        n_bits: a.bits,
        hidden: a.hidden,
        layers: a.layers,
        epochs: a.epochs,
        lr: a.lr,
        batch: a.batch,
        valid_fraction: a.valid_fraction,
        seed: a.seed,
    };
    let clock = std::time::Instant::now();
    // The whole file is checked before training starts.
    let data = proxy::read_csv(&a.csv, &a.smiles_column, &a.value_column)?;
    let csv = a.csv.display().to_string();
    let p = proxy::train(&data, &cfg, (&csv, &a.smiles_column, &a.value_column))?;
    p.save(&a.out)?;
    let r = &p.settings.report;
    println!(
        "{} rows: {} train, {} validation (seed {})",
        data.len(),
        r.n_train,
        r.n_valid,
        a.seed
    );
    println!("train RMSE       {:.4}", r.train_rmse);
    println!(
        "validation RMSE  {:.4}  (MAE {:.4}, R^2 {:.3})",
        r.valid_rmse, r.valid_mae, r.valid_r2
    );
    println!(
        "validation RMSE of predicting the training mean  {:.4}",
        r.valid_rmse_of_mean
    );
    println!(
        "wrote {} ({:.1} s)",
        a.out.display(),
        clock.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
