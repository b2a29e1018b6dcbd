# RDKit reference values. Run: nice -n 19 /tmp/rdkit-venv/bin/python ref_rdkit.py > out/rdkit.tsv
import rdkit
from rdkit import Chem, DataStructs
from rdkit.Chem import Descriptors, Crippen, rdMolDescriptors as rd, QED, Lipinski, AllChem
from rdkit.Chem import rdFingerprintGenerator as G
from rdkit.Chem import rdChemReactions
print("version\t" + rdkit.__version__)
mols = [l.rstrip("\n").split("\t") for l in open("data/mols.tsv") if l.strip()]
smarts = [l.strip() for l in open("data/smarts.txt") if l.strip()]
g2 = G.GetMorganGenerator(radius=2, fpSize=2048)
g3 = G.GetMorganGenerator(radius=3, fpSize=2048)
fps = []
for name, smi in mols:
    m = Chem.MolFromSmiles(smi)
    p = QED.properties(m)
    f = g2.GetFingerprint(m); fps.append(f)
    row = dict(
        can=Chem.MolToSmiles(m),
        can_noiso=Chem.MolToSmiles(m, isomericSmiles=False),
        mw="%.4f" % Descriptors.MolWt(m),
        exact_mw="%.4f" % Descriptors.ExactMolWt(m),
        logp="%.4f" % Crippen.MolLogP(m),
        mr="%.4f" % Crippen.MolMR(m),
        tpsa="%.4f" % rd.CalcTPSA(m),
        hba=rd.CalcNumHBA(m), hbd=rd.CalcNumHBD(m),
        lip_hba=rd.CalcNumLipinskiHBA(m), lip_hbd=rd.CalcNumLipinskiHBD(m),
        rotb=rd.CalcNumRotatableBonds(m), arom=rd.CalcNumAromaticRings(m),
        heavy=m.GetNumHeavyAtoms(),
        qed="%.6f" % QED.qed(m),
        qed_props=",".join(str(x) if isinstance(x, int) else "%.4f" % x for x in p),
        morgan2=",".join(map(str, f.GetOnBits())),
        morgan3=",".join(map(str, g3.GetFingerprint(m).GetOnBits())),
        smarts=",".join(str(len(m.GetSubstructMatches(Chem.MolFromSmarts(s)))) for s in smarts),
    )
    for k, v in row.items():
        print(f"mol\t{name}\t{k}\t{v}")
    # random SMILES for canonicalisation robustness
    rs = sorted(set(Chem.MolToSmiles(m, doRandom=True) for _ in range(200)))
    # RDKit itself: all random smiles -> same canonical?
    ok = sum(Chem.MolToSmiles(Chem.MolFromSmiles(r)) == row["can"] for r in rs[:10])
    for r in rs[:10]:
        print(f"random\t{name}\t{r}")
for i in range(len(mols)):
    for j in range(i + 1, len(mols)):
        print(f"tanimoto\t{mols[i][0]}\t{mols[j][0]}\t%.6f" % DataStructs.TanimotoSimilarity(fps[i], fps[j]))
for l in open("data/invalid.txt"):
    s = l.strip()
    if not s: continue
    from rdkit import RDLogger; RDLogger.DisableLog("rdApp.*")
    m = Chem.MolFromSmiles(s)
    print(f"invalid\t{s}\t{'reject' if m is None else 'accept:' + Chem.MolToSmiles(m)}")
for l in open("data/reactions.tsv"):
    if not l.strip(): continue
    name, sma, a, b = l.rstrip("\n").split("\t")
    rxn = rdChemReactions.ReactionFromSmarts(sma)
    prods = rxn.RunReactants((Chem.MolFromSmiles(a), Chem.MolFromSmiles(b)))
    out = []
    for ps in prods:
        p = ps[0]
        try:
            Chem.SanitizeMol(p); out.append(Chem.MolToSmiles(p))
        except Exception as e:
            out.append("SANITIZE_FAIL")
    print(f"reaction\t{name}\t{len(prods)}\t{'.'.join(sorted(set(out)))}")
# SA score reference (RDKit Contrib/SA_Score) and its fragment table exported for the Rust probe
import sys, os, gzip, pickle
from rdkit.Chem import RDConfig
sys.path.append(os.path.join(RDConfig.RDContribDir, "SA_Score"))
import sascorer
if not os.path.exists("out/fpscores.tsv"):
    with open("out/fpscores.tsv", "w") as fh:
        for row in pickle.load(gzip.open(os.path.join(RDConfig.RDContribDir, "SA_Score", "fpscores.pkl.gz"))):
            for j in row[1:]:
                fh.write(f"{j}\t{row[0]}\n")
for name, smi in mols:
    m = Chem.MolFromSmiles(smi)
    sfp = sascorer.mfpgen.GetSparseCountFingerprint(m)
    print(f"mol\t{name}\tmorgan2_sparse_count\t" + ",".join(f"{k}:{v}" for k, v in sorted(sfp.GetNonzeroElements().items())))
    print(f"mol\t{name}\tsa\t%.4f" % sascorer.calculateScore(m))
