#!/usr/bin/env python3
"""Plain-PyTorch (CPU) reference trainer for Augmented Negative Sampling (ANS).

This is the yardstick for accuracy and speed of the C++ library `ans`. It implements
the *faithful* formulation of ../shared/spec/ans-reference.md (section 7, R.2-R.6):

  * encoders: MF (n_layers 0) and LightGCN (the per-hop stack S = [E0, A E0, ..., A^L E0],
    recomputed every batch with torch.sparse.mm over A = D^-1/2 A D^-1/2, degree + 1e-7);
  * samplers: RNS (uniform, rejecting the user's training positives; uses the first of the K
    candidates), DNS (argmax over K of sum_h <u_h, i_h>) and ANS faithful (spec section 7);
  * losses: BPR with 1e-10, sns, distance (F.pairwise_distance), orth (summed over hops),
    RecBole EmbLoss require_pow=False with weight lambda (= --l2);
  * init per R.6 (xavier_uniform per embedding table; PyTorch default for the Linear layers),
    dense torch.optim.Adam.

`ans_faithful_loss` and `emb_reg_loss` below are the very functions that `check_golden.py`
imports and checks against the PyTorch-autograd float64 golden vectors.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NOISE_SCALE = 0.1      # hard-coded 0.1 of the reference (spec 6.2)
BPR_EPS = 1e-10        # inside BPR's log (spec F13)
DEGREE_EPS = 1e-7      # added to the degree (spec R.3)


# ----------------------------------------------------------------------------------------------
# Losses (shared with check_golden.py)
# ----------------------------------------------------------------------------------------------
def bpr_loss(pos_scores, neg_scores):
    """RecBole BPRLoss: -mean(log(1e-10 + sigmoid(pos - neg)))."""
    return -torch.log(BPR_EPS + torch.sigmoid(pos_scores - neg_scores)).mean()


def emb_reg_loss(*embeddings):
    """RecBole EmbLoss(require_pow=False): sum of Frobenius norms of whole batch tensors / B,
    where B = embeddings[-1].shape[0] (the batch size)."""
    reg = 0.0
    for e in embeddings:
        reg = reg + torch.norm(e, p=2)
    return reg / embeddings[-1].shape[0]


def ans_faithful_loss(U, P, N, W_u, b_u, W_i, b_i, w_m, c_m, noise_uniform, gamma, eps,
                      noise_scale=NOISE_SCALE):
    """Faithful ANS loss, spec section 7 F1-F13 and F15 without the regulariser.

    U [B,H,d], P [B,H,d], N [B,K,H,d] stacked per-hop embeddings; W_u, W_i [d,d] and b_u, b_i [d]
    (y = W x + b); w_m [d], c_m [1] the margin model; noise_uniform [B,K,H,d] raw U[0,1) draws.
    Returns a dict with the loss terms (bpr, sns, distance, orth), aux = bpr + gamma*(sns +
    distance + orth), k_star [B,H], margin [B,K,H], gate [B,K,H,d].
    """
    B, K, H, d = N.shape
    # F1-F3 gates (nn.Linear with bias)
    a_u = F.linear(U, W_u, b_u)                              # [B,H,d]
    a_n = F.linear(N, W_i, b_i)                              # [B,K,H,d]
    gate = torch.sigmoid(a_n * a_u.unsqueeze(1))             # [B,K,H,d]
    # F4 split
    Pb = P.unsqueeze(1)                                      # [B,1,H,d]
    n_hard = gate * N
    n_easy = N - n_hard
    p_hard = gate * Pb
    p_easy = Pb - p_hard
    # F5 distance: F.pairwise_distance adds 1e-6 to the difference; mean over B*K*H
    distance = F.pairwise_distance(n_hard, p_hard).mean()
    # F6 orth: L2 norm of the Hadamard product, summed over hops, mean over B*K
    orth = torch.norm(p_easy * n_easy, dim=-1).sum(dim=-1).mean()
    # F7 margin sigma(1/t), t = w_m . (n_hard * p_hard) + c_m
    t = F.linear(n_hard * p_hard, w_m.reshape(1, -1), c_m.reshape(-1))   # [B,K,H,1]
    margin = torch.sigmoid(1.0 / t)
    # F8 noise: normalised uniform draws, direction sign(p_easy - n_easy)
    magnitude = F.normalize(noise_uniform, dim=-1) * margin * noise_scale
    direction = torch.sign(p_easy - n_easy)
    noise = direction * magnitude
    n_aug = n_hard + (noise + n_easy)                        # [B,K,H,d]
    Ub = U.unsqueeze(1)                                      # [B,1,H,d]
    hard_scores = (Ub * n_hard).sum(dim=-1)                  # [B,K,H]
    easy_scores = (Ub * n_easy).sum(dim=-1)
    syth_scores = (Ub * n_aug).sum(dim=-1)
    norm_scores = (Ub * N).sum(dim=-1)
    # F9 sns loss: mean_{b,h} log(1 + sum_k exp(easy - hard)), no max-subtraction
    sns = torch.log(1 + torch.exp(easy_scores - hard_scores).sum(dim=1)).mean()
    # F10-F11 per-hop selection (first max, no gradient)
    with torch.no_grad():
        sel = syth_scores + eps * (syth_scores - norm_scores)
        k_star = torch.argmax(sel, dim=1)                    # [B,H]
    bi = torch.arange(B).unsqueeze(1)
    hi = torch.arange(H).unsqueeze(0)
    n_star = n_aug.permute(0, 2, 1, 3)[bi, hi, k_star]       # [B,H,d]
    # F12-F13 sum over hops of per-hop dot products, BPR
    pos_scores = (U * P).sum(dim=-1).sum(dim=-1)
    neg_scores = (U * n_star).sum(dim=-1).sum(dim=-1)
    bpr = bpr_loss(pos_scores, neg_scores)
    aux = bpr + gamma * (sns + distance + orth)
    return dict(bpr=bpr, sns=sns, distance=distance, orth=orth, aux=aux,
                k_star=k_star, margin=margin.squeeze(-1), gate=gate)


# ----------------------------------------------------------------------------------------------
# Graph propagation
# ----------------------------------------------------------------------------------------------
def normalized_adjacency(users, items, n_users, n_items, dtype=torch.float32):
    """D^-1/2 A D^-1/2 of the symmetric bipartite graph (users then items), degree + 1e-7."""
    users = torch.as_tensor(np.asarray(users), dtype=torch.long)
    items = torch.as_tensor(np.asarray(items), dtype=torch.long) + n_users
    n = n_users + n_items
    rows = torch.cat([users, items])
    cols = torch.cat([items, users])
    A = torch.sparse_coo_tensor(torch.stack([rows, cols]), torch.ones(rows.numel(), dtype=torch.float64),
                                (n, n)).coalesce()
    idx = A.indices()
    deg = torch.zeros(n, dtype=torch.float64).index_add_(0, idx[0], (A.values() > 0).double()) + DEGREE_EPS
    dinv = deg.pow(-0.5)
    vals = dinv[idx[0]] * A.values() * dinv[idx[1]]   # A>0 entries are 1 for deduplicated edges
    return torch.sparse_coo_tensor(idx, vals.to(dtype), (n, n)).coalesce()


def propagate_stack(A_hat, E0, n_layers):
    """S = stack(E0, A E0, ..., A^L E0) of shape [N, L+1, d] (spec R.3; not the LightGCN mean)."""
    layers = [E0]
    x = E0
    for _ in range(n_layers):
        x = torch.sparse.mm(A_hat, x)
        layers.append(x)
    return torch.stack(layers, dim=1)


def model_faithful_loss(E0, A_hat, n_users, n_layers, users, pos_items, cand_items, W_u, b_u, W_i, b_i,
                        w_m, c_m, noise_uniform, gamma, eps, reg_weight):
    """Full faithful ANS loss from the ego table E0 (kind "model" golden cases and training)."""
    S = propagate_stack(A_hat, E0, n_layers) if n_layers > 0 else E0.unsqueeze(1)
    U = S[users]
    P = S[n_users + pos_items]
    N = S[n_users + cand_items]
    out = ans_faithful_loss(U, P, N, W_u, b_u, W_i, b_i, w_m, c_m, noise_uniform, gamma, eps)
    reg = emb_reg_loss(E0[users], E0[n_users + pos_items], E0[n_users + cand_items])
    out["reg"] = reg
    out["total"] = out["bpr"] + reg_weight * reg + gamma * (out["sns"] + out["distance"] + out["orth"])
    return out


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
class Data:
    pass


def _read_lgcn_text(path):
    us, its = [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            u = int(parts[0])
            for x in parts[1:]:
                us.append(u)
                its.append(int(x))
    return np.asarray(us, dtype=np.int64), np.asarray(its, dtype=np.int64)


def _read_rechorus(path, with_negs):
    us, its, negs = [], [], []
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        iu, ii = header.index("user_id"), header.index("item_id")
        ineg = header.index("neg_items") if with_negs else None
        for line in f:
            parts = line.rstrip("\r\n").split("\t")
            us.append(int(parts[iu]) - 1)      # ids from 1 -> 0-based
            its.append(int(parts[ii]) - 1)
            if with_negs:
                negs.append([int(x) - 1 for x in parts[ineg].strip("[] ").split(",")])
    out = [np.asarray(us, dtype=np.int64), np.asarray(its, dtype=np.int64)]
    if with_negs:
        out.append(np.asarray(negs, dtype=np.int64))
    return out


def load_dataset(path, name, valid_ratio, seed):
    d = os.path.join(path, name)
    data = Data()
    data.name = name
    if os.path.exists(os.path.join(d, "train.txt")):
        data.format = "lightgcn"
        tu, ti = _read_lgcn_text(os.path.join(d, "train.txt"))
        su, si = _read_lgcn_text(os.path.join(d, "test.txt"))
        data.n_users = int(max(tu.max(), su.max())) + 1
        data.n_items = int(max(ti.max(), si.max())) + 1
        data.test_u, data.test_i = su, si
        # seeded per-user hold-out of the training interactions as validation
        data.valid_u = data.valid_i = None
        if valid_ratio > 0:
            rng = np.random.default_rng(seed + 7919)
            order = np.argsort(tu, kind="stable")
            tu, ti = tu[order], ti[order]
            starts = np.searchsorted(tu, np.arange(data.n_users + 1))
            keep = np.ones(len(tu), dtype=bool)
            for u in range(data.n_users):
                s, e = starts[u], starts[u + 1]
                n = e - s
                n_val = min(n - 1, int(math.floor(n * valid_ratio + 0.5))) if n > 1 else 0
                if n_val > 0:
                    keep[s + rng.choice(n, n_val, replace=False)] = False
            data.valid_u, data.valid_i = tu[~keep], ti[~keep]
            tu, ti = tu[keep], ti[keep]
        data.train_u, data.train_i = tu, ti
    elif os.path.exists(os.path.join(d, "train.csv")):
        data.format = "rechorus"
        tu, ti = _read_rechorus(os.path.join(d, "train.csv"), False)
        vu, vi, vn = _read_rechorus(os.path.join(d, "dev.csv"), True)
        su, si, sn = _read_rechorus(os.path.join(d, "test.csv"), True)
        data.n_users = int(max(tu.max(), vu.max(), su.max())) + 1
        data.n_items = int(max(ti.max(), vi.max(), si.max(), vn.max(), sn.max())) + 1
        data.train_u, data.train_i = tu, ti
        data.valid_u, data.valid_i, data.valid_negs = vu, vi, vn
        data.test_u, data.test_i, data.test_negs = su, si, sn
    else:
        raise SystemExit(f"unknown dataset format in {d} (need train.txt/test.txt or train/dev/test.csv)")
    # sorted keys of the training pairs for rejection sampling and masking
    data.train_keys = np.unique(data.train_u * data.n_items + data.train_i)
    return data


def _csr(users, items, n_users):
    order = np.lexsort((items, users))
    u, i = users[order], items[order]
    indptr = np.searchsorted(u, np.arange(n_users + 1))
    return torch.as_tensor(indptr), torch.as_tensor(i)


# ----------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------
def sample_candidates(rng, users, n_items, K, train_keys):
    """K uniform ids in [0, n_items) per user, rejecting the user's training positives only;
    duplicates among the K draws are allowed (RecBole uniform sampler)."""
    cands = rng.integers(0, n_items, size=(len(users), K), dtype=np.int64)
    uu = np.repeat(users[:, None], K, axis=1)
    while True:
        keys = uu * n_items + cands
        pos = np.searchsorted(train_keys, keys)
        pos[pos >= len(train_keys)] = 0
        bad = train_keys[pos] == keys
        nb = int(bad.sum())
        if nb == 0:
            return cands
        cands[bad] = rng.integers(0, n_items, size=nb, dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------
class Model(nn.Module):
    def __init__(self, n_users, n_items, d, n_layers, sampler, A_hat):
        super().__init__()
        self.n_users, self.n_items, self.n_layers, self.sampler = n_users, n_items, n_layers, sampler
        self.user_emb = nn.Parameter(torch.empty(n_users, d))
        self.item_emb = nn.Parameter(torch.empty(n_items, d))
        # spec R.6: xavier_uniform per table first, gates created afterwards (PyTorch default init)
        nn.init.xavier_uniform_(self.user_emb)
        nn.init.xavier_uniform_(self.item_emb)
        if sampler == "ans":
            self.user_gate = nn.Linear(d, d)
            self.item_gate = nn.Linear(d, d)
            self.margin_model = nn.Linear(d, 1)
        self.A_hat = A_hat

    def ego(self):
        return torch.cat([self.user_emb, self.item_emb], dim=0)

    def stack(self, E0):
        if self.n_layers == 0:
            return E0.unsqueeze(1)
        return propagate_stack(self.A_hat, E0, self.n_layers)

    def loss(self, users, pos, cands, gamma, eps, reg_weight):
        nu = self.n_users
        E0 = self.ego()
        if self.sampler == "ans":
            B, K = cands.shape
            H = self.n_layers + 1
            noise = torch.rand(B, K, H, E0.shape[1])
            out = model_faithful_loss(E0, self.A_hat, nu, self.n_layers, users, pos, cands,
                                      self.user_gate.weight, self.user_gate.bias,
                                      self.item_gate.weight, self.item_gate.bias,
                                      self.margin_model.weight.reshape(-1), self.margin_model.bias,
                                      noise, gamma, eps, reg_weight)
            return out["total"]
        S = self.stack(E0)
        U = S[users]
        P = S[nu + pos]
        if self.sampler == "rns":
            neg = cands[:, 0]
        else:  # dns: argmax_k sum_h <u_h, n_kh>
            with torch.no_grad():
                sc = (U.detach().unsqueeze(1) * S.detach()[nu + cands]).sum(dim=(-1, -2))   # [B,K]
                neg = cands[torch.arange(len(users)), torch.argmax(sc, dim=1)]
        Nn = S[nu + neg]
        bpr = bpr_loss((U * P).sum(dim=(-1, -2)), (U * Nn).sum(dim=(-1, -2)))
        reg = emb_reg_loss(E0[users], E0[nu + pos], E0[nu + neg])
        return bpr + reg_weight * reg

    @torch.no_grad()
    def scoring_embeddings(self, score):
        E0 = self.ego()
        if score == "ego" or self.n_layers == 0:
            E = E0
        else:  # layer_sum: sum_h <u_h, i_h> = <concat u_h, concat i_h>
            E = self.stack(E0).reshape(E0.shape[0], -1)
        return E[:self.n_users], E[self.n_users:]


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def eval_full(Eu, Ei, eval_u, eval_i, mask_csrs, topks, n_items, block=512):
    """Full ranking; mask_csrs = list of (indptr, indices) of items to exclude per user."""
    kmax = max(topks)
    users = np.unique(eval_u)
    eval_keys = torch.as_tensor(np.unique(eval_u * n_items + eval_i))
    n_rel = torch.as_tensor(np.bincount(eval_u, minlength=Eu.shape[0]))
    disc = 1.0 / torch.log2(torch.arange(2, kmax + 2, dtype=torch.float64))
    cum_disc = torch.cat([torch.zeros(1, dtype=torch.float64), disc.cumsum(0)])
    sums = {f"{m}@{k}": 0.0 for k in topks for m in ("recall", "ndcg", "hr", "precision")}
    for s in range(0, len(users), block):
        ub = torch.as_tensor(users[s:s + block])
        scores = Eu[ub] @ Ei.T
        for indptr, indices in mask_csrs:
            st, en = indptr[ub], indptr[ub + 1]
            cnt = en - st
            rows = torch.repeat_interleave(torch.arange(len(ub)), cnt)
            offs = torch.arange(int(cnt.sum())) - torch.repeat_interleave(cnt.cumsum(0) - cnt, cnt)
            cols = indices[torch.repeat_interleave(st, cnt) + offs]
            scores[rows, cols] = -float("inf")
        top = torch.topk(scores, kmax, dim=1).indices
        keys = ub.unsqueeze(1) * n_items + top
        p = torch.searchsorted(eval_keys, keys).clamp(max=len(eval_keys) - 1)
        hit = (eval_keys[p] == keys).double()                 # [b, kmax]
        nr = n_rel[ub].double()
        for k in topks:
            h = hit[:, :k]
            nh = h.sum(1)
            dcg = (h * disc[:k]).sum(1)
            idcg = cum_disc[torch.clamp(nr, max=k).long()]
            sums[f"recall@{k}"] += float((nh / nr).sum())
            sums[f"ndcg@{k}"] += float((dcg / idcg).sum())
            sums[f"hr@{k}"] += float((nh > 0).double().sum())
            sums[f"precision@{k}"] += float((nh / k).sum())
    return {m: v / len(users) for m, v in sums.items()}


@torch.no_grad()
def eval_sampled(Eu, Ei, eval_u, eval_i, negs, topks, block=4096):
    """ReChorus protocol: rank = #{candidates with score >= positive's score} (incl. positive)."""
    sums = {f"{m}@{k}": 0.0 for k in topks for m in ("hr", "ndcg")}
    for s in range(0, len(eval_u), block):
        u = torch.as_tensor(eval_u[s:s + block])
        cand = torch.cat([torch.as_tensor(eval_i[s:s + block]).unsqueeze(1),
                          torch.as_tensor(negs[s:s + block])], dim=1)     # [b,100]
        sc = (Eu[u].unsqueeze(1) * Ei[cand]).sum(-1)
        rank = (sc >= sc[:, :1]).sum(1).double()
        for k in topks:
            inn = (rank <= k).double()
            sums[f"hr@{k}"] += float(inn.sum())
            sums[f"ndcg@{k}"] += float((inn / torch.log2(rank + 1)).sum())
    return {m: v / len(eval_u) for m, v in sums.items()}


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model_name", default="ANS", choices=["BPRMF", "LightGCN", "DNS", "ANS"])
    p.add_argument("--encoder", default=None, choices=["mf", "lightgcn"],
                   help="default: lightgcn for --model_name LightGCN, else mf")
    p.add_argument("--n_layers", type=int, default=None, help="default 3 for lightgcn, 0 for mf")
    p.add_argument("--emb_size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--l2", type=float, default=1e-4, help="lambda (RecBole reg_weight)")
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--num_neg", type=int, default=16)
    p.add_argument("--batch_size", type=int, default=2048, help="(user, positive) pairs per step")
    p.add_argument("--epoch", type=int, default=10)
    p.add_argument("--dataset", default="amazon_beauty")
    p.add_argument("--path", default=os.environ.get("ANS_DATA_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data")))
    p.add_argument("--topk", default="20", help="comma-separated list; the first is the selection metric")
    p.add_argument("--random_seed", type=int, default=0)
    p.add_argument("--num_workers", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--max_batches", type=int, default=0, help="cap batches per epoch (timing); 0 = all")
    p.add_argument("--valid_ratio", type=float, default=0.1)
    p.add_argument("--eval_every", type=int, default=1, help="evaluate every N epochs and at the last; 0 = never")
    p.add_argument("--score", default="ego", choices=["ego", "layer_sum"],
                   help="evaluation scoring: ego = faithful E0 (spec R.5); layer_sum = sum_h <u_h,i_h>")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    if a.encoder is None:
        a.encoder = "lightgcn" if a.model_name == "LightGCN" else "mf"
    if a.n_layers is None:
        a.n_layers = 3 if a.encoder == "lightgcn" else 0
    if a.encoder == "mf":
        a.n_layers = 0
    a.sampler = {"BPRMF": "rns", "LightGCN": "rns", "DNS": "dns", "ANS": "ans"}[a.model_name]
    a.topk_list = [int(x) for x in str(a.topk).split(",")]
    return a


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(max(1, args.num_workers))
    torch.manual_seed(args.random_seed)
    rng = np.random.default_rng(args.random_seed)

    data = load_dataset(args.path, args.dataset, args.valid_ratio, args.random_seed)
    nu, ni = data.n_users, data.n_items
    n_train = len(data.train_u)
    A_hat = normalized_adjacency(data.train_u, data.train_i, nu, ni) if args.n_layers > 0 else None
    model = Model(nu, ni, args.emb_size, args.n_layers, args.sampler, A_hat)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    train_csr = _csr(data.train_u, data.train_i, nu)
    has_valid = data.valid_u is not None and len(data.valid_u) > 0
    if data.format == "lightgcn":
        valid_csr = _csr(data.valid_u, data.valid_i, nu) if has_valid else None
        sel_metric = f"recall@{args.topk_list[0]}"
    else:
        sel_metric = f"ndcg@{args.topk_list[0]}"

    def evaluate():
        Eu, Ei = model.scoring_embeddings(args.score)
        if data.format == "lightgcn":
            v = eval_full(Eu, Ei, data.valid_u, data.valid_i, [train_csr], args.topk_list, ni) if has_valid else None
            masks = [train_csr] + ([valid_csr] if has_valid else [])
            t = eval_full(Eu, Ei, data.test_u, data.test_i, masks, args.topk_list, ni)
        else:
            v = eval_sampled(Eu, Ei, data.valid_u, data.valid_i, data.valid_negs, args.topk_list)
            t = eval_sampled(Eu, Ei, data.test_u, data.test_i, data.test_negs, args.topk_list)
        return v, t

    bs = args.batch_size
    batches_per_epoch = (n_train + bs - 1) // bs
    run_batches = min(batches_per_epoch, args.max_batches) if args.max_batches > 0 else batches_per_epoch
    extrapolated = run_batches < batches_per_epoch
    print(f"# dataset {data.name} ({data.format}): users {nu} items {ni} train {n_train} "
          f"valid {len(data.valid_u) if has_valid else 0} test {len(data.test_u)}", flush=True)
    print(f"# model {args.model_name} encoder {args.encoder} L={args.n_layers} sampler {args.sampler} "
          f"K={args.num_neg} batch {bs} threads {torch.get_num_threads()} "
          f"batches/epoch {batches_per_epoch}{' (running %d, extrapolated)' % run_batches if extrapolated else ''}",
          flush=True)

    epochs, batch_times, epoch_secs = [], [], []
    best = None

    def build_result():
        evaluated = [e for e in epochs if "test" in e]
        best_on_test = max(evaluated, key=lambda e: e["test"][sel_metric]) if evaluated else None
        steady = batch_times[1:] if len(batch_times) > 2 else batch_times
        spb = sum(steady) / len(steady) if steady else float("nan")
        result = {
            "dataset": {"name": data.name, "format": data.format, "users": nu, "items": ni, "train": n_train,
                        "valid": int(len(data.valid_u)) if has_valid else 0, "test": int(len(data.test_u))},
            "config": {k: v for k, v in vars(args).items()},
            "epochs": epochs,
            "selection_metric": sel_metric,
            "selection_on": "valid" if has_valid else "test",
            "best_epoch": best[1] if best else None,
            "test": best[2] if best else None,
            "best_on_test": {"epoch": best_on_test["epoch"], "test": best_on_test["test"]} if best_on_test else None,
            "train_seconds_per_epoch": statistics.median(epoch_secs) if epoch_secs else None,
            "seconds_per_batch": spb,
            "seconds_per_batch_note": "mean over batches excluding the very first (warm-up)",
            "batches_per_epoch": batches_per_epoch,
            "batches_run_per_epoch": run_batches,
            "extrapolated": extrapolated,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
        return result, best_on_test, spb

    for ep in range(1, args.epoch + 1):
        model.train()
        perm = rng.permutation(n_train)
        tot, nb = 0.0, 0
        t0 = time.perf_counter()
        for bi in range(run_batches):
            tb = time.perf_counter()
            idx = perm[bi * bs:(bi + 1) * bs]
            u = data.train_u[idx]
            cands = sample_candidates(rng, u, ni, args.num_neg, data.train_keys)
            loss = model.loss(torch.as_tensor(u), torch.as_tensor(data.train_i[idx]), torch.as_tensor(cands),
                              args.gamma, args.eps, args.l2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss)
            nb += 1
            batch_times.append(time.perf_counter() - tb)
        secs = time.perf_counter() - t0
        if extrapolated:
            # extrapolate from the mean batch time (excluding the run's very first, warm-up batch)
            ebt = batch_times[-nb:]
            if ep == 1 and len(ebt) > 1:
                ebt = ebt[1:]
            secs = sum(ebt) / len(ebt) * batches_per_epoch
        epoch_secs.append(secs)
        rec = {"epoch": ep, "loss": tot / max(nb, 1), "seconds": secs}
        if not math.isfinite(rec["loss"]):
            print(f"epoch {ep}: non-finite loss, stopping", flush=True)
            epochs.append(rec)
            break
        if args.eval_every > 0 and (ep % args.eval_every == 0 or ep == args.epoch):
            te = time.perf_counter()
            v, t = evaluate()
            rec["valid"], rec["test"] = v, t
            rec["eval_seconds"] = time.perf_counter() - te
            key = (v if v is not None else t)[sel_metric]
            if best is None or key > best[0]:
                best = (key, ep, t)
        epochs.append(rec)
        msg = f"epoch {ep:4d} loss {rec['loss']:.6f} train {secs:.2f}s{' (extrapolated)' if extrapolated else ''}"
        if "test" in rec:
            if rec["valid"] is not None:
                msg += " | valid " + " ".join(f"{k} {x:.5f}" for k, x in rec["valid"].items())
            msg += " | test " + " ".join(f"{k} {x:.5f}" for k, x in rec["test"].items())
            msg += f" | eval {rec['eval_seconds']:.2f}s"
        print(msg, flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(build_result()[0], partial=ep < args.epoch), f, indent=1)

    result, best_on_test, spb = build_result()
    if best:
        print(f"best epoch {best[1]} (on {result['selection_on']} {sel_metric}) test: "
              + " ".join(f"{k} {x:.5f}" for k, x in best[2].items()))
    if best_on_test:
        print(f"best-on-test epoch {best_on_test['epoch']}: "
              + " ".join(f"{k} {x:.5f}" for k, x in best_on_test["test"].items()))
    print(f"train seconds/epoch (median) {result['train_seconds_per_epoch']:.3f}"
          f"{' (extrapolated)' if extrapolated else ''}; seconds/batch {spb:.4f}; "
          f"peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(result, partial=False), f, indent=1)
    return result


if __name__ == "__main__":
    main()
