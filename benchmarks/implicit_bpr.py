#!/usr/bin/env python3
"""Benchmark implicit's CPU BPR (implicit.cpu.bpr, v0.7.3) on a LightGCN-format dataset.

Usage:
  IMPLICIT_PATH=/tmp/implicit-src /usr/bin/python3 benchmarks/implicit_bpr.py \
      --data /work/shared/data/gowalla --threads 2 --epochs 100 \
      --eval_at 10,20,30,40,50,60,70,80,90,100 --json out.json

DIR must hold train.txt and test.txt, with one line per user: `user item item ...`
(ids start at 0). The model is
  implicit.cpu.bpr.BayesianPersonalizedRanking(factors=64, learning_rate=0.01,
      regularization=0.01, iterations=1, num_threads=T, random_state=...,
      verify_negative_samples=True)

How training is split into epochs (from reading implicit/cpu/bpr.pyx in 0.7.3):
  * fit() builds user_factors / item_factors only if they are None, so calling it again
    continues training from the current factors. Each call does one `iterations` loop of
    bpr_update().
  * Each fit() call also repeats some setup: the dtype/CSR checks, the `userids` array
    (np.repeat over indptr, nnz entries), and the per-thread RNG seeding. The first call
    also draws the initial factors. The fit `callback(epoch, elapsed, correct, skipped)` gets
    `elapsed` = time.time() around bpr_update() alone, so the script records both the
    bpr_update time ("epoch_seconds", the main number) and the wall time of the whole
    fit() call ("epoch_fit_wall_seconds").
  * fit() calls check_random_state(self.random_state) on every call. An int seed therefore
    builds a NEW default_rng(seed) each time. From the 2nd call on, no factors are drawn, so
    every call draws the SAME per-thread RNG seeds and replays the same (u, i, j) sample
    stream. That is why the script passes a numpy Generator (np.random.default_rng(seed)),
    which check_random_state returns as is, so its state moves on between calls.
    --int_random_state gives the naive int behaviour, for comparison.
  * With --mode single the script calls fit() once with iterations=N and evaluates from
    the callback. That is implicit's own multi-epoch path; the callback's elapsed time
    leaves the evaluation out.

Factors have shape (n, factors + 1). The last column is the item bias; for users it is
fixed at 1.0 and never updated. Scores are the full (factors+1) dot product, as in
implicit's recommend().

Evaluation follows the LightGCN protocol: full ranking over all items, each user's training
items masked, over users with at least one test item.
  Recall@K = hits@K / |test items|
  NDCG@K   = DCG@K / IDCG, with binary gains; IDCG is summed over min(|test|, K) positions.
It runs on chunks of users, and its time is not counted as training time. By default the
top-K lists come from implicit.cpu.topk (the kernel behind recommend()); --eval_impl numpy
uses a pure numpy ranking instead. The metrics are always computed in numpy. (Debian's numpy
here is linked against the single-threaded reference BLAS, so a numpy-only evaluation of the
30k x 41k score matrix takes about 70 s; implicit's topk takes about 15-30 s.)
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import scipy.sparse as sp

IMPLICIT_PATH = os.environ.get("IMPLICIT_PATH")
if IMPLICIT_PATH:
    sys.path.insert(0, IMPLICIT_PATH)

try:
    import implicit  # noqa: E402
    import implicit.cpu.bpr  # noqa: E402
    from implicit.cpu.topk import topk as implicit_topk  # noqa: E402
except ImportError as exc:
    sys.exit(f"cannot import implicit ({exc}); set IMPLICIT_PATH to the built source tree, "
             "e.g. IMPLICIT_PATH=/tmp/implicit-src, and use /usr/bin/python3")

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None


def read_lightgcn(path):
    users, items = [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            u = int(parts[0])
            its = [int(x) for x in parts[1:]]
            users.extend([u] * len(its))
            items.extend(its)
    return np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)


def to_csr(users, items, n_users, n_items):
    m = sp.csr_matrix(
        (np.ones(len(users), dtype=np.float32), (users, items)),
        shape=(n_users, n_items), dtype=np.float32)
    m.sum_duplicates()
    m.data[:] = 1.0
    m.sort_indices()
    return m


def evaluate(user_factors, item_factors, train, test, ks, chunk, impl="implicit", threads=1):
    """LightGCN-style full-ranking Recall@K / NDCG@K (mean over users with test items).

    impl="implicit": top-K by implicit.cpu.topk.topk (implicit's own recommend() kernel:
    numpy dot per 100-user batch, training items set to -FLT_MAX, C++ heap select,
    OpenMP over batches). impl="numpy": dot + masking with -inf + argpartition/argsort.
    Both give the same lists up to exact score ties. The metrics are computed in numpy."""
    kmax = max(ks)
    test_counts = np.diff(test.indptr)
    eval_users = np.nonzero(test_counts > 0)[0]
    discounts = 1.0 / np.log2(np.arange(2, kmax + 2))
    cum_disc = np.concatenate([[0.0], np.cumsum(discounts)])
    recall_sum = {k: 0.0 for k in ks}
    ndcg_sum = {k: 0.0 for k in ks}
    Y = np.ascontiguousarray(item_factors)
    for start in range(0, len(eval_users), chunk):
        us = eval_users[start:start + chunk]
        tr = train[us]
        if impl == "implicit":
            top, _ = implicit_topk(Y, np.ascontiguousarray(user_factors[us]), kmax,
                                   filter_query_items=tr, num_threads=threads)
        else:
            scores = user_factors[us] @ Y.T  # (chunk, items), float32
            rows = np.repeat(np.arange(len(us)), np.diff(tr.indptr))
            scores[rows, tr.indices] = -np.inf
            n = scores.shape[1]
            top = np.argpartition(scores, n - kmax, axis=1)[:, n - kmax:]
            top_scores = np.take_along_axis(scores, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
        truth = test[us].toarray() > 0
        hits = np.take_along_axis(truth, top, axis=1).astype(np.float64)  # (chunk, kmax)
        n_test = test_counts[us]
        for k in ks:
            h = hits[:, :k]
            recall_sum[k] += float((h.sum(axis=1) / n_test).sum())
            dcg = h @ discounts[:k]
            idcg = cum_disc[np.minimum(n_test, k)]
            ndcg_sum[k] += float((dcg / idcg).sum())
    n = len(eval_users)
    out = {"n_eval_users": int(n)}
    for k in ks:
        out[f"recall@{k}"] = recall_sum[k] / n
        out[f"ndcg@{k}"] = ndcg_sum[k] / n
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="directory with train.txt and test.txt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--eval_at", default="", help="comma separated epochs, e.g. 10,20,30")
    ap.add_argument("--json", default=None, help="write results here")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--reg", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--topk", default="20", help="comma separated K list for metrics")
    ap.add_argument("--eval_chunk", type=int, default=4096, help="users per eval chunk")
    ap.add_argument("--eval_impl", choices=["implicit", "numpy"], default="implicit",
                    help="top-K ranking kernel for evaluation (see evaluate())")
    ap.add_argument("--check_eval", action="store_true",
                    help="at each eval also run the other eval_impl and print both")
    ap.add_argument("--mode", choices=["refit", "single"], default="refit",
                    help="refit: one fit(iterations=1) call per epoch (default); "
                         "single: one fit(iterations=N) call, eval in callback")
    ap.add_argument("--int_random_state", action="store_true",
                    help="pass random_state=<int seed> (fit() then re-seeds the same sample "
                         "stream on every refit call) instead of a numpy Generator")
    ap.add_argument("--no_verify_negative_samples", action="store_true")
    args = ap.parse_args()

    eval_at = sorted({int(x) for x in args.eval_at.split(",") if x.strip()})
    ks = sorted({int(x) for x in args.topk.split(",") if x.strip()})

    loadavg_start = os.getloadavg()
    t0 = time.perf_counter()
    tru, tri = read_lightgcn(os.path.join(args.data, "train.txt"))
    teu, tei = read_lightgcn(os.path.join(args.data, "test.txt"))
    n_users = int(max(tru.max(), teu.max())) + 1
    n_items = int(max(tri.max(), tei.max())) + 1
    train = to_csr(tru, tri, n_users, n_items)
    test = to_csr(teu, tei, n_users, n_items)
    load_s = time.perf_counter() - t0
    nnz = int(train.nnz)
    print(f"data: users={n_users} items={n_items} train_nnz={nnz} test_nnz={test.nnz} "
          f"load={load_s:.2f}s  implicit {implicit.__version__} from "
          f"{os.path.dirname(implicit.__file__)}", flush=True)

    random_state = args.seed if args.int_random_state else np.random.default_rng(args.seed)
    model = implicit.cpu.bpr.BayesianPersonalizedRanking(
        factors=args.factors, learning_rate=args.lr, regularization=args.reg,
        dtype=np.float32, iterations=1 if args.mode == "refit" else args.epochs,
        num_threads=args.threads, verify_negative_samples=not args.no_verify_negative_samples,
        random_state=random_state)

    epoch_s, fit_wall_s, correct_l, skipped_l = [], [], [], []
    evals = []
    state = {"epoch": 0}

    def do_eval(epoch):
        t = time.perf_counter()
        def run(impl):
            return evaluate(model.user_factors, model.item_factors, train, test, ks,
                            args.eval_chunk, impl=impl, threads=args.threads)
        if threadpool_limits is not None:
            with threadpool_limits(limits=args.threads):
                m = run(args.eval_impl)
        else:
            m = run(args.eval_impl)
        m["eval_seconds"] = time.perf_counter() - t
        m["eval_impl"] = args.eval_impl
        if args.check_eval:
            other = "numpy" if args.eval_impl == "implicit" else "implicit"
            m2 = run(other)
            m["check_" + other] = {k: v for k, v in m2.items() if k != "n_eval_users"}
            print(f"  check: {args.eval_impl} " + " ".join(
                f"{k}={m[k]:.6f}" for k in m2 if k != "n_eval_users") + f" | {other} " +
                " ".join(f"{k}={v:.6f}" for k, v in m2.items() if k != "n_eval_users"),
                flush=True)
        m["epoch"] = epoch
        m["cum_train_seconds"] = float(sum(epoch_s))
        m["cum_fit_wall_seconds"] = float(sum(fit_wall_s)) if fit_wall_s else None
        evals.append(m)
        metr = "  ".join(f"R@{k}={m[f'recall@{k}']:.4f} N@{k}={m[f'ndcg@{k}']:.4f}" for k in ks)
        print(f"eval epoch {epoch}: {metr}  cum_train={m['cum_train_seconds']:.2f}s "
              f"(eval {m['eval_seconds']:.1f}s)", flush=True)

    def callback(_epoch, elapsed, correct, skipped):
        state["epoch"] += 1
        e = state["epoch"]
        epoch_s.append(float(elapsed))
        correct_l.append(int(correct))
        skipped_l.append(int(skipped))
        auc = 100.0 * correct / max(nnz - skipped, 1)
        print(f"epoch {e:4d}  bpr_update {elapsed:.4f}s  {nnz / elapsed / 1e6:.3f} M samples/s"
              f"  train_auc {auc:.2f}%  skipped {100.0 * skipped / nnz:.2f}%",
              flush=True)
        if args.mode == "single" and e in eval_at:
            do_eval(e)

    if args.mode == "refit":
        for e in range(1, args.epochs + 1):
            t = time.perf_counter()
            model.fit(train, show_progress=False, callback=callback)
            w = time.perf_counter() - t
            fit_wall_s.append(w)
            print(f"           fit() wall {w:.4f}s  (overhead outside bpr_update "
                  f"{w - epoch_s[-1]:.4f}s)", flush=True)
            if e in eval_at:
                do_eval(e)
    else:
        model.fit(train, show_progress=False, callback=callback)

    assert model.user_factors.shape == (n_users, args.factors + 1)
    assert model.item_factors.shape == (n_items, args.factors + 1)

    mean_s = float(np.mean(epoch_s))
    steady = epoch_s[1:] if len(epoch_s) > 1 else epoch_s
    result = {
        "library": "implicit",
        "implicit_version": implicit.__version__,
        "implicit_path": os.path.dirname(implicit.__file__),
        "model": "implicit.cpu.bpr.BayesianPersonalizedRanking",
        "data": os.path.abspath(args.data),
        "n_users": n_users, "n_items": n_items, "train_nnz": nnz, "test_nnz": int(test.nnz),
        "threads": args.threads, "epochs": args.epochs, "mode": args.mode,
        "factors": args.factors, "factor_columns": int(model.item_factors.shape[1]),
        "learning_rate": args.lr, "regularization": args.reg,
        "verify_negative_samples": not args.no_verify_negative_samples,
        "random_state": (f"int {args.seed}" if args.int_random_state
                         else f"np.random.default_rng({args.seed})"),
        "samples_per_epoch": nnz,
        "epoch_seconds": epoch_s,
        "epoch_fit_wall_seconds": fit_wall_s if args.mode == "refit" else None,
        "mean_epoch_seconds": mean_s,
        "median_epoch_seconds": float(np.median(epoch_s)),
        "mean_epoch_seconds_excl_first": float(np.mean(steady)),
        "mean_fit_wall_seconds": float(np.mean(fit_wall_s)) if fit_wall_s else None,
        "samples_per_sec": nnz / mean_s,
        "samples_per_sec_median": nnz / float(np.median(epoch_s)),
        "samples_per_sec_fit_wall": (nnz / float(np.mean(fit_wall_s))) if fit_wall_s else None,
        "total_train_seconds": float(sum(epoch_s)),
        "total_fit_wall_seconds": float(sum(fit_wall_s)) if fit_wall_s else None,
        "correct_per_epoch": correct_l,
        "skipped_per_epoch": skipped_l,
        "evals": evals,
        "loadavg_start": loadavg_start, "loadavg_end": os.getloadavg(),
        "host": platform.node(), "python": sys.version.split()[0],
        "numpy": np.__version__,
    }
    print(f"summary: threads={args.threads} epochs={args.epochs} mean {mean_s:.4f}s/epoch "
          f"(median {np.median(epoch_s):.4f}) -> {nnz / mean_s / 1e6:.3f} M samples/s"
          + (f"; fit() wall mean {np.mean(fit_wall_s):.4f}s" if fit_wall_s else ""),
          flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
