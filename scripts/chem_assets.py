"""Writes ftb's molecule data assets from RDKit 2026.09.1 (PyPI) and the gflownet fragment list.

  python3 -m venv /tmp/rdkit-venv && /tmp/rdkit-venv/bin/pip install rdkit==2026.09.1
  /tmp/rdkit-venv/bin/python scripts/chem_assets.py

assets/molecules/sa_fpscores.bin: RDKit's Contrib/SA_Score/fpscores.pkl.gz (BSD-3-Clause, Copyright (c) 2013 Novartis; notice in assets/molecules/SOURCES.md),
re-encoded. RDKit stores a list of [score, id, id, ...] groups; here, little-endian:
  u32 number of groups, then per group: i32 score * 10^4 (every score has 4 decimals),
  u32 number of ids, the ids sorted, each as a LEB128 varint of its difference to the previous
  id of the group (the first to 0). (Not compressed: gzip saves only 6 %.)

assets/molecules/frags_72.tsv: the 72 fragments of Bengio et al. (2021) with their attachment
atoms, as listed in recursionpharma/gflownet src/gflownet/models/bengio2021flow.py (MIT,
Copyright (c) 2020 Recursion Pharmaceuticals), read from frags_72.py next to this script.
Attachment atoms without a hydrogen are dropped (a bond there exceeds the atom's valence unless
a second one is added, which the fragment environment does not do); the file says which.
"""
import gzip, os, pickle, struct
from rdkit.Chem import RDConfig

src = os.path.join(RDConfig.RDContribDir, "SA_Score", "fpscores.pkl.gz")
groups = pickle.load(gzip.open(src))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


buf = bytearray(struct.pack("<I", len(groups)))
seen = set()
for g in groups:
    score, ids = g[0], sorted(g[1:])
    e4 = round(score * 10000)
    assert e4 / 10000 == score, score
    assert not seen.intersection(ids)
    seen.update(ids)
    buf += struct.pack("<iI", e4, len(ids))
    prev = 0
    for i in ids:
        assert 0 <= i < 2**32
        buf += varint(i - prev)
        prev = i
out = os.path.join(os.path.dirname(__file__), "..", "assets", "molecules", "sa_fpscores.bin")
with open(out, "wb") as f:
    f.write(bytes(buf))
print(len(groups), "groups", len(seen), "ids", len(buf), "bytes")

from rdkit import Chem
here = os.path.dirname(__file__)
frags = eval(open(os.path.join(here, "frags_72.py")).read())
lines = [
    "# The 72 fragments of Bengio et al. (2021), with attachment atoms (0-based atom indices in",
    "# the SMILES), from recursionpharma/gflownet src/gflownet/models/bengio2021flow.py (MIT,",
    "# Copyright (c) 2020 Recursion Pharmaceuticals; notice in assets/molecules/SOURCES.md).",
    "# Written by scripts/chem_assets.py; attachment atoms without a hydrogen are dropped.",
]
for smi, stems in frags:
    m = Chem.MolFromSmiles(smi)
    keep = [a for a in stems if m.GetAtomWithIdx(a).GetTotalNumHs() > 0]
    drop = [a for a in stems if a not in keep]
    note = f"\t# dropped (no H): {','.join(map(str, drop))}" if drop else ""
    lines.append(f"{smi}\t{','.join(map(str, keep))}{note}")
open(os.path.join(here, "..", "assets", "molecules", "frags_72.tsv"), "w").write("\n".join(lines) + "\n")
