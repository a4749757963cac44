#!/usr/bin/env python3
"""The table of issue 16's impression study from the JSON files of run_impression.sh.

    python3 benchmarks/study/summarize_impression.py DIR

For every model (file name prefix before _s<seed>.json): test HR@K and NDCG@K at the dev-selected epoch, mean ± std
over seeds (population std, as numpy's default), the selected epochs, and the median epoch time per training pair.
"""
import glob
import json
import math
import os
import re
import sys

ORDER = ["bprmf", "lightgcn", "ans_uniform", "ans_exposure"]
LABEL = {"bprmf": "BPRMF (list BPR)", "lightgcn": "LightGCN (list BPR)", "ans_uniform": "ANS, uniform candidates",
         "ans_exposure": "ANS, exposure candidates"}
KS = [1, 2, 3, 5, 10]


def mean_std(v):
    m = sum(v) / len(v)
    return m, math.sqrt(sum((x - m) ** 2 for x in v) / len(v))


def main(d):
    runs = {}
    for f in sorted(glob.glob(os.path.join(d, "*_s*.json"))):
        m = re.match(r"(.*)_s(\d+)\.json$", os.path.basename(f))
        if not m:
            continue
        with open(f) as fh:
            runs.setdefault(m.group(1), []).append(json.load(fh))
    if not runs:
        sys.exit(f"{d}: no results")
    names = [n for n in ORDER if n in runs] + sorted(n for n in runs if n not in ORDER)
    any_run = runs[names[0]][0]
    ds = any_run["dataset"]
    print(f"ML_100kCTR impression mode: {ds['users']} users, {ds['items']} items, {ds['entries']} rows, "
          f"lists train/dev/test {ds['lists'][0]}/{ds['lists'][1]}/{ds['lists'][2]}; test metrics at the epoch "
          f"selected on dev {any_run['config']['main_metric']}, mean ± std over seeds.\n")
    for metric in ["HR", "NDCG"]:
        print("| model | seeds | " + " | ".join(f"{metric}@{k}" for k in KS) + " |")
        print("|---|---|" + "---|" * len(KS))
        for n in names:
            cells = []
            for k in KS:
                m, s = mean_std([r["test"][f"{metric}@{k}"] for r in runs[n]])
                cells.append(f"{m:.4f} ± {s:.4f}")
            print(f"| {LABEL.get(n, n)} | {len(runs[n])} | " + " | ".join(cells) + " |")
        print()
    print("| model | dev NDCG@2 | selected epochs | epochs run | s/epoch | training pairs | ns per pair | uniform slots |")
    print("|---|---|---|---|---|---|---|---|")
    for n in names:
        dm, dsd = mean_std([r["dev"]["NDCG@2"] for r in runs[n]])
        sel = ",".join(str(r["best_epoch"]) for r in runs[n])
        ran = ",".join(str(len(r["epochs"])) for r in runs[n])
        sec = sorted(r["train_seconds_per_epoch"] for r in runs[n])[len(runs[n]) // 2]
        pairs = runs[n][0]["train_pairs_per_epoch"]
        uf = runs[n][0].get("uniform_candidate_fraction", 0)
        print(f"| {LABEL.get(n, n)} | {dm:.4f} ± {dsd:.4f} | {sel} | {ran} | {sec:.3f} | {pairs} | "
              f"{1e9 * sec / max(1, pairs):.0f} | {100 * uf:.1f}% |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/study/results/impression")
