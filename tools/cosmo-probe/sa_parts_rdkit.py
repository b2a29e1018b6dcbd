# SA-score inputs per molecule for the SA mismatches. Run: nice -n 19 /tmp/rdkit-venv/bin/python sa_parts_rdkit.py
from rdkit import Chem
from rdkit.Chem import rdMolDescriptors as rd
from rdkit.Chem import rdFingerprintGenerator as G
g = G.GetMorganGenerator(radius=2)
for l in open("out/sa_diff_ids.txt"):
    k, smi = l.split()
    m = Chem.MolFromSmiles(smi)
    print(k, "nAtoms", m.GetNumAtoms(), "chiral", len(Chem.FindMolChiralCenters(m, includeUnassigned=True)),
          "spiro", rd.CalcNumSpiroAtoms(m), "bridge", rd.CalcNumBridgeheadAtoms(m),
          "macro", sum(len(x) > 8 for x in m.GetRingInfo().AtomRings()), "nbits", len(g.GetSparseCountFingerprint(m).GetNonzeroElements()))
