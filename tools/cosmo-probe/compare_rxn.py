# Run: nice -n 19 python3 compare_rxn.py
r = [l.rstrip("\n").split("\t") for l in open("out/rxn_rdkit.tsv")]
c = [l.rstrip("\n").split("\t") for l in open("out/rxn_cosmo.tsv")]
print(f"templates parsed: rdkit {len({x[0] for x in r if x[1] != 'PARSE_FAIL'})}, cosmolkit {len({x[0] for x in c if not x[1].startswith('PARSE_FAIL')})}")
rc = {x[0]: x[1] for x in r}; cc = {x[0]: x[1] for x in c}
print(f"templates with identical reactant-match counts (first 2000 NCI mols): {sum(rc[k] == cc.get(k) for k in rc)}/{len(rc)}")
for k in rc:
    if rc[k] != cc.get(k): print("    template", k, "rdkit", rc[k], "cosmo", cc.get(k))
runs = [(a, b) for a, b in zip(r, c) if a[2] != "-"]
print(f"reaction runs with identical product-set count and sorted sanitized product SMILES: {sum(a[3:] == b[3:] for a, b in runs)}/{len(runs)} "
      f"over {len({a[0] for a, _ in runs})} templates; product sets in total (rdkit) {sum(int(a[3]) for a, _ in runs)}")
for a, b in runs:
    if a[3:] != b[3:]: print("    template", a[0], a[2], "| rdkit:", a[3], a[4][:120], "| cosmo:", b[3], b[4][:120])
