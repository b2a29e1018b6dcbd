//! f32 GFLOP/s of `gemm::gemm` at the shapes of ftb's learner (2 x 256 MLP,
//! about 4,000 evaluated states per batch-512 iteration on hypergrid-small),
//! best of 5 runs of at least 0.2 s each. Usage: `gemm-rates THREADS`.

use std::time::Instant;

/// Seconds per product `[m, k] x [k, n]`; `lhs_t` reads the left operand
/// transposed (a weight gradient `x^T g`), as autodiff hands it over.
fn seconds(m: usize, k: usize, n: usize, lhs_t: bool, par: gemm::Parallelism) -> f64 {
    let a = vec![1.0f32; m * k];
    let b = vec![0.5f32; k * n];
    let mut c = vec![0.0f32; m * n];
    let (a_rs, a_cs) = if lhs_t { (1, m as isize) } else { (k as isize, 1) };
    let mut run = |reps: usize| {
        let start = Instant::now();
        for _ in 0..reps {
            // SAFETY: the pointers and strides describe the three buffers above.
            unsafe {
                gemm::gemm(
                    m, n, k, c.as_mut_ptr(), 1, n as isize, false, a.as_ptr(), a_cs, a_rs,
                    b.as_ptr(), 1, n as isize, 0.0f32, 1.0f32, false, false, false, par,
                );
            }
        }
        start.elapsed().as_secs_f64()
    };
    let mut reps = 1;
    while run(reps) < 0.2 {
        reps *= 2;
    }
    (0..5).map(|_| run(reps) / reps as f64).fold(f64::INFINITY, f64::min)
}

fn main() {
    let threads: usize = std::env::args().nth(1).map_or(1, |s| s.parse().expect("THREADS"));
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().expect("pool");
    let par = if threads == 1 {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(threads)
    };
    let v4 = cfg!(feature = "v4");
    for (m, k, n, lhs_t, name) in [
        (512, 512, 512, false, "512^3"),
        (4096, 256, 256, false, "hidden forward 4096x256x256"),
        (4096, 16, 256, false, "input layer 4096x16x256"),
        (256, 4096, 256, true, "hidden weight grad (x^T g) 256x4096x256"),
        (128, 256, 256, false, "hidden forward 128x256x256"),
        (16, 256, 256, false, "hidden forward 16x256x256"),
    ] {
        let gflops = 2.0 * (m * k * n) as f64 / seconds(m, k, n, lhs_t, par) / 1e9;
        println!("x86-v4 {v4:5}  threads {threads}  {name:42} {gflops:7.1} GFLOP/s");
    }
}
