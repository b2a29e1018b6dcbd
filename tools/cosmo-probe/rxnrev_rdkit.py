# Reversed SynFlowNet templates (products>>reactants, agents dropped) applied to the first product of each forward run.
# Run after rxn_rdkit.py: nice -n 19 /tmp/rdkit-venv/bin/python rxnrev_rdkit.py > out/rxnrev_rdkit.tsv
from rdkit import Chem, RDLogger
from rdkit.Chem import rdChemReactions
RDLogger.DisableLog("rdApp.*")
tpl = [l.strip() for l in open("data/synflownet_hb.txt")]
seen = set()
for l in open("out/rxn_rdkit.tsv"):
    f = l.rstrip("\n").split("\t")
    if f[2] == "-" or f[3] == "0": continue
    prod = f[4].split(" ")[0]
    if "FAIL" in prod or "." in prod or (f[0], prod) in seen: continue
    seen.add((f[0], prod))
    lhs, _, rhs = tpl[int(f[0])].split(">")
    rev = rdChemReactions.ReactionFromSmarts(rhs + ">>" + lhs)
    sets = rev.RunReactants((Chem.MolFromSmiles(prod),))
    out = []
    for ps in sets:
        ss = []
        for p in ps:
            try: Chem.SanitizeMol(p); ss.append(Chem.MolToSmiles(p))
            except Exception: ss.append("FAIL")
        out.append(".".join(ss))
    print(f"{f[0]}\t{rhs}>>{lhs}\t{prod}\t{len(sets)}\t{' '.join(sorted(out))}")
