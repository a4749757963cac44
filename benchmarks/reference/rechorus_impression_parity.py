#!/usr/bin/python3
"""Parity of ans-train's impression mode with ReChorus's own code (issue 16), run with Debian's python3-pandas.

    /usr/bin/python3 benchmarks/reference/rechorus_impression_parity.py DATA_DIR DATASET [ANS_TRAIN]

1. Reader: ReChorus's ImpressionReader (`src/helpers/ImpressionReader.py` at THUwangcy/ReChorus e58d752, the
   grouping and counting code below is copied from it, logging replaced by print) reads DATA_DIR/DATASET; its four
   log lines must equal the ones ans-train prints.
2. Metrics: ans-train trains BPRMF in impression mode for a few epochs with --save (the checkpoint of the
   dev-selected epoch); this script loads E0 from the checkpoint, scores every dev and test list with ReChorus's
   padding and truncation (20 positives, 20 negatives), and computes HR@K / NDCG@K with ReChorus's
   `ImpressionRunner.evaluate_method` (copied below); they must equal ans-train's dev and test metrics.

Exits 1 on a mismatch. Prints both sides.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd


# ---- ReChorus ImpressionReader (e58d752), _read_data + _append_impression_info, logging -> print ----------
def rechorus_reader(prefix, dataset, impression_idkey="time", sep="\t"):
    out = []
    data_df = dict()
    for key in ["train", "dev", "test"]:
        data_df[key] = pd.read_csv(os.path.join(prefix, dataset, key + ".csv"), sep=sep).reset_index(drop=True).sort_values(
            by=["user_id", impression_idkey])
    key_columns = ["user_id", "item_id", "time"] if impression_idkey == "time" else ["user_id", "item_id", "time", impression_idkey]
    key_columns.append("label")
    all_df = pd.concat([data_df[key][key_columns] for key in ["train", "dev", "test"]])
    n_users, n_items = all_df["user_id"].max() + 1, all_df["item_id"].max() + 1
    out.append('Update impression data -- "# user": {}, "# item": {}, "# entry": {}'.format(n_users - 1, n_items - 1, len(all_df)))
    positive_num = (all_df.label == 1).sum()
    out.append('"# positive interaction": {} ({:.1f}%)'.format(positive_num, positive_num / all_df.shape[0] * 100))
    mask = {"train": [], "dev": [], "test": []}
    for key in data_df.keys():
        df = data_df[key].copy()
        df["last_user_id"] = df["user_id"].shift(1)
        df["last_" + impression_idkey] = df[impression_idkey].shift(1)
        positive_items, negative_items = [], []
        current_pos, current_neg = set(), set()
        for uid, last_uid, ipid, last_ipid, iid, label in \
                df[["user_id", "last_user_id", impression_idkey, "last_" + impression_idkey, "item_id", "label"]].to_numpy():
            if uid == last_uid and ipid == last_ipid:
                positive_items.append([])
                negative_items.append([])
                mask[key].append(0)
            else:
                if len(current_pos):
                    positive_items.append(list(current_pos))
                    negative_items.append(list(current_neg))
                    mask[key].append(1)
                else:
                    if len(current_neg):
                        positive_items.append([])
                        negative_items.append([])
                        mask[key].append(0)
                current_pos, current_neg = set(), set()
            if label:
                current_pos = current_pos.union(set([iid]))
            else:
                current_neg = current_neg.union(set([iid]))
        if len(current_pos):
            positive_items.append(list(current_pos))
            negative_items.append(list(current_neg))
            mask[key].append(1)
        else:
            if len(current_neg):
                positive_items.append([])
                negative_items.append([])
                mask[key].append(0)
        data_df[key]["pos_items"] = positive_items
        data_df[key]["neg_items"] = negative_items
        data_df[key] = data_df[key][np.array(mask[key]) == 1]
    neg_num_sum, pos_num_sum = 0, 0
    for key in ["train", "dev", "test"]:
        df = data_df[key]
        neg_num = [neg.index(0) if 0 in neg else len(neg) for neg in df["neg_items"]]
        pos_num = [pos.index(0) if 0 in pos else len(pos) for pos in df["pos_items"]]
        data_df[key]["neg_num"] = neg_num
        data_df[key]["pos_num"] = pos_num
        data_df[key] = data_df[key].loc[data_df[key].neg_num > 0].reset_index(drop=True)
        neg_num_sum += sum(neg_num)
        pos_num_sum += sum(pos_num)
    neg_num_avg = neg_num_sum / sum([data_df[key].shape[0] for key in data_df])
    pos_num_avg = pos_num_sum / sum([data_df[key].shape[0] for key in data_df])
    out.append("train, dev, test request num: " + str(len(data_df["train"])) + " " + str(len(data_df["dev"])) + " " + str(len(data_df["test"])))
    out.append("Average positive items / impression = %.3f, negative items / impression = %.3f" % (pos_num_avg, neg_num_avg))
    return out, data_df


# ---- ReChorus ImpressionRunner (e58d752): HR_at_k, DCG_at_k, NDCG_at_k, evaluate_method (test_all = 0) ----
def HR_at_k(labels, valid_num, k):
    indices = np.arange(labels.shape[1]) < valid_num[:, None]
    labels = labels * indices
    num_hits = np.sum(labels[:, :k], axis=1)
    positive_num = np.sum(labels, axis=1)
    positive_num[positive_num == 0] = 1
    positive_num[positive_num > k] = k
    hit_rate = num_hits / positive_num
    hit_rate[hit_rate > 0] = 1
    return hit_rate


def DCG_at_k(labels, valid_num, k):
    indices = np.arange(labels.shape[1]) < valid_num[:, None]
    labels = labels * indices
    labels = labels[:, :k]
    return np.sum(labels / np.log2(np.arange(2, labels.shape[1] + 2)), axis=1)


def NDCG_at_k(labels, valid_num, k):
    indices = np.arange(labels.shape[1]) < valid_num[:, None]
    labels = labels * indices
    dcg = DCG_at_k(labels, valid_num, k)
    sorted_labels = np.sort(labels, axis=1)[:, ::-1]
    ideal_dcg = DCG_at_k(sorted_labels, valid_num, k)
    ideal_dcg[ideal_dcg == 0] = 1
    return dcg / ideal_dcg


def evaluate_method(predictions, topk, neg_num, pos_num_max, pos_num):
    evaluations = dict()
    pos_mask = np.ones((predictions.shape[0], pos_num_max))
    rest_mask = np.zeros((predictions.shape[0], predictions.shape[1] - pos_num_max))
    a_mask = np.concatenate((pos_mask, rest_mask), axis=1)
    eps = 1e-6
    predictions = predictions - eps * a_mask
    sort_idx = (-predictions).argsort(axis=1, kind="mergesort")
    neg_num_max = len(predictions[0]) - pos_num_max
    pos_num_cliped = np.array(pos_num)
    pos_num_cliped[pos_num_cliped > pos_num_max] = pos_num_max
    neg_num_cliped = np.array(neg_num)
    neg_num_cliped[neg_num_cliped > neg_num_max] = neg_num_max
    whole_len = pos_num_cliped + neg_num_cliped
    labels = (np.arange(max(max(pos_num_cliped), pos_num_max)) < pos_num_cliped[:, None]).astype(int)
    labels = np.concatenate((labels, np.zeros_like(labels)), axis=1)
    labels = np.take_along_axis(labels, sort_idx, axis=1)
    for k in topk:
        evaluations["NDCG@{}".format(k)] = NDCG_at_k(labels, whole_len, k).mean()
    for k in topk:
        evaluations["HR@{}".format(k)] = HR_at_k(labels, whole_len, k).mean()
    return evaluations


def rechorus_predictions(df, E0, n_users, mp=20, mn=20):
    """ImpressionModel.Dataset._get_feed_dict + collate_batch + BPRMF forward + ImpressionRunner.evaluate's mask."""
    U = E0[:n_users].astype(np.float32)
    I = E0[n_users:].astype(np.float32)
    rows = len(df)
    pred = np.full((rows, mp + mn), -np.inf, dtype=np.float32)
    for r, (u, pos, neg) in enumerate(zip(df["user_id"], df["pos_items"], df["neg_items"])):
        p = np.array(pos[:mp], dtype=np.int64) - 1
        n = np.array(neg[:mn], dtype=np.int64) - 1
        pred[r, :len(p)] = I[p] @ U[u - 1]
        pred[r, mp:mp + len(n)] = I[n] @ U[u - 1]
    return pred


