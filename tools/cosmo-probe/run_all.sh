#!/bin/sh
# Reproduces every number in FINDINGS.md. Needs RDKit 2026.09.1 from PyPI:
#   python3 -m venv /tmp/rdkit-venv && /tmp/rdkit-venv/bin/pip install rdkit==2026.9.1
# (or set RDKIT_PY to another interpreter that has it).
set -e
cd "$(dirname "$0")"
PY="${RDKIT_PY:-/tmp/rdkit-venv/bin/python}"
mkdir -p out
cargo build --release -q
$PY ref_rdkit.py > out/rdkit.tsv                      # also writes out/fpscores.tsv (SA table)
./target/release/cosmo_probe > out/cosmo.tsv
echo "== 12 molecules";  python3 compare.py
$PY bulk_rdkit.py > out/bulk_rdkit.tsv
./target/release/cosmo_probe bulk > out/bulk_cosmo.tsv
echo "== NCI first_5K";  python3 compare_bulk.py
$PY frag_rdkit.py > out/frag_rdkit.tsv
./target/release/cosmo_probe frag > out/frag_cosmo.tsv
echo "== fragment env";  python3 compare_frag.py
$PY rxn_rdkit.py > out/rxn_rdkit.tsv
./target/release/cosmo_probe rxn > out/rxn_cosmo.tsv 2>/dev/null
echo "== SynFlowNet templates"; python3 compare_rxn.py
$PY rxnrev_rdkit.py > out/rxnrev_rdkit.tsv
./target/release/cosmo_probe rxnrev > out/rxnrev_cosmo.tsv 2>/dev/null
echo "== reversed templates"; python3 compare_rxnrev.py
