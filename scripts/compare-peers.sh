#!/usr/bin/env bash
# ftb against torchgfn 2.4.1 (PyTorch) and gfnx 0.0.1 (JAX) on the hypergrid
# with trajectory balance: ms per training iteration, or time to quality.
# Run by hand on a quiet machine (not in CI). Arguments go to
# scripts/peers/compare.py, e.g.
#   scripts/compare-peers.sh --scenarios hypergrid-small,hypergrid-medium \
#       --batches 16,128,512 --threads 1,2 --rounds 3
#   scripts/compare-peers.sh --time-to-quality --scenarios hypergrid-small --seeds 0,1,2
#   scripts/compare-peers.sh --check-dp
# scripts/peers/compare.py --help (and its docstring) describes the scenario,
# the modes and every difference between the three set-ups.
#
# The Python environment lives at ${FTB_PEERS_VENV:-$HOME/.cache/ftb/peers/venv}
# and is created or completed here (idempotent: what is installed is kept).
# One venv serves both peers: gfnx 0.0.1 pins numpy==1.26.4, which torchgfn
# (numpy<2) and jax 0.7 accept. FTB_PEERS_PYTHON picks the interpreter that
# creates it (default python3, >= 3.10). CARGO_TARGET_DIR is honoured.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${FTB_PEERS_VENV:-$HOME/.cache/ftb/peers/venv}"
python="${FTB_PEERS_PYTHON:-python3}"

# What the peer scripts need, pinned to the releases the comparison was
# written and checked against (jax 0.7.1 is the newest that accepts
# numpy 1.26.4; torchgfn 2.4.1 itself accepts a range of torch releases).
requirements=(
    "numpy==1.26.4"
    "torch==2.15.0"
    "torchgfn==2.4.1"
    "jax[cpu]==0.7.1"
    "gfnx==0.0.1"
    "optax==0.2.8"
)

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating the peers' venv at $venv" >&2
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --upgrade pip >&2
fi
if ! "$venv/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as m
want = {"torch": "2.15.0", "torchgfn": "2.4.1", "gfnx": "0.0.1", "numpy": "1.26.4"}
for name, version in want.items():
    got = m.version(name)
    assert got.split("+")[0] == version, (name, got)
for name in ("jax", "jaxlib", "optax"):
    m.version(name)
EOF
then
    echo "installing the peers' packages into $venv" >&2
    "$venv/bin/python" -m pip install "${requirements[@]}" >&2
fi

echo "building ftb (release)" >&2
(cd "$root" && cargo build --release --quiet)
target="${CARGO_TARGET_DIR:-$root/target}"
exec "$venv/bin/python" "$root/scripts/peers/compare.py" --ftb "$target/release/ftb" \
    --python "$venv/bin/python" "$@"