def read_npy_from_checkpoint(d, name):
    with open(os.path.join(d, "manifest.json")) as f:
        mf = json.load(f)
    for a in mf["arrays"]:
        if a["name"] == name:
            return np.load(os.path.join(d, a["file"]))
    raise KeyError(name)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    prefix, dataset = sys.argv[1], sys.argv[2]
    ans_train = sys.argv[3] if len(sys.argv) > 3 else "build/examples/ans-train"
    ok = True
    theirs, df = rechorus_reader(prefix, dataset)
    with tempfile.TemporaryDirectory() as tmp:
        ck, js = os.path.join(tmp, "ck"), os.path.join(tmp, "run.json")
        cmd = [ans_train, "--model_name", "BPRMF", "--emb_size", "64", "--lr", "1e-3", "--l2", "0", "--loss_n", "BPR",
               "--dataset", dataset, "--path", prefix, "--metric", "NDCG,HR", "--topk", "1,2,3,5,10", "--main_metric",
               "NDCG@2", "--model_mode", "Impression", "--epoch", "5", "--quiet", "--save", ck, "--json", js]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
        mine = [l for l in out if l.startswith(("Update impression data", '"# positive', "train, dev, test request", "Average positive"))]
        print("reader, ReChorus ImpressionReader:")
        for l in theirs:
            print("  " + l)
        print("reader, ans-train:")
        for l in mine:
            print("  " + l)
        if mine != theirs:
            print("MISMATCH: reader lines differ")
            ok = False
        with open(js) as f:
            run = json.load(f)
        E0 = read_npy_from_checkpoint(ck, "E0")
        n_users = run["dataset"]["users"]
        for split, key in (("dev", "dev"), ("test", "test")):
            d = df[split]
            pred = rechorus_predictions(d, E0, n_users)
            theirs_m = evaluate_method(pred, [1, 2, 3, 5, 10], d["neg_num"].to_numpy(), 20, d["pos_num"].to_numpy())
            worst = max(abs(theirs_m[k] - run[key][k]) for k in theirs_m)
            print(f"{split} metrics at the selected epoch {run['best_epoch']}: max |ReChorus - ans| = {worst:.2e}")
            for k in sorted(theirs_m, key=lambda s: (int(s.split('@')[1]), s)):
                print(f"  {k:8s} ReChorus {theirs_m[k]:.6f}  ans {run[key][k]:.6f}")
            if worst > 1e-6:
                print("MISMATCH: metrics differ")
                ok = False
    print("parity: " + ("OK" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
