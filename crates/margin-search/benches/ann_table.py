"""Markdown table from a run_ann.sh log: per library build s, memory, recall@10 / QPS over ef,
and each margin point's QPS against faiss HNSW's at the same recall (log-linear interpolation
of faiss's curve; 'n/a' outside it). usage: python3 ann_table.py LOG.jsonl"""
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
faiss = next((r for r in rows if r["lib"] == "faiss"), None)
def faiss_qps(rec):
    pts = sorted((p["recall@10"], p["qps"]) for p in faiss["search"])
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= rec <= r1 and r1 > r0:
            t = (rec - r0) / (r1 - r0)
            return math.exp(math.log(q0) + t * (math.log(q1) - math.log(q0)))
    return None
for r in rows:
    if "search" not in r:
        print(f"- **{r['lib']}**: {r['queries']} queries in {r['seconds']} s = {r['qps']} QPS")
print()
print("| library | build s | memory MB | ef | recall@10 | QPS | QPS / faiss at same recall |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    if "search" not in r:
        continue
    mem = r.get("index_mb", r.get("rss_growth_mb"))
    memtxt = f"{r.get('rss_growth_mb')} (RSS growth)" + (f", {r['index_mb']} (index)" if "index_mb" in r else "")
    for i, p in enumerate(r["search"]):
        f = faiss_qps(p["recall@10"]) if faiss and r["lib"] != "faiss" else None
        ratio = f"{p['qps'] / f:.2f}" if f else ("1.00" if r["lib"] == "faiss" else "n/a")
        head = (r["lib"], str(r["build_s"]), memtxt) if i == 0 else ("", "", "")
        print(f"| {head[0]} | {head[1]} | {head[2]} | {p['ef']} | {p['recall@10']:.4f} | {p['qps']:.0f} | {ratio} |")
