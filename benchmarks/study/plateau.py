#!/usr/bin/env python3
"""Issue 13: plots and tables of benchmarks/study/run_plateau.sh (docs/results.md, "ANS from the first epoch").

usage: /usr/bin/python3 benchmarks/study/plateau.py [RESULTS_DIR] [--png DIR]

Writes (into --png DIR, default docs/img):
  plateau_diag.png    per-term gradient norms w.r.t. E0 and the embedding norms over the first epochs
  plateau_screen.png  validation Recall@20 and the BPR term per epoch for every remedy candidate (seed 0)
  plateau_final.png   validation Recall@20 per epoch, mean over seeds, for every dataset of the final part
and prints the markdown tables: diagnostics summary, screen (validation only), final (validation-selected test
metrics, mean ± std over seeds), the no-plateau check at epoch 5, and time to DNS's best validation Recall@20.
"""
import glob
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
args = [a for a in sys.argv[1:]]
png_dir = os.path.join(ROOT, "docs", "img")
if "--png" in args:
    i = args.index("--png")
    png_dir = args[i + 1]
    del args[i:i + 2]
RES = args[0] if args else os.path.join(HERE, "results", "plateau")
os.makedirs(png_dir, exist_ok=True)
TERMS = ["bpr", "sns", "distance", "orth", "reg"]
LABEL = {"bpr": "BPR", "sns": "γ·L_c", "distance": "γ·D", "orth": "γ·O", "reg": "λ·R"}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def curve(d, key):
    return [(e["epoch"], e["valid"][key]) for e in d["epochs"] if key in e.get("valid", {})]


def mean_std(xs):
    if not xs:
        return float("nan"), float("nan")
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, s


