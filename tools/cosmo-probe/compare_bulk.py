# Compare bulk outputs. Run: nice -n 19 python3 compare_bulk.py
cols = ["canonical_smiles", "morgan2_2048_bits", "MolWt", "MolLogP", "TPSA", "NumHBA", "NumHBD", "NumRotatableBonds", "NumAromaticRings", "QED", "SA_score", "PAINS_hits(first1000)"]
def load(p):
    return {l.split("\t")[0]: l.rstrip("\n").split("\t")[1:] for l in open(p)}
r, c = load("out/bulk_rdkit.tsv"), load("out/bulk_cosmo.tsv")
both = [k for k in r if r[k] != ["REJECT"] and c.get(k, ["REJECT"]) != ["REJECT"]]
print(f"records {len(r)}; RDKit rejects {sum(v == ['REJECT'] for v in r.values())}; cosmolkit rejects {sum(v == ['REJECT'] for v in c.values())}; "
      f"same accept/reject {sum((r[k] == ['REJECT']) == (c.get(k) == ['REJECT']) for k in r)}/{len(r)}")
for i, col in enumerate(cols):
    n = len(both) if i < 11 else sum(r[k][i] != "-" for k in both)
    eq, maxd, ex = 0, 0.0, []
    for k in both:
        a, b = r[k][i], c[k][i]
        if a == "-": continue
        try:
            same = float(a) == float(b); maxd = max(maxd, abs(float(a) - float(b)))
        except ValueError:
            same = a == b
        eq += same
        if not same and len(ex) < 3: ex.append(f"{k}: rdkit={a[:50]} cosmo={b[:50]}")
    extra = f"; max |diff| {maxd:.3g}" if col in ("MolWt", "MolLogP", "TPSA", "QED", "SA_score") else ""
    print(f"{col}: identical {eq}/{n}{extra}")
    for e in ex: print("   ", e)
