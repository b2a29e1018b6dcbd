# Compare cosmolkit probe output with RDKit reference.
# Run: nice -n 19 python3 compare.py   (needs out/rdkit.tsv and out/cosmo.tsv)
import collections
def load(p):
    d = {}
    for l in open(p):
        f = l.rstrip("\n").split("\t")
        if f[0] == "mol": d[("mol", f[1], f[2])] = f[3]
        elif f[0] == "tanimoto": d[("tan", f[1], f[2])] = f[3]
        elif f[0] == "invalid": d[("inv", f[1])] = f[2]
        elif f[0] == "reaction": d[("rxn", f[1])] = (f[2], f[3])
        elif f[0] == "randomcan": d.setdefault(("rc", f[1]), []).append(f[3])
        elif f[0] == "builder_join": d[("join",)] = f[2]
    return d
r, c = load("out/rdkit.tsv"), load("out/cosmo.tsv")
names = [k[1] for k in r if k[0] == "mol" and k[2] == "can"]
print(f"molecules: {len(names)}")
for key in ["can", "can_noiso", "morgan2", "morgan3", "smarts", "hba", "hbd", "lip_hba", "lip_hbd", "rotb", "arom", "heavy", "morgan2_sparse_count"]:
    eq = [n for n in names if r[("mol", n, key)] == c.get(("mol", n, key))]
    diff = [f"{n}: rdkit={r[('mol', n, key)][:60]} cosmo={str(c.get(('mol', n, key)))[:60]}" for n in names if n not in eq]
    print(f"{key}: equal {len(eq)}/{len(names)}")
    for d in diff: print("   ", d)
for key in ["mw", "exact_mw", "logp", "mr", "tpsa", "qed", "sa"]:
    diffs = []
    for n in names:
        try: diffs.append((abs(float(r[("mol", n, key)]) - float(c[("mol", n, key)])), n))
        except Exception: diffs.append((float("inf"), n + ":" + str(c.get(("mol", n, key)))[:80]))
    m = max(diffs)
    print(f"{key}: max |diff| = {m[0]:.2g} ({m[1]}); within 1e-3: {sum(d < 1e-3 for d, _ in diffs)}/{len(names)}")
tk = [k for k in r if k[0] == "tan"]
td = [abs(float(r[k]) - float(c[k])) for k in tk if k in c]
print(f"tanimoto pairs: {len(td)}/{len(tk)}; max |diff| = {max(td):.2g}")
rc = [(n, v) for n in names for v in c.get(("rc", n), [])]
ok = sum(v == r[("mol", n, "can")] for n, v in rc)
print(f"random SMILES -> canonical equal to RDKit canonical: {ok}/{len(rc)}")
for n in names:
    vs = set(c.get(("rc", n), []))
    if len(vs) > 1 or r[("mol", n, "can")] not in vs: print("   ", n, "distinct outputs:", len(vs), sorted(vs)[:3])
ik = [k for k in r if k[0] == "inv"]
print(f"invalid/edge SMILES same accept/reject as RDKit: {sum(r[k] == c.get(k) for k in ik)}/{len(ik)}")
for k in ik:
    if r[k] != c.get(k): print("   ", k[1], "rdkit:", r[k], "cosmo:", c.get(k))
rk = [k for k in r if k[0] == "rxn"]
print(f"reactions identical (n product sets, sanitized product SMILES): {sum(r[k] == c.get(k) for k in rk)}/{len(rk)}")
for k in rk:
    if r[k] != c.get(k): print("   ", k[1], "rdkit:", r[k], "cosmo:", c.get(k))
print("builder join:", c.get(("join",)))
