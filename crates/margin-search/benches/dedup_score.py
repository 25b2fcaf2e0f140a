"""Precision and recall of groups.json's pairs against planted.tsv (see dedup_data.py):
python dedup_score.py OUTDIR/groups.json OUTDIR/planted.tsv
A found pair is (representative, member) of a group; it is right when it is a planted pair."""
import sys, json
g = json.load(open(sys.argv[1]))
planted = {tuple(sorted(l.split("\t"))) for l in open(sys.argv[2]).read().split("\n") if l}
found = {tuple(sorted((grp["representative"], m["id"]))) for grp in g["groups"] for m in grp["members"] if m["id"] != grp["representative"]}
tp = len(found & planted)
print(json.dumps({"groups": len(g["groups"]), "found_pairs": len(found), "planted_pairs": len(planted), "precision": tp / max(1, len(found)), "recall": tp / len(planted)}))
