//! ftb's Llama against candle-transformers' quantized Llama on the same GGUF,
//! in one process: last-position logits of a few prompts, and greedy
//! generation speed at batch 1 (alternating the two), plus ftb at larger
//! batches for context.
//!
//! ```text
//! cargo run --release --manifest-path tools/candle-compare/Cargo.toml -- \
//!     [--model PATH] [--threads N] [--new-tokens 32] [--repeats 5] \
//!     [--batches 4,16] [--only ftb|candle] [--skip-logits] [--skip-speed] \
//!     [--candle-f32]
//! ```
//!
//! `--candle-f32` adds candle on the F32-dequantised weights (see below) to
//! the batch-1 speed rows; `--batches ""` skips ftb's larger batches.
//!
//! * Token ids come from the GGUF's own tokenizer as ftb reads it
//!   (`load_gguf`), and the same ids go to both models.
//! * candle: `candle_transformers::models::quantized_llama::ModelWeights::
//!   from_gguf`, which keeps the Q4_1 / Q8_0 blocks in memory and multiplies
//!   them with activations quantised to Q8 (llama.cpp's scheme). For the
//!   logits check it is also loaded a second time from an in-memory copy of
//!   the file whose tensors candle has dequantised to F32 (then `QMatMul`
//!   holds plain f32 tensors and multiplies in f32): that isolates the
//!   quantised-activation error from any difference in the model code.
//! * ftb: `ftb::llm::gguf::load_gguf` (dequantised to f32 at load), logits
//!   from `LlamaModel::forward`, generation with `ftb::llm::generate`
//!   (greedy, KV-cached, no stop token).
//! * Threads: both use `--threads` (default: all available CPUs). ftb's burn
//!   `flex` backend runs on the global rayon pool (built here with that many
//!   threads); candle runs its quantised matmuls on its own barrier pool
//!   (`CANDLE_NUM_THREADS` - 1 workers + the calling thread) and other ops on
//!   its own rayon pool (`RAYON_NUM_THREADS`); both variables are set to
//!   `--threads` before candle starts.
//! * `--only ftb|candle` loads and times one implementation only, so that the
//!   process's peak resident memory (VmHWM, printed at the end) is that
//!   implementation's alone.

