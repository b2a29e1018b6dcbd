# SynFlowNet reaction templates (mirunacrt/synflownet src/synflownet/data/templates/hb.txt @574f1e1) on NCI first_5K:
# per template: #molecules (of first 2000) matching each reactant template, then RunReactants on up to 3 matches per role
# (all combinations), products sanitized and written as canonical SMILES.
# Run: nice -n 19 /tmp/rdkit-venv/bin/python rxn_rdkit.py > out/rxn_rdkit.tsv
import itertools
from rdkit import Chem, RDLogger
from rdkit.Chem import rdChemReactions
RDLogger.DisableLog("rdApp.*")
mols = []
for l in open("data/nci_first_5K.smi"):
    m = Chem.MolFromSmiles(l.split()[0])
    if m is not None: mols.append((l.split()[0], m))
    if len(mols) == 2000: break
for t, sma in enumerate(l.strip() for l in open("data/synflownet_hb.txt")):
    try:
        rxn = rdChemReactions.ReactionFromSmarts(sma); rxn.Initialize()
    except Exception as e:
        print(f"{t}\tPARSE_FAIL"); continue
    roles = [[i for i, (_, m) in enumerate(mols) if m.HasSubstructMatch(rxn.GetReactantTemplate(r))] for r in range(rxn.GetNumReactantTemplates())]
    k = 3 if len(roles) > 1 else 5
    for combo in itertools.product(*[ro[:k] for ro in roles]):
        sets = rxn.RunReactants(tuple(mols[i][1] for i in combo))
        out = []
        for ps in sets:
            ss = []
            for p in ps:
                try: Chem.SanitizeMol(p); ss.append(Chem.MolToSmiles(p))
                except Exception: ss.append("FAIL")
            out.append(".".join(ss))
        print(f"{t}\t{','.join(str(len(r)) for r in roles)}\t{' '.join(mols[i][0] for i in combo)}\t{len(sets)}\t{' '.join(sorted(out))}")
    if not any(r[:1] for r in roles) or not all(roles):
        print(f"{t}\t{','.join(str(len(r)) for r in roles)}\t-\t-\t-")
