"""Golden values for ftb's chem tests (tests/chem.rs), from RDKit 2026.09.1 (PyPI).

  python3 -m venv /tmp/rdkit-venv && /tmp/rdkit-venv/bin/pip install rdkit==2026.09.1
  cd tests/data/chem && /tmp/rdkit-venv/bin/python make_golden.py > golden.tsv

Inputs: mols.tsv (12 named molecules) and the first 300 records of RDKit's NCI first_5K.smi
(BSD-3-Clause, tools/cosmo-probe/data). One line per molecule: name, input SMILES, canonical
SMILES, QED, SA score (RDKit Contrib sascorer), MolWt, MolLogP, NHOHCount, NOCount, Morgan bits
(radius 2 and 3, 2048 bits, comma-separated); then `tanimoto a b value` lines (radius 2) for
the 12 named molecules. Floats are Python reprs (shortest round-trip).
"""
import os, sys
import rdkit
from rdkit import Chem, RDConfig
from rdkit.Chem import Crippen, Descriptors, Lipinski, QED, rdFingerprintGenerator, DataStructs

sys.path.append(os.path.join(RDConfig.RDContribDir, "SA_Score"))
import sascorer  # noqa: E402

assert rdkit.__version__ == "2026.09.1", rdkit.__version__
here = os.path.dirname(os.path.abspath(__file__))
mols = [l.rstrip("\n").split("\t") for l in open(os.path.join(here, "mols.tsv")) if l.strip()]
nci = os.path.join(here, "..", "..", "..", "tools", "cosmo-probe", "data", "nci_first_5K.smi")
for l in open(nci).readlines()[:300]:
    smi, name = l.split()[:2]
    if Chem.MolFromSmiles(smi) is not None:
        mols.append(["nci_" + name, smi])
gen = {r: rdFingerprintGenerator.GetMorganGenerator(radius=r, fpSize=2048) for r in (2, 3)}
print("# name\tsmiles\tcanonical\tqed\tsa\tmw\tlogp\tnhoh\tno\tmorgan2\tmorgan3")
fps = {}
for name, smi in mols:
    m = Chem.MolFromSmiles(smi)
    bits = {r: gen[r].GetFingerprint(m) for r in (2, 3)}
    fps[name] = bits[2]
    row = [name, smi, Chem.MolToSmiles(m), repr(QED.qed(m)), repr(sascorer.calculateScore(m)),
           repr(Descriptors.MolWt(m)), repr(Crippen.MolLogP(m)), str(Lipinski.NHOHCount(m)),
           str(Lipinski.NOCount(m))] + [",".join(map(str, bits[r].GetOnBits())) for r in (2, 3)]
    print("\t".join(row))
named = [n for n, _ in mols if not n.startswith("nci_")]
for i, a in enumerate(named):
    for b in named[i + 1:]:
        print(f"tanimoto\t{a}\t{b}\t{DataStructs.TanimotoSimilarity(fps[a], fps[b])!r}")
