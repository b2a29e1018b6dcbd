#!/usr/bin/env python3
"""An independent forward pass of a Hugging Face Llama/Mistral/Qwen2 folder.

Reads `config.json` and `model.safetensors` with plain numpy (the format is
an 8-byte header length, a JSON header and raw little-endian data), computes
the decoder in float64 as `transformers` defines it (rotate-half RoPE, q/k/v
bias for Qwen2 or when `attention_bias` is set, grouped-query attention,
SwiGLU, tied or untied head) and prints the logits of every position as JSON:
{"ids": [...], "logits": [[...], ...]}.

Usage: hf_reference.py MODEL_DIR '[token, ids, ...]'
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16}


def read_safetensors(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        if info["dtype"] == "BF16":
            u16 = np.frombuffer(data[start:end], dtype="<u2").astype(np.uint32) << 16
            arr = u16.view(np.float32)
        else:
            arr = np.frombuffer(data[start:end], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = arr.astype(np.float64).reshape(info["shape"])
    return out


def main() -> None:
    folder, ids = Path(sys.argv[1]), json.loads(sys.argv[2])
    c = json.loads((folder / "config.json").read_text())
    w = read_safetensors(folder / "model.safetensors")
    arch = c.get("architectures", ["LlamaForCausalLM"])[0]
    n_heads = c["num_attention_heads"]
    n_kv = c.get("num_key_value_heads") or n_heads
    hidden = c["hidden_size"]
    d = c.get("head_dim") or hidden // n_heads
    eps = c.get("rms_norm_eps", 1e-6)
    theta = c.get("rope_theta", 10000.0)
    bias = c.get("attention_bias")
    if bias is None:
        bias = arch == "Qwen2ForCausalLM"

    def rms_norm(x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g

    t = len(ids)
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.arange(t, dtype=np.float64)[:, None] * inv[None, :]
    emb = np.concatenate([ang, ang], axis=-1)
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]

    def rope(x):
        x1, x2 = x[..., : d // 2], x[..., d // 2 :]
        return x * cos + np.concatenate([-x2, x1], axis=-1) * sin

    def proj(x, name, with_bias):
        y = x @ w[f"{name}.weight"].T
        return y + w[f"{name}.bias"] if with_bias else y

    x = w["model.embed_tokens.weight"][ids]
    causal = np.triu(np.full((t, t), -np.inf), k=1)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}"
        h = rms_norm(x, w[f"{p}.input_layernorm.weight"])
        q = rope(proj(h, f"{p}.self_attn.q_proj", bias).reshape(t, n_heads, d))
        k = rope(proj(h, f"{p}.self_attn.k_proj", bias).reshape(t, n_kv, d))
        v = proj(h, f"{p}.self_attn.v_proj", bias).reshape(t, n_kv, d)
        rep = n_heads // n_kv
        out = np.empty((t, n_heads, d))
        for head in range(n_heads):
            s = q[:, head] @ k[:, head // rep].T / np.sqrt(d) + causal
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            out[:, head] = (s / s.sum(axis=-1, keepdims=True)) @ v[:, head // rep]
        x = x + proj(out.reshape(t, n_heads * d), f"{p}.self_attn.o_proj", False)
        h = rms_norm(x, w[f"{p}.post_attention_layernorm.weight"])
        g = proj(h, f"{p}.mlp.gate_proj", False)
        x = x + proj((g / (1.0 + np.exp(-g))) * proj(h, f"{p}.mlp.up_proj", False), f"{p}.mlp.down_proj", False)
    x = rms_norm(x, w["model.norm.weight"])
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    logits = x @ head.T
    json.dump({"ids": ids, "logits": logits.tolist()}, sys.stdout)


if __name__ == "__main__":
    main()
