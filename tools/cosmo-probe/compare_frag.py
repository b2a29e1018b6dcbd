# Run: nice -n 19 python3 compare_frag.py
r = [l.rstrip("\n").split("\t") for l in open("out/frag_rdkit.tsv")]
c = [l.rstrip("\n").split("\t") for l in open("out/frag_cosmo.tsv")]
print(f"fragment assemblies with identical canonical SMILES: {sum(a[3] == b[3] for a, b in zip(r, c))}/{len(r)}")
for a, b in zip(r, c):
    if a[3] != b[3]: print("   ", a[0], a[3], b[3])
