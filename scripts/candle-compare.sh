#!/usr/bin/env bash
# ftb vs candle-transformers' quantized Llama on the SmolLM2 fixture: logits
# at the last prompt position and greedy generation speed (tools/candle-compare,
# a separate Cargo project that the ftb build never compiles). Arguments are
# passed to the tool, e.g. --repeats 7, --only ftb, --skip-logits.
# CARGO_TARGET_DIR is honoured (default: tools/candle-compare/target).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model="${FTB_CACHE:-$HOME/.cache/ftb}/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if [[ ! -s "$model" ]]; then
    echo "error: $model is absent; run scripts/fetch-smollm2.sh first" >&2
    exit 1
fi
exec cargo run --release --manifest-path "$root/tools/candle-compare/Cargo.toml" -- \
    --model "$model" "$@"