use ftb::numerics::median_range;
use anyhow::{Context, Result, bail};
use burn::tensor::Device as BurnDevice;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device as CandleDevice, Tensor as CandleTensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use ftb::llm::gguf::{GgufFile, load_gguf};
use ftb::llm::model::token_tensor;
use ftb::llm::{GenerateConfig, LlamaModel, Tokenizer, generate};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The allocator of the `ftb` binary (and of `examples/llm_throughput.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PROMPTS: [&str; 4] = [
    "The capital of France is",
    "Water is made of",
    "One, two, three,",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
];
/// The prompt of the speed runs (as in BENCHMARKS.md's SmolLM2 rows).
const SPEED_PROMPT: &str = "The capital of France is a city";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Only {
    Both,
    Ftb,
    Candle,
}

struct Args {
    model: PathBuf,
    threads: usize,
    new_tokens: usize,
    repeats: usize,
    batches: Vec<usize>,
    only: Only,
    logits: bool,
    speed: bool,
    candle_f32: bool,
}

fn parse_args() -> Result<Args> {
    let default_model = std::env::var_os("FTB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ftb")))
        .unwrap_or_default()
        .join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let mut a = Args {
        model: default_model,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        new_tokens: 32,
        repeats: 5,
        batches: vec![4, 16],
        only: Only::Both,
        logits: true,
        speed: true,
        candle_f32: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = PathBuf::from(value()?),
            "--threads" => a.threads = value()?.parse()?,
            "--new-tokens" => a.new_tokens = value()?.parse()?,
            "--repeats" => a.repeats = value()?.parse()?,
            "--batches" => {
                let v = value()?;
                a.batches = if v.is_empty() {
                    Vec::new()
                } else {
                    v.split(',').map(str::parse).collect::<Result<_, _>>()?
                }
            }
            "--only" => {
                a.only = match value()?.as_str() {
                    "ftb" => Only::Ftb,
                    "candle" => Only::Candle,
                    "both" => Only::Both,
                    o => bail!("--only takes ftb, candle or both, not {o}"),
                }
            }
            "--skip-logits" => a.logits = false,
            "--skip-speed" => a.speed = false,
            "--candle-f32" => a.candle_f32 = true,
            "-h" | "--help" => {
                println!(
                    "candle-compare [--model PATH] [--threads N] [--new-tokens N] [--repeats N] \
                     [--batches 4,16] [--only ftb|candle|both] [--skip-logits] [--skip-speed] [--candle-f32]"
                );
                std::process::exit(0);
            }
            o => bail!("unknown argument {o}"),
        }
    }
    if a.only != Only::Both && a.logits {
        // The logits check needs both models; --only is for clean memory figures.
        a.logits = false;
    }
    if a.repeats == 0 || a.new_tokens == 0 || a.threads == 0 {
        bail!("--repeats, --new-tokens and --threads must be positive");
    }
    Ok(a)
}

fn status_mb(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn argmax(x: &[f32]) -> usize {
    (0..x.len()).max_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap()
}

fn top_k(x: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[b].total_cmp(&x[a]));
    idx.truncate(k);
    idx
}

// ---------------------------------------------------------------- candle ----

struct Candle {
    model: ModelWeights,
    device: CandleDevice,
}

impl Candle {
    /// The file as it is: quantised weights, quantised matmuls.
    fn load(path: &Path) -> Result<Self> {
        let device = CandleDevice::Cpu;
        let mut file = std::fs::File::open(path)?;
        let content = gguf_file::Content::read(&mut file)?;
        let model = ModelWeights::from_gguf(content, &mut file, &device)?;
        Ok(Self { model, device })
    }

    /// The same file with every tensor dequantised by candle to F32 (written
    /// to an in-memory GGUF and loaded from there): candle's own f32 path.
    fn load_f32(path: &Path) -> Result<Self> {
        let device = CandleDevice::Cpu;
        let mut file = std::fs::File::open(path)?;
        let content = gguf_file::Content::read(&mut file)?;
        let mut tensors = Vec::new();
        for name in content.tensor_infos.keys() {
            let q = content.tensor(&mut file, name, &device)?;
            let f = QTensor::quantize(&q.dequantize(&device)?, GgmlDType::F32)?;
            tensors.push((name.clone(), f));
        }
        let metadata: Vec<(&str, &gguf_file::Value)> = content
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let tensor_refs: Vec<(&str, &QTensor)> =
            tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let mut buf = Cursor::new(Vec::new());
        gguf_file::write(&mut buf, &metadata, &tensor_refs)?;
        drop(tensors);
        buf.set_position(0);
        let content = gguf_file::Content::read(&mut buf)?;
        let model = ModelWeights::from_gguf(content, &mut buf, &device)?;
        Ok(Self { model, device })
    }

    /// Last-position logits of a fresh sequence.
    fn last_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        self.model.clear_kv_cache();
        let x = CandleTensor::new(ids, &self.device)?.unsqueeze(0)?;
        let logits = self.model.forward(&x, 0)?;
        Ok(logits
            .squeeze(0)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1()?)
    }

    /// Greedy decoding of `n` tokens at batch 1 (prefill + n - 1 single-token
    /// steps on the KV cache), as candle's quantized example does.
    fn generate_greedy(&mut self, prompt: &[u32], n: usize) -> Result<Vec<u32>> {
        self.model.clear_kv_cache();
        let x = CandleTensor::new(prompt, &self.device)?.unsqueeze(0)?;
        let logits: Vec<f32> = self.model.forward(&x, 0)?.squeeze(0)?.to_vec1()?;
        let mut out = vec![argmax(&logits) as u32];
        for i in 1..n {
            let x = CandleTensor::new(&[out[i - 1]], &self.device)?.unsqueeze(0)?;
            let logits: Vec<f32> = self
                .model
                .forward(&x, prompt.len() + i - 1)?
                .squeeze(0)?
                .to_vec1()?;
            out.push(argmax(&logits) as u32);
        }
        Ok(out)
    }
}

// ------------------------------------------------------------------- ftb ----

fn ftb_last_logits(model: &LlamaModel, ids: &[u32]) -> Vec<f32> {
    let device = model.device();
    let flat: Vec<i64> = ids.iter().map(|&x| x as i64).collect();
    let logits = model.forward(token_tensor(&flat, 1, ids.len(), &device));
    let v = model.vocab_size();
    let all: Vec<f32> = logits.into_data().convert::<f32>().try_to_vec().unwrap();
    all[(ids.len() - 1) * v..].to_vec()
}

fn ftb_generate(model: &LlamaModel, prompt: &[u32], batch: usize, n: usize) -> Vec<Vec<u32>> {
    let prompts = vec![prompt.to_vec(); batch];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let samples =
        generate(model, &prompts, &GenerateConfig::greedy(n), &mut rng).expect("generate");
    samples.into_iter().map(|s| s.tokens).collect()
}

// ------------------------------------------------------------------ main ----

fn compare(name: &str, a: &[f32], b: &[f32]) -> String {
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    let mean = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() as f64)
        .sum::<f64>()
        / a.len() as f64;
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
    let (ta, tb) = (top_k(a, 5), top_k(b, 5));
    format!(
        "{name}: max |diff| {diff:.3e} (mean {mean:.2e}, logit scale {scale:.1}); argmax {} vs {} ({}); top-5 {:?} vs {:?}",
        ta[0],
        tb[0],
        if ta[0] == tb[0] { "agree" } else { "DIFFER" },
        ta,
        tb
    )
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if !args.model.is_file() {
        bail!(
            "{} is absent (scripts/fetch-smollm2.sh installs it)",
            args.model.display()
        );
    }
    // SAFETY: no other thread exists yet.
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", args.threads.to_string());
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global()
        .context("global rayon pool")?;
    println!(
        "model {}; threads: ftb (global rayon pool) {}, candle (get_num_threads) {}; only {:?}",
        args.model.display(),
        rayon::current_num_threads(),
        candle_core::utils::get_num_threads(),
        args.only
    );
    println!(
        "candle cpu features: avx {}, f16c {}",
        candle_core::utils::with_avx(),
        candle_core::utils::with_f16c()
    );

    // The token ids of both come from the GGUF's tokenizer as ftb reads it.
    let tokenizer: Tokenizer = GgufFile::open(&args.model)?
        .tokenizer()?
        .context("the GGUF has no tokenizer")?;
    // Peak memory from here on: the models (and their loading) only.
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let ftb_model = if args.only != Only::Candle {
        let start = Instant::now();
        let (m, _) = load_gguf(&args.model, &BurnDevice::flex())?;
        println!(
            "ftb: loaded in {:.2?}; VmRSS {:.0} MB",
            start.elapsed(),
            status_mb("VmRSS:")
        );
        Some(m)
    } else {
        None
    };
    let mut candle = if args.only != Only::Ftb {
        let start = Instant::now();
        let c = Candle::load(&args.model)?;
        println!(
            "candle: loaded in {:.2?}; VmRSS {:.0} MB",
            start.elapsed(),
            status_mb("VmRSS:")
        );
        Some(c)
    } else {
        None
    };

    if args.logits {
        let ftb_model = ftb_model.as_ref().unwrap();
        let candle = candle.as_mut().unwrap();
        let start = Instant::now();
        let mut candle_f32 = Candle::load_f32(&args.model)?;
        println!(
            "candle (weights dequantised to F32): loaded in {:.2?}",
            start.elapsed()
        );
        println!("\n## logits at the last prompt position");
        for p in PROMPTS {
            let ids = tokenizer.encode(p)?;
            let f = ftb_last_logits(ftb_model, &ids);
            let cq = candle.last_logits(&ids)?;
            let cf = candle_f32.last_logits(&ids)?;
            println!("prompt {p:?} ({} tokens)", ids.len());
            println!(
                "  {}",
                compare("ftb vs candle Q4_1 (Q8 activations)", &f, &cq)
            );
            println!(
                "  {}",
                compare("ftb vs candle F32-dequantised      ", &f, &cf)
            );
            println!(
                "  {}",
                compare("candle F32 vs candle Q4_1          ", &cf, &cq)
            );
        }
        // Greedy continuations of the first prompt, 16 tokens each.
        let ids = tokenizer.encode(PROMPTS[0])?;
        let gf = ftb_generate(ftb_model, &ids, 1, 16).remove(0);
        let gq = candle.generate_greedy(&ids, 16)?;
        let gc = candle_f32.generate_greedy(&ids, 16)?;
        let same = |a: &[u32], b: &[u32]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
        println!("greedy, 16 tokens after {:?}:", PROMPTS[0]);
        println!("  ftb           {:?}", tokenizer.decode(&gf)?);
        println!("  candle Q4_1   {:?}", tokenizer.decode(&gq)?);
        println!("  candle F32    {:?}", tokenizer.decode(&gc)?);
        println!(
            "  common prefix with ftb: candle Q4_1 {} / 16 tokens, candle F32 {} / 16",
            same(&gf, &gq),
            same(&gf, &gc)
        );
    }

    if args.speed {
        let prompt = tokenizer.encode(SPEED_PROMPT)?;
        let n = args.new_tokens;
        println!(
            "\n## greedy generation: prompt {SPEED_PROMPT:?} ({} tokens), {n} new tokens, no stop token; \
             tokens/s = batch x {n} / wall time (prefill included); 1 warm-up, {} timed repeats",
            prompt.len(),
            args.repeats
        );
        // candle with every tensor dequantised to F32 (its gemm f32 path), on request.
        let mut candle_f32 = if args.candle_f32 && args.only != Only::Ftb {
            Some(Candle::load_f32(&args.model)?)
        } else {
            None
        };
        // Warm-up.
        if let Some(m) = &ftb_model {
            ftb_generate(m, &prompt, 1, 2);
        }
        if let Some(c) = candle.as_mut() {
            c.generate_greedy(&prompt, 2)?;
        }
        if let Some(c) = candle_f32.as_mut() {
            c.generate_greedy(&prompt, 2)?;
        }
        let mut rates: [Vec<f64>; 3] = Default::default();
        const NAMES: [&str; 3] = ["ftb   ", "candle", "candle F32"];
        for rep in 0..args.repeats {
            // Rotate which goes first.
            for k in 0..3 {
                let which = (rep + k) % 3;
                let t = Instant::now();
                let out = match which {
                    0 => match &ftb_model {
                        Some(m) => ftb_generate(m, &prompt, 1, n).remove(0),
                        None => continue,
                    },
                    1 => match candle.as_mut() {
                        Some(c) => c.generate_greedy(&prompt, n)?,
                        None => continue,
                    },
                    _ => match candle_f32.as_mut() {
                        Some(c) => c.generate_greedy(&prompt, n)?,
                        None => continue,
                    },
                };
                let s = t.elapsed().as_secs_f64();
                assert_eq!(out.len(), n);
                rates[which].push(n as f64 / s);
                println!(
                    "  repeat {rep}: {} batch 1 {:7.2} tokens/s",
                    NAMES[which],
                    n as f64 / s
                );
            }
        }
        let [rf, rc, rcf] = rates;
        let mut rows = Vec::new();
        if !rf.is_empty() {
            rows.push(("ftb (f32 weights)", 1usize, rf));
        }
        if !rc.is_empty() {
            rows.push(("candle quantized_llama (Q4_1 weights)", 1, rc));
        }
        if !rcf.is_empty() {
            rows.push((
                "candle quantized_llama (weights dequantised to F32)",
                1,
                rcf,
            ));
        }
        if let Some(m) = &ftb_model {
            for &b in &args.batches {
                let mut r = Vec::new();
                ftb_generate(m, &prompt, b, 2);
                for rep in 0..args.repeats {
                    let t = Instant::now();
                    let out = ftb_generate(m, &prompt, b, n);
                    let s = t.elapsed().as_secs_f64();
                    assert!(out.iter().all(|o| o.len() == n));
                    r.push((b * n) as f64 / s);
                    println!(
                        "  repeat {rep}: ftb    batch {b} {:7.2} tokens/s",
                        (b * n) as f64 / s
                    );
                }
                rows.push(("ftb (f32 weights)", b, r));
            }
        }
        println!("\n| implementation | batch | tokens/s median | min–max | repeats |");
        println!("|---|---|---|---|---|");
        for (name, b, r) in rows {
            let k = r.len();
            let (med, lo, hi) = median_range(&r);
            println!("| {name} | {b} | {med:.1} | {lo:.1}–{hi:.1} | {k} |");
        }
    }
    println!(
        "\npeak RSS (VmHWM) {:.0} MB {}, VmRSS now {:.0} MB",
        status_mb("VmHWM:"),
        if peak_reset {
            "since the models started loading"
        } else {
            "of the whole process (the reset via /proc/self/clear_refs failed)"
        },
        status_mb("VmRSS:")
    );
    Ok(())
}
