#!/usr/bin/env python3
"""Check the reference's faithful ANS loss against the golden vectors (float64 autograd).

Usage: check_golden.py DIR [DIR ...]   (each DIR holds manifest.json and .npy arrays)

The loss evaluated here is the very function that ans_ref.py trains with
(ans_ref.ans_faithful_loss / ans_ref.model_faithful_loss). Prints the max relative error of
every value and gradient vs the stored ones; exit status 1 if any exceeds --tol.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ans_ref import ans_faithful_loss, emb_reg_loss, model_faithful_loss, normalized_adjacency  # noqa: E402

PARAMS = ["W_u", "b_u", "W_i", "b_i", "w_m", "c_m"]


def rel_err(got, want):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(np.max(np.abs(want)) if want.size else 0.0, 1e-300)
    # relative to the largest magnitude of the stored array (elementwise rel. error is also reported)
    return float(np.max(np.abs(got - want)) / scale), float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-12)))


def check(d, tol):
    man = json.load(open(os.path.join(d, "manifest.json")))
    arr = {f[:-4]: np.load(os.path.join(d, f)) for f in man["arrays"]}
    T = {k: torch.tensor(v, dtype=torch.float64 if v.dtype.kind == "f" else torch.long) for k, v in arr.items()}
    gamma, eps = man["gamma"], man["eps"]
    if man["kind"] == "loss":
        leaves = ["U", "P", "N"] + PARAMS
        for k in leaves:
            T[k].requires_grad_(True)
        out = ans_faithful_loss(T["U"], T["P"], T["N"], T["W_u"], T["b_u"], T["W_i"], T["b_i"], T["w_m"], T["c_m"],
                                T["noise_uniform"], gamma, eps, noise_scale=man.get("noise_scale", 0.1))
        total = out["aux"]
        values = ["bpr", "sns", "distance", "orth"]
    else:
        leaves = ["E0"] + PARAMS
        for k in leaves:
            T[k].requires_grad_(True)
        nu, ni = man["n_users"], man["n_items"]
        A = normalized_adjacency(arr["edges"][:, 0], arr["edges"][:, 1], nu, ni, dtype=torch.float64)
        out = model_faithful_loss(T["E0"], A, nu, man["L"], T["users"], T["pos_items"], T["cand_items"],
                                  T["W_u"], T["b_u"], T["W_i"], T["b_i"], T["w_m"], T["c_m"], T["noise_uniform"],
                                  gamma, eps, man["reg_weight"])
        total = out["total"]
        values = ["bpr", "sns", "distance", "orth", "reg"]
    total.backward()
    rows = []
    for v in values:
        rows.append((v, *rel_err(float(out[v]), man[v])))
    rows.append(("total", *rel_err(float(total), man["total"])))
    for k in leaves:
        rows.append((f"grad_{k}", *rel_err(T[k].grad.numpy(), arr[f"grad_{k}"])))
    for k in ("margin", "gate"):
        if k in arr:
            rows.append((k, *rel_err(out[k].detach().numpy(), arr[k])))
    kmatch = bool(np.array_equal(out["k_star"].numpy(), arr["k_star"])) if "k_star" in arr else None
    worst = max(r[1] for r in rows)
    print(f"== {d}  kind={man['kind']} B={man['B']} K={man['K']} L={man['L']} d={man['d']}")
    for name, e_scaled, e_elem in rows:
        print(f"   {name:10s} max rel err {e_scaled:.3e}   (elementwise {e_elem:.3e})")
    print(f"   k_star match: {kmatch}")
    ok = worst <= tol and kmatch is not False
    print(f"   worst {worst:.3e}  -> {'PASS' if ok else 'FAIL'} (tol {tol:g})")
    return ok, worst


def check_spec_vector():
    """Spec section 9 numeric vector (B=1, K=2, H=2, d=3; values printed to ~16 digits, gradients are
    central finite differences printed to 7 digits, so expect ~1e-6 on the gradients)."""
    dt = torch.float64
    t = lambda x: torch.tensor(x, dtype=dt, requires_grad=True)
    U = t([[[0.3, -0.2, 0.5], [0.1, 0.4, -0.3]]])
    P = t([[[0.4, 0.1, 0.2], [-0.2, 0.3, 0.6]]])
    N = t([[[[0.2, -0.5, 0.1], [0.3, 0.2, -0.4]], [[-0.1, 0.3, 0.6], [0.5, -0.2, 0.1]]]])
    W_u = t([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6], [-0.2, 0.3, 0.7]]); b_u = t([0.1, -0.2, 0.3])
    W_i = t([[0.6, 0.2, -0.1], [-0.4, 0.5, 0.3], [0.2, -0.3, 0.8]]); b_i = t([-0.1, 0.2, 0.1])
    w_m = t([0.7, -0.4, 0.9]); c_m = t([0.5])
    r = torch.tensor([[[[0.2, 0.7, 0.4], [0.9, 0.1, 0.5]], [[0.3, 0.3, 0.8], [0.6, 0.2, 0.2]]]], dtype=dt)
    gamma, eps, lam = 0.5, 0.5, 0.01
    out = ans_faithful_loss(U, P, N, W_u, b_u, W_i, b_i, w_m, c_m, r, gamma, eps)
    R = emb_reg_loss(U[:, 0], P[:, 0], N[:, :, 0])
    L = out["bpr"] + lam * R + gamma * (out["sns"] + out["distance"] + out["orth"])
    L.backward()
    want = dict(M=0.862988099397832, R=1.9464787585006162, S_c=1.090200100639047, D=0.43025011595694984,
                O=0.07502235320199971, L=1.6801891718818365)
    got = dict(M=out["bpr"], R=R, S_c=out["sns"], D=out["distance"], O=out["orth"], L=L)
    rows = [(k, *rel_err(float(got[k]), want[k])) for k in want]
    gw = {
        "U": [[[-9.819946e-02, -3.036226e-01, -3.643006e-02], [2.441752e-01, -5.358861e-02, -5.520763e-01]]],
        "P": [[[-8.986070e-02, 1.884838e-01, -2.944884e-01], [-1.577982e-01, -1.860492e-01, 2.877889e-01]]],
        "N": [[[[1.809994e-01, -1.874732e-01, 2.736208e-01], [8.916165e-02, 2.286333e-01, -2.635910e-01]],
               [[-5.119864e-02, 1.861802e-02, 5.138975e-02], [5.281641e-02, -3.934437e-02, -1.567880e-02]]]],
        "W_u": [[-2.009837e-04, 1.084269e-03, -1.285253e-03], [8.508239e-05, -4.716889e-04, 5.567713e-04],
                [-1.418859e-03, 1.356040e-03, -2.774899e-03]],
        "b_u": [6.875978e-04, -3.092018e-04, -4.143624e-03],
        "W_i": [[-1.047094e-03, 2.446324e-03, 2.600670e-03], [-6.132748e-04, 2.359918e-03, -1.302696e-03],
                [1.492428e-03, -9.986540e-04, -3.505902e-03]],
        "b_i": [2.150047e-03, -7.434248e-03, -2.882925e-03],
        "w_m": [-1.390664e-04, 1.193129e-04, -3.024938e-04], "c_m": [1.480392e-03]}
    leaves = dict(U=U, P=P, N=N, W_u=W_u, b_u=b_u, W_i=W_i, b_i=b_i, w_m=w_m, c_m=c_m)
    for k, v in gw.items():
        rows.append((f"grad_{k}", *rel_err(leaves[k].grad.numpy(), np.array(v))))
    print("== spec section 9 vector (gradients vs 7-digit finite differences)")
    for name, e_scaled, e_elem in rows:
        print(f"   {name:10s} max rel err {e_scaled:.3e}   (elementwise {e_elem:.3e})")
    kstar = out["k_star"].tolist()
    vals_ok = max(r[1] for r in rows[:6]) <= 1e-12
    grads_ok = max(r[1] for r in rows[6:]) <= 1e-5
    print(f"   k_star {kstar} (spec: [[0, 0]]); values {'PASS' if vals_ok else 'FAIL'} (tol 1e-12), "
          f"gradients {'PASS' if grads_ok else 'FAIL'} (tol 1e-5)")
    return vals_ok and grads_ok and kstar == [[0, 0]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--spec-vector", action="store_true", help="also check the spec section 9 vector")
    ap.add_argument("--tol", type=float, default=1e-10)
    a = ap.parse_args()
    torch.set_num_threads(1)
    results = []
    for d in a.dirs:
        if not os.path.exists(os.path.join(d, "manifest.json")):
            continue
        results.append(check(d, a.tol))
    worst = max(w for _, w in results) if results else float("nan")
    allok = all(ok for ok, _ in results) and (bool(results) or a.spec_vector)
    if a.spec_vector:
        allok = check_spec_vector() and allok
    print(f"overall: {len(results)} cases, worst max rel err {worst:.3e} -> {'PASS' if allok else 'FAIL'}")
    sys.exit(0 if allok else 1)


if __name__ == "__main__":
    main()