# ---------------------------------------------------------------------------------------------------- diagnostics
def diag_part():
    runs = [(n, load(os.path.join(RES, "diag", n + ".json")))
            for n in ["mf_faithful", "mf_fixed", "lgcn_faithful_concat", "lgcn_fixed_mean"]]
    runs = [(n, d) for n, d in runs if d and d.get("diagnostics")]
    if not runs:
        return
    fig, axes = plt.subplots(3, len(runs), figsize=(4.2 * len(runs), 10), squeeze=False)
    print("\n### Gradient diagnostics (Beauty, seed 0; medians over the steps of each epoch range)\n")
    print("| run | epochs | ‖∇E0‖ BPR | γ·D | γ·L_c | γ·O | λ·R | D > BPR (entries BPR moves) | entries D moves without BPR "
          "| cos(∇D, ∇BPR) | item row norm | user row norm |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for col, (name, d) in enumerate(runs):
        dg = d["diagnostics"]
        nb = d["batches_per_epoch"]
        x = [g["epoch"] + g["batch"] / nb for g in dg]
        ax = axes[0][col]
        for t in TERMS:
            ax.semilogy(x, [max(g[t]["e0"], 1e-16) for g in dg], label=LABEL[t])
        ax.set_title(name + ": ‖∂term/∂E0‖")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
        ax = axes[1][col]
        ax.plot(x, [g["item_norm"] for g in dg], label="mean item row norm")
        ax.plot(x, [g["user_norm"] for g in dg], label="mean user row norm")
        ax2 = ax.twinx()
        vx = curve(d, "Recall@20")
        ax2.plot([e for e, _ in vx], [v for _, v in vx], "k--", label="valid Recall@20")
        ax2.set_ylabel("valid Recall@20")
        ax.set_title(name + ": embedding norms")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7, loc="upper left")
        ax = axes[2][col]
        ax.plot(x, [g["distance"]["frac_over_bpr"] for g in dg], label="D > BPR (entries BPR moves)")
        ax.plot(x, [g["distance"]["frac_without_bpr"] for g in dg], label="entries D moves, BPR does not")
        ax.plot(x, [g["distance"]["cos_bpr"] for g in dg], label="cos(∇D, ∇BPR)")
        ax.set_ylim(-0.5, 1.0)
        ax.set_title(name + ": D against BPR")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
        last = max(g["epoch"] for g in dg)
        for lo, hi in [(0, 0), (1, 4), (5, 14), (15, last)]:
            sel = [g for g in dg if lo <= g["epoch"] <= hi]
            if not sel or lo > last:
                continue

            def med(f):
                v = sorted(f(g) for g in sel)
                return v[len(v) // 2]
            print(f"| {name} | {lo + 1}–{hi + 1} | " + " | ".join(f"{med(lambda g, t=t: g[t]['e0']):.2e}" for t in
                                                               ["bpr", "distance", "sns", "orth", "reg"]) +
                  f" | {med(lambda g: g['distance']['frac_over_bpr']):.2f} | {med(lambda g: g['distance']['frac_without_bpr']):.2f}"
                  f" | {med(lambda g: g['distance']['cos_bpr']):+.2f} | {med(lambda g: g['item_norm']):.4f} | "
                  f"{med(lambda g: g['user_norm']):.4f} |")
    fig.tight_layout()
    fig.savefig(os.path.join(png_dir, "plateau_diag.png"), dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------- screen
def screen_part():
    files = sorted(glob.glob(os.path.join(RES, "screen", "*.json")))
    runs = [(os.path.basename(f)[:-5], load(f)) for f in files]
    runs = [(n, d) for n, d in runs if d]
    if not runs:
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    print("\n### Remedy screen (Beauty MF, fixed mode, seed 0; validation split only)\n")
    print("| candidate | valid Recall@20 ep 1 | ep 3 | ep 5 | ep 10 | best valid Recall@20 (epoch) | BPR term ep 5 | loss ep 5 |")
    print("|---|---|---|---|---|---|---|---|")
    for n, d in runs:
        c = dict(curve(d, "Recall@20"))
        axes[0].plot(list(c), list(c.values()), label=n)
        if d["epochs"] and "terms" in d["epochs"][0]:
            axes[1].plot([e["epoch"] for e in d["epochs"]], [e["terms"]["bpr"] for e in d["epochs"]], label=n)
        best_e = max(c, key=lambda e: c[e]) if c else 0
        ep5 = [e for e in d["epochs"] if e["epoch"] == 5]
        bpr5 = f"{ep5[0]['terms']['bpr']:.4f}" if ep5 and "terms" in ep5[0] else "–"
        loss5 = f"{ep5[0]['loss']:.4f}" if ep5 else "–"
        print(f"| {n} | " + " | ".join(f"{c.get(e, float('nan')):.4f}" for e in [1, 3, 5, 10]) +
              f" | {c.get(best_e, float('nan')):.4f} ({best_e}) | {bpr5} | {loss5} |")
    axes[0].set_title("Beauty MF: valid Recall@20")
    axes[0].set_xlabel("epoch")
    axes[0].legend(fontsize=7)
    axes[1].set_title("BPR term (epoch mean)")
    axes[1].set_xlabel("epoch")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(png_dir, "plateau_screen.png"), dpi=80)
    plt.close(fig)
    longs = [(os.path.basename(f)[:-5], load(f)) for f in sorted(glob.glob(os.path.join(RES, "screen_long", "*.json")))]
    longs = [(n, d) for n, d in longs if d]
    if longs:
        print("\n### The screen's survivors at 100 epochs (Beauty MF, seed 0; validation only)\n")
        print("| candidate | valid Recall@20 ep 5 | ep 10 | ep 30 | ep 50 | ep 100 | best valid Recall@20 (epoch) | best valid NDCG@20 |")
        print("|---|---|---|---|---|---|---|---|")
        for n, d in longs:
            c = dict(curve(d, "Recall@20"))
            best_e = max(c, key=lambda e: c[e])
            bn = max(v for _, v in curve(d, "NDCG@20"))
            print(f"| {n} | " + " | ".join(f"{c.get(e, float('nan')):.4f}" for e in [5, 10, 30, 50, 100]) +
                  f" | {c[best_e]:.4f} ({best_e}) | {bn:.4f} |")


# ----------------------------------------------------------------------------------------------------------- final
FINAL = [("beauty_mf", "Recall@20", ["Recall@20", "NDCG@20", "Recall@15", "NDCG@15", "HR@15"]),
         ("beauty_lgcn", "Recall@20", ["Recall@20", "NDCG@20", "Recall@15", "NDCG@15", "HR@15"]),
         ("gowalla_mf", "Recall@20", ["Recall@20", "NDCG@20", "Recall@15", "NDCG@15", "HR@15"]),
         ("grocery", "NDCG@5", ["HR@5", "NDCG@5", "HR@10", "NDCG@10", "HR@20", "NDCG@20"]),
         ("ml100k", "Recall@20", ["Recall@20", "NDCG@20", "Recall@15", "NDCG@15", "HR@15"]),
         # time to accuracy at 2 threads (run_plateau.sh part tta2, THREADS=2, seed 0, one run at a time)
         ("tta2_beauty_mf", "Recall@20", ["Recall@20", "NDCG@20"]),
         ("tta2_gowalla_mf", "Recall@20", ["Recall@20", "NDCG@20"])]


def runs_of(part):
    out = {}
    for f in sorted(glob.glob(os.path.join(RES, part, "*_s*.json"))):
        d = load(f)
        if not d:
            continue
        model = os.path.basename(f)[:-5].rsplit("_s", 1)[0]
        out.setdefault(model, []).append(d)
    return out


def time_to(d, key, target):
    """Wall seconds of training (sum of epoch times) until the validation metric first reaches target."""
    t = 0.0
    for e in d["epochs"]:
        t += e["seconds"]
        if key in e.get("valid", {}) and e["valid"][key] >= target:
            return t, e["epoch"]
    return None, None


def final_part():
    parts = [(p, m, ks, runs_of(p)) for p, m, ks in FINAL]
    parts = [x for x in parts if x[3]]
    if not parts:
        return
    fig, axes = plt.subplots(1, len(parts), figsize=(4.5 * len(parts), 4), squeeze=False)
    for col, (part, main, keys, runs) in enumerate(parts):
        ax = axes[0][col]
        print(f"\n### {part} (validation-selected on {main}; test mean ± std over seeds)\n")
        print("| model | seeds | " + " | ".join(keys) + f" | best epoch | s/epoch |")
        print("|---|---|" + "---|" * (len(keys) + 2))
        for model, ds in sorted(runs.items()):
            cells = []
            for k in keys:
                m, s = mean_std([d["test"].get(k, float("nan")) for d in ds])
                cells.append(f"{m:.4f} ± {s:.4f}")
            be = "/".join(str(d["best_epoch"]) for d in ds)
            sec = sum(d["train_seconds_per_epoch"] for d in ds) / len(ds)
            print(f"| {model} | {len(ds)} | " + " | ".join(cells) + f" | {be} | {sec:.2f} |")
            n = min(len(d["epochs"]) for d in ds)
            xs, ys = [], []
            for i in range(n):
                v = [d["epochs"][i]["valid"].get(main) for d in ds]
                if all(x is not None for x in v):
                    xs.append(ds[0]["epochs"][i]["epoch"])
                    ys.append(sum(v) / len(v))
            ax.plot(xs, ys, label=model)
        ax.set_title(f"{part}: valid {main} (mean over seeds)")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
        # no plateau: at epoch 5, the remedy's validation metric >= half of DNS's in every seed; the loss < 0.97
        dns = {d["config"]["random_seed"]: d for d in runs.get("DNS", [])}
        for model, ds in sorted(runs.items()):
            if not model.startswith("ANS"):
                continue
            rows = []
            for d in ds:
                sd = d["config"]["random_seed"]
                e5 = [e for e in d["epochs"] if e["epoch"] == 5]
                if not e5 or sd not in dns:
                    continue
                d5 = [e for e in dns[sd]["epochs"] if e["epoch"] == 5]
                if not d5:
                    continue
                a, b = e5[0]["valid"].get(main, float("nan")), d5[0]["valid"].get(main, float("nan"))
                bpr = e5[0].get("terms", {}).get("bpr", float("nan"))
                rows.append((sd, a, b, e5[0]["loss"], bpr))
            if rows:
                ok = all(a >= 0.5 * b and l < 0.97 for _, a, b, l, _ in rows)
                print(f"\nno-plateau check, {model}, epoch 5 (seed: valid {main} ANS / DNS, loss, BPR term): " +
                      "; ".join(f"s{sd}: {a:.4f} / {b:.4f}, {l:.4f}, {bpr:.4f}" for sd, a, b, l, bpr in rows) +
                      f" -> {'met' if ok else 'MISSED'}")
        # time to DNS's best validation metric (per seed, that seed's DNS best)
        if part.endswith(("beauty_mf", "gowalla_mf")) and dns:
            for model, ds in sorted(runs.items()):
                if not model.startswith("ANS"):
                    continue
                cells = []
                for d in ds:
                    sd = d["config"]["random_seed"]
                    if sd not in dns:
                        continue
                    target = max(v for _, v in curve(dns[sd], main))
                    t, e = time_to(d, main, target)
                    total = sum(x["seconds"] for x in d["epochs"])
                    cells.append(f"s{sd}: {t:.1f} s (epoch {e})" if t else f"s{sd}: not within {total:.0f} s "
                                 f"({len(d['epochs'])} epochs)")
                print(f"\ntime to DNS's best valid {main}, {model}: " + "; ".join(cells))
    fig.tight_layout()
    fig.savefig(os.path.join(png_dir, "plateau_final.png"), dpi=80)
    plt.close(fig)


diag_part()
screen_part()
final_part()
