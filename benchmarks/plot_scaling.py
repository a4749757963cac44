#!/usr/bin/env python3
"""Plot and tabulate benchmarks/scaling.sh results: seconds per epoch and per batch against interactions.

usage: plot_scaling.py OUT_DIR [--png PATH] [--md PATH]
Reads OUT_DIR/scaling_<T>t.json (Google Benchmark JSON of BM_epoch_synthetic at T threads).
"""
import argparse
import glob
import json
import os
import re


def load(out):
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "scaling_*t.json"))):
        threads = int(re.search(r"scaling_(\d+)t\.json$", path).group(1))
        with open(path) as f:
            doc = json.load(f)
        for b in doc["benchmarks"]:
            m = re.match(r"BM_epoch_synthetic/L:(\d+)/nnz:(\d+)", b["name"])
            if not m or b.get("error_occurred"):
                continue
            rows.append({"threads": threads, "L": int(m.group(1)), "nnz": int(m.group(2)),
                         "interactions": b["interactions"], "batches": b["batches"],
                         "batches_per_epoch": b["batches/epoch"], "s_batch": b["s/batch"],
                         "s_epoch": b["s/epoch(extrap)"], "capped": b["batches"] < b["batches/epoch"]})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--png")
    ap.add_argument("--md")
    a = ap.parse_args()
    rows = load(a.out)
    if not rows:
        raise SystemExit(f"no scaling_*t.json in {a.out}")
    md = ["| L | threads | train interactions | batches/epoch | s/batch | s/epoch | note |", "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["L"], r["threads"], r["nnz"])):
        md.append(f"| {r['L']} | {r['threads']} | {int(r['interactions']):,} | {int(r['batches_per_epoch'])} | "
                  f"{r['s_batch'] * 1e3:.1f} ms | {r['s_epoch']:.2f} | "
                  f"{'extrapolated from ' + str(int(r['batches'])) + ' batches' if r['capped'] else 'full epoch'} |")
    # speed-up 1 -> 2 threads per (L, nnz)
    by = {(r["L"], r["nnz"], r["threads"]): r for r in rows}
    sp = []
    for (L, n, t), r in sorted(by.items()):
        if t == 2 and (L, n, 1) in by:
            sp.append(f"L={L}, {int(r['interactions']):,} interactions: {by[(L, n, 1)]['s_epoch'] / r['s_epoch']:.2f}x")
    text = "\n".join(md) + "\n\nSpeed-up from 1 to 2 threads: " + "; ".join(sp) + "\n"
    if a.md:
        with open(a.md, "w") as f:
            f.write(text)
    print(text)
    if a.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for L, ax in zip((0, 3), axes):
            for t, style in ((1, "--"), (2, "-")):
                pts = sorted((r["interactions"], r["s_epoch"], r["capped"]) for r in rows
                             if r["L"] == L and r["threads"] == t)
                if pts:
                    xs, ys, cap = zip(*pts)
                    line, = ax.loglog(xs, ys, style, label=f"{t} thread{'s' if t > 1 else ''}")
                    for x, y, c in pts:  # filled: full epoch; hollow: extrapolated from capped batches
                        ax.loglog([x], [y], "o", color=line.get_color(), markerfacecolor="none" if c else line.get_color())
            pts = sorted((r["interactions"], r["s_epoch"]) for r in rows if r["L"] == L)
            if pts:  # reference slopes through the smallest point
                x0, y0 = pts[0]
                xs = [p[0] for p in pts]
                ax.loglog(xs, [y0 * x / x0 for x in xs], ":", color="grey", label="slope 1 (linear)")
                if L > 0:
                    ax.loglog(xs, [y0 * (x / x0) ** 2 for x in xs], "-.", color="lightgrey", label="slope 2")
            ax.set_title("MF-ANS (L = 0)" if L == 0 else "LightGCN-ANS (L = 3)")
            ax.set_xlabel("training interactions (synthetic)")
            ax.set_ylabel("seconds per epoch")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        fig.suptitle("Epoch time vs interactions and threads (K = 16, d = 64, B = 2048; "
                     "hollow = extrapolated from capped batches)")
        fig.tight_layout()
        os.makedirs(os.path.dirname(a.png), exist_ok=True)
        fig.savefig(a.png, dpi=110)
        print("wrote", a.png)


if __name__ == "__main__":
    main()
