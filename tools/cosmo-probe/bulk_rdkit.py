# Bulk RDKit reference on RDKit's NCI first_5K.smi (+ 480 PAINS SMARTS on the first 1000).
# Run: nice -n 19 /tmp/rdkit-venv/bin/python bulk_rdkit.py > out/bulk_rdkit.tsv
import sys, os, time
from rdkit import Chem, RDLogger
from rdkit.Chem import Descriptors, Crippen, rdMolDescriptors as rd, QED, RDConfig
from rdkit.Chem import rdFingerprintGenerator as G
sys.path.append(os.path.join(RDConfig.RDContribDir, "SA_Score"))
import sascorer
RDLogger.DisableLog("rdApp.*")
g2 = G.GetMorganGenerator(radius=2, fpSize=2048)
pains = [Chem.MolFromSmarts(l.strip()) for l in open("data/pains.txt") if l.strip()]
t0 = time.time()
for i, l in enumerate(open("data/nci_first_5K.smi")):
    smi, name = l.split()[:2]
    m = Chem.MolFromSmiles(smi)
    if m is None:
        print(f"{name}\tREJECT"); continue
    f = [Chem.MolToSmiles(m), ",".join(map(str, g2.GetFingerprint(m).GetOnBits())),
         repr(Descriptors.MolWt(m)), repr(Crippen.MolLogP(m)), repr(rd.CalcTPSA(m)),
         str(rd.CalcNumHBA(m)), str(rd.CalcNumHBD(m)), str(rd.CalcNumRotatableBonds(m)),
         str(rd.CalcNumAromaticRings(m)), repr(QED.qed(m)), repr(sascorer.calculateScore(m)),
         ",".join(str(j) for j, p in enumerate(pains) if m.HasSubstructMatch(p)) if i < 1000 else "-"]
    print(name + "\t" + "\t".join(f))
print(f"time\t{time.time() - t0:.1f}", file=sys.stderr)
