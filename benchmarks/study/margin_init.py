#!/usr/bin/env python3
"""The initial margin bias c_m of an ANS run, for ans-train and for the PyTorch reference.

In faithful mode m = sigmoid(1/t) with t = w_m.(Nh*Ph) + c_m, and at initialisation t ~ c_m (the embeddings are
tiny), so the sign of the initial c_m puts a run in the m ~ 0 regime (no augmentation noise) or the m ~ 1 regime
(full noise) for the whole plateau; docs/results.md shows that this sign decides when ANS leaves its initial plateau.

  ours_cm(seed):  replica of ans::model::ans_params<Scalar>::init(d, faithful, seed + 1), as ans-train calls it
                  (counter-based splitmix64 draws: W_u, W_i, b_u, b_i, w_m, then c_m; U(+-1/sqrt(d))).
  ref_cm(seed, n_users, n_items):  benchmarks/reference/ans_ref.py's draw (torch.manual_seed(seed), two
                  xavier_uniform_ tables, then nn.Linear(d,d) x2 and nn.Linear(d,1); needs python3-torch).

usage: margin_init.py [SEED ...]   (prints both for Amazon-Beauty's 7670 users and 10887 items)
"""
import math
import sys

_M = (1 << 64) - 1


def _splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & _M
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M
    return x ^ (x >> 31)


def ours_cm(seed, d=64):
    ctr = _splitmix64(seed + 1) + 2 * d * d + 3 * d  # skip W_u, W_i, b_u, b_i, w_m
    u = (_splitmix64(ctr & _M) >> 11) * 2.0 ** -53
    return (2.0 * u - 1.0) / math.sqrt(d)


def ref_cm(seed, n_users, n_items, d=64):
    import torch
    import torch.nn as nn
    torch.manual_seed(seed)
    for n in (n_users, n_items):
        nn.init.xavier_uniform_(torch.empty(n, d))
    nn.Linear(d, d), nn.Linear(d, d)
    return float(nn.Linear(d, 1).bias)


if __name__ == "__main__":
    seeds = [int(s) for s in sys.argv[1:]] or list(range(10))
    print("seed  ours c_m   ref c_m (amazon_beauty)")
    for s in seeds:
        try:
            r = f"{ref_cm(s, 7670, 10887):+.4f}"
        except ImportError:
            r = "(no torch)"
        print(f"{s:4d}  {ours_cm(s):+.4f}   {r}")
