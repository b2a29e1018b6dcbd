# Random fragment junction trees over the 72 fragments of recursionpharma/gflownet (frags_72.txt),
# assembled as in FragMolBuildingEnvContext.graph_to_mol (CombineMols, single bonds, pop one explicit H, SanitizeMol).
# Run: nice -n 19 /tmp/rdkit-venv/bin/python frag_rdkit.py > out/frag_rdkit.tsv
import random
from rdkit import Chem
random.seed(0)
frags = [l.strip() for l in open("data/frags_72.txt") if l.strip()]
fm = [Chem.MolFromSmiles(s) for s in frags]
stems = [[a.GetIdx() for a in m.GetAtoms() if a.GetTotalNumHs() > 0] for m in fm]
ok = [i for i in range(len(frags)) if stems[i]]
for rid in range(500):
    n = random.randint(2, 6)
    nodes, free, edges, offs = [], [], [], []
    off = 0
    for k in range(n):
        f = random.choice(ok)
        nodes.append(f); offs.append(off)
        free.append(list(stems[f]))
        if k > 0:
            cands = [j for j in range(k) if free[j]]
            if not cands: nodes.pop(); offs.pop(); free.pop(); break
            j = random.choice(cands)
            u = free[j].pop(random.randrange(len(free[j]))) + offs[j]
            v = free[k].pop(random.randrange(len(free[k]))) + off
            edges.append((u, v))
        off += fm[f].GetNumAtoms()
    mol = fm[nodes[0]]
    for f in nodes[1:]:
        mol = Chem.CombineMols(mol, fm[f])
    em = Chem.EditableMol(mol)
    for u, v in edges:
        em.AddBond(u, v, Chem.BondType.SINGLE)
    mol = em.GetMol()
    for u, v in edges:
        for a in (u, v):
            at = mol.GetAtomWithIdx(a)
            if at.GetNumExplicitHs() > 0: at.SetNumExplicitHs(at.GetNumExplicitHs() - 1)
    try:
        Chem.SanitizeMol(mol); out = Chem.MolToSmiles(mol)
    except Exception:
        out = "SANITIZE_FAIL"
    print(f"{rid}\t{'.'.join(frags[f] for f in nodes)}\t{','.join(f'{u}-{v}' for u, v in edges)}\t{out}")
