#!/usr/bin/env python3
"""An independent forward pass of a llama-architecture GGUF, for checking ftb's.

Reads the file with the `gguf` package's reader and dequantiser (not ftb's),
computes the decoder in float64 numpy, and prints the logits at the last
position as JSON: {"ids": [...], "logits": [...]}.

Independence from ftb on purpose: the q/k weights are used exactly as stored
(llama.cpp's permuted row order) with llama.cpp's interleaved RoPE (pairs
(2i, 2i+1)), whereas ftb un-permutes the rows and uses Hugging Face's
rotate-half RoPE. Agreement checks the permutation as well as the rest.

Usage: gguf_reference.py MODEL.gguf '[token, ids, ...]'
"""

import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def main() -> None:
    path, ids = sys.argv[1], json.loads(sys.argv[2])
    reader = GGUFReader(path)

    def meta(key, default=None):
        field = reader.fields.get(key)
        return default if field is None else field.contents()

    arch = meta("general.architecture")
    if arch != "llama":
        sys.exit(f"{path}: architecture {arch!r} is not llama")
    n_layers = int(meta("llama.block_count"))
    n_heads = int(meta("llama.attention.head_count"))
    n_kv = int(meta("llama.attention.head_count_kv", n_heads))
    hidden = int(meta("llama.embedding_length"))
    eps = float(meta("llama.attention.layer_norm_rms_epsilon", 1e-5))
    theta = float(meta("llama.rope.freq_base", 10000.0))
    d = hidden // n_heads

    weights = {}
    for t in reader.tensors:
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        weights[t.name] = dequantize(t.data, t.tensor_type).astype(np.float64).reshape(shape)

    def rms_norm(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    def rope_interleaved(x):
        # x: [T, heads, d]; rotate pairs (2i, 2i+1) by pos * theta^(-2i/d).
        t = x.shape[0]
        inv = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
        ang = np.arange(t, dtype=np.float64)[:, None] * inv[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = b * cos + a * sin
        return out

    x = weights["token_embd.weight"][ids]
    t = len(ids)
    causal = np.triu(np.full((t, t), -np.inf), k=1)
    for layer in range(n_layers):
        w = lambda name: weights[f"blk.{layer}.{name}.weight"]  # noqa: E731
        h = rms_norm(x, w("attn_norm"))
        q = rope_interleaved((h @ w("attn_q").T).reshape(t, n_heads, d))
        k = rope_interleaved((h @ w("attn_k").T).reshape(t, n_kv, d))
        v = (h @ w("attn_v").T).reshape(t, n_kv, d)
        out = np.empty((t, n_heads, d))
        for head in range(n_heads):
            kv = head // (n_heads // n_kv)
            scores = q[:, head] @ k[:, kv].T / np.sqrt(d) + causal
            scores -= scores.max(axis=-1, keepdims=True)
            p = np.exp(scores)
            p /= p.sum(axis=-1, keepdims=True)
            out[:, head] = p @ v[:, kv]
        x = x + out.reshape(t, n_heads * d) @ w("attn_output").T
        h = rms_norm(x, w("ffn_norm"))
        gate = h @ w("ffn_gate").T
        x = x + ((gate / (1.0 + np.exp(-gate))) * (h @ w("ffn_up").T)) @ w("ffn_down").T
    x = rms_norm(x, weights["output_norm.weight"])
    head = weights.get("output.weight", weights["token_embd.weight"])
    logits = x[-1] @ head.T
    json.dump({"ids": ids, "logits": [float(v) for v in logits]}, sys.stdout)


if __name__ == "__main__":
    main()
