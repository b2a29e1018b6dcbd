# FindMolChiralCenters legacy vs modern on the SA mismatches. Run: nice -n 19 /tmp/rdkit-venv/bin/python chiral_check.py
from rdkit import Chem
print("GetUseLegacyStereoPerception:", Chem.GetUseLegacyStereoPerception())
cos = {l.split()[0]: int(l.split()[4]) for l in open("out/saparts_cosmo.txt")}
same_modern = same_legacy = 0
for l in open("out/sa_diff_ids.txt"):
    k, smi = l.split(); m = Chem.MolFromSmiles(smi)
    leg = len(Chem.FindMolChiralCenters(m, includeUnassigned=True, useLegacyImplementation=True))
    mod = len(Chem.FindMolChiralCenters(m, includeUnassigned=True, useLegacyImplementation=False))
    same_legacy += leg == cos[k]; same_modern += mod == cos[k]
print(f"cosmolkit find_chiral_centers(true) == RDKit legacy: {same_legacy}/72, == RDKit modern: {same_modern}/72")
from rdkit.Chem import rdMolDescriptors as rd
ns = {l.split()[0]: int(l.split()[16]) for l in open("out/saparts_cosmo.txt")}
ok = 0
for l in open("out/sa_diff_ids.txt"):
    k, smi = l.split(); m = Chem.MolFromSmiles(smi)
    ok += ns[k] == len(Chem.FindMolChiralCenters(m, includeUnassigned=True)) == rd.CalcNumAtomStereoCenters(m)
print(f"cosmolkit num_atom_stereo_centers == RDKit legacy FindMolChiralCenters(includeUnassigned) == CalcNumAtomStereoCenters: {ok}/72")
