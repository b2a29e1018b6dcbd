#!/usr/bin/env bash
# Both builds of the gemm crate (AVX2 kernels only, and with x86-v4), 1 and 2 threads, alternated.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release -q --target-dir target/avx2
cargo build --release -q --features v4 --target-dir target/v4
for t in 1 2; do
  target/avx2/release/gemm-rates "$t"
  target/v4/release/gemm-rates "$t"
done
