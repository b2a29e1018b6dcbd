# Run: nice -n 19 python3 compare_rxnrev.py
r = [l.rstrip("\n").split("\t") for l in open("out/rxnrev_rdkit.tsv")]
c = [l.rstrip("\n").split("\t") for l in open("out/rxnrev_cosmo.tsv")]
print(f"reversed-template runs identical: {sum(a[3:] == b[3:] for a, b in zip(r, c))}/{len(r)} over {len({a[0] for a in r})} templates")
for a, b in zip(r, c):
    if a[3:] != b[3:]: print("    template", a[0], a[2], "| rdkit:", a[3], a[4][:100], "| cosmo:", b[3], b[4][:100])
