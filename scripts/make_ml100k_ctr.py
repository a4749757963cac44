#!/usr/bin/env python3
"""Build the ReChorus CTR dataset ML_100kCTR from MovieLens-100k (RecBole atomic format).

What it does
    Reads `ml-100k.inter` (RecBole atomic file: TSV with a typed header such as
    `user_id:token  item_id:token  rating:float  timestamp:float`) and writes `train.csv`, `dev.csv`,
    `test.csv` (plus the `user2newid.json` / `item2newid.json` id maps) in the ReChorus CTR / impression
    format, following step by step how ReChorus turns MovieLens-1M into `ML_1MCTR`.

Notebook followed
    THUwangcy/ReChorus, `data/MovieLens_1M/MovieLens-1M.ipynb` (HEAD b29859e, 2024-12-18), the cells from
    "# read interaction data" through "# Save interaction data" (cells 4-8 and 10-16 of the .ipynb).
    The Top-k part (ML_1MTOPK, cells 18-26) is not built. Each block below names the cell it mirrors.

Steps, and the notebook oddities kept on purpose
    1. Read (cell 4): label = 1 if rating >= 4 else 0; every interaction is kept (negatives too), with the
       ids kept as the raw *strings* and the time as a float. Positives only are counted per user / item.
    2. "5-core" filtering (cell 5): users and items with >= 5 *positives* are selected and every interaction
       (positive or negative) whose user and item are both selected is kept. Users / items without any
       positive are dropped even if they have many negatives. The `while` loop is meant to iterate to a
       fixed point, but its condition compares the selected sets with the counts recomputed *after*
       filtering, which can never be larger, so it runs exactly once (the notebook prints one "User: ..."
       line). It is replicated literally, so the result may keep users / items with < 5 positives.
    3. Time features (cells 7-8): `datetime.fromtimestamp(t)`, i.e. the LOCAL time of the process running
       the script (the notebook's behaviour; set the TZ environment variable to choose, e.g. `TZ=UTC`;
       the timezone used is printed). hour, weekday (Mon = 0), period (Britannica parts of the day, 0-8),
       day = (local date - earliest local date).days. The two lines appended to cell 8 in the last
       notebook commit (`interaciton_df[...] = ...astype(int)`) are a syntax error as committed, assign to a
       misspelt name and were added after the outputs were produced; they have no effect and are ignored.
       In particular the ids stay strings.
    4. Re-indexing (cell 11): users and items are numbered from 1 in `sorted()` order of the raw id
       *strings*, i.e. lexicographically ("1" < "10" < "100" < "101" < ... < "2"), not numerically and not
       by first appearance. The rows are then sorted by (new user_id, time) with a stable sort (pandas'
       multi-column sort_values is a stable lexsort), so ties keep the file order. The id maps are saved
       as JSON {int(raw id): new id} in that order, as the notebook does. The ids are assigned before the
       split, over the whole filtered data, so the files need not use every id: a user or item seen only
       after the train period gets an id but appears in no file (ML-1M: 6034 users numbered, 6033 in
       train). ReChorus' reader takes n_users = max id + 1, so this is harmless there.
    5. Split (cell 13): split_time1 = max(day) * 0.8 and split_time2 = max(day) * 0.9 as floats (no int(),
       unlike the Top-k cell): train = day <= split_time1, dev = split_time1 < day <= split_time2,
       test = day > split_time2. The split is by local calendar day, not by timestamp quantile.
       Dev and test keep only rows whose user AND item occur in train; train is not filtered.
    6. Impression ids (cell 15): within each split separately (each restarts at 1), consecutive rows of
       the same user are grouped in impressions of at most 20 rows.
    7. Save (cell 16): columns user_id item_id time label c_hour_c c_weekday_c c_period_c c_day_f
       impression_id, tab-separated, header line, no index, '\\n' line ends, rows in the (user_id, time)
       order of step 4. `time` is written the way pandas writes a float64 column, e.g. `881250949.0`.

Deviations, and why
    - Input: RecBole `.inter` instead of `ratings.dat`: the typed header is parsed and columns are found
      by name (user_id, item_id, rating, timestamp); `::` becomes a tab. Blank lines are skipped (RecBole's
      own reader skips them; the notebook would crash on one).
    - Checks the notebook does not make: a malformed header, a row with the wrong field count, a
      non-numeric or non-finite (nan / inf) rating or timestamp, or an id that is not an integer
      (the notebook's `int(i)` in cell 11 would crash on it) stop the script with `path:line: message` and
      exit status 1. The notebook would silently label a NaN rating 0.
    - `item_meta.csv` (cell 17) is not written: it needs MovieLens-1M's `movies.dat` (title, genres);
      ml-100k's `.item` has other columns, so an equivalent would not be the notebook's.
    - The downloads, tqdm bars, `interaction_5core.csv` (an intermediate file) and the Top-k dataset are
      not produced.
    - Printed output: the notebook's prints (cells 5, 6, 12, 13, and cell 13's displayed tuple), then the
      per-split row counts (shown by the notebook only as tqdm totals in cell 15) and the counts the
      ReChorus reader logs on loading. `test_sel.shape` (cell 14) is not printed: its column count (14)
      reflects the notebook's out-of-order execution (cell 15 ran before cell 14), not the data.

Usage
    python3 scripts/make_ml100k_ctr.py [--inter PATH] [--out DIR]
    default --inter: $ANS_DATA_DIR/ml-100k/ml-100k.inter, ANS_DATA_DIR defaulting to ../shared/data
    relative to the repository root; default --out: <repo root>/build/data/ML_100kCTR. An --out inside
    the repository but outside <repo root>/build is refused (exit status 2). Standard library only.
"""

import argparse
import datetime
import json
import math
import os
import sys
import time as _time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
NEEDED = ("user_id", "item_id", "rating", "timestamp")
SELECT_COLUMNS = ["user_id", "item_id", "time", "label", "c_hour_c", "c_weekday_c", "c_period_c", "c_day_f",
                  "impression_id"]


class InputError(Exception):
    def __init__(self, path, line, message):
        super().__init__("%s:%d: %s" % (path, line, message))


def read_inter(path):
    """Cell 4 ("# read interaction data"), reading a RecBole .inter file instead of ratings.dat."""
    try:
        f = open(path, encoding="utf-8", newline="")
    except OSError as e:
        raise InputError(path, 0, "cannot open: %s" % (e.strerror or e))
    interactions = []
    user_freq, item_freq = dict(), dict()
    with f:
        try:
            header_line = f.readline()
        except UnicodeDecodeError as e:
            raise InputError(path, 1, "not UTF-8 text (%s)" % e)
        if not header_line.strip():
            raise InputError(path, 1, "empty file or empty header (expected a RecBole typed header such as "
                                      "'user_id:token\\titem_id:token\\trating:float\\ttimestamp:float')")
        cols = {}
        names = header_line.rstrip("\r\n").split("\t")
        for c, field in enumerate(names):
            name, sep, typ = field.strip().partition(":")
            if not sep or not name:
                raise InputError(path, 1, "bad header field %r: expected 'name:type'" % field)
            if typ not in RECBOLE_TYPES:
                raise InputError(path, 1, "bad header field %r: type must be one of %s" % (field, ", ".join(RECBOLE_TYPES)))
            if name in cols:
                raise InputError(path, 1, "bad header: column %r appears twice" % name)
            cols[name] = (c, typ)
        for name in NEEDED:
            if name not in cols:
                raise InputError(path, 1, "bad header: no %r column (header: %r)" % (name, header_line.rstrip("\r\n")))
            if cols[name][1].endswith("_seq"):
                raise InputError(path, 1, "bad header: column %r is a sequence (%s)" % (name, cols[name][1]))
        cu, ci, cr, ct = (cols[n][0] for n in NEEDED)
        n_fields = len(names)
        ln = 1
        while True:
            try:
                raw = f.readline()
            except UnicodeDecodeError as e:
                raise InputError(path, ln + 1, "not UTF-8 text (%s)" % e)
            if not raw:
                break
            ln += 1
            if not raw.strip():
                continue  # deviation: blank lines are skipped
            # notebook: line = line.strip().split("::")
            line = raw.strip().split("\t")
            if len(line) != n_fields:
                raise InputError(path, ln, "row has %d field(s), header has %d" % (len(line), n_fields))
            uid, iid = line[cu], line[ci]
            for what, tok in (("user_id", uid), ("item_id", iid)):
                try:
                    int(tok)
                except ValueError:
                    raise InputError(path, ln, "%s %r is not an integer (the notebook's int() re-keying of "
                                               "the id maps needs integer ids)" % (what, tok))
            try:
                rating = float(line[cr])
            except ValueError:
                raise InputError(path, ln, "rating %r is not a number" % line[cr])
            if not math.isfinite(rating):
                raise InputError(path, ln, "rating %r is not finite" % line[cr])
            try:
                t = float(line[ct])
            except ValueError:
                raise InputError(path, ln, "timestamp %r is not a number" % line[ct])
            if not math.isfinite(t):
                raise InputError(path, ln, "timestamp %r is not finite" % line[ct])
            try:
                datetime.datetime.fromtimestamp(t)
            except (OverflowError, OSError, ValueError) as e:
                raise InputError(path, ln, "timestamp %r is out of range (%s)" % (line[ct], e))
            label = 1 if rating >= 4 else 0
            interactions.append([uid, t, iid, label])
            if int(label) == 1:
                user_freq[uid] = user_freq.get(uid, 0) + 1
                item_freq[iid] = item_freq.get(iid, 0) + 1
    if not interactions:
        raise InputError(path, ln, "no interactions")
    return interactions, user_freq, item_freq


def five_core(interactions, user_freq, item_freq):
    """Cell 5 ("# 5-core filtering"), literally: the loop condition makes it a single pass."""
    select_uid, select_iid = [], []
    while len(select_uid) < len(user_freq) or len(select_iid) < len(item_freq):
        select_uid, select_iid = [], []
        for u in user_freq:
            if user_freq[u] >= 5:
                select_uid.append(u)
        for i in item_freq:
            if item_freq[i] >= 5:
                select_iid.append(i)
        print("User: %d/%d, Item: %d/%d" % (len(select_uid), len(user_freq), len(select_iid), len(item_freq)))

        select_uid = set(select_uid)
        select_iid = set(select_iid)
        user_freq, item_freq = dict(), dict()
        interactions_5core = []
        for line in interactions:
            uid, iid, label = line[0], line[2], line[-1]
            if uid in select_uid and iid in select_iid:
                interactions_5core.append(line)
                if int(label) == 1:
                    user_freq[uid] = user_freq.get(uid, 0) + 1
                    item_freq[iid] = item_freq.get(iid, 0) + 1
        interactions = interactions_5core
    # Cell 6
    print("Selected Interactions: %d, Users: %d, Items: %d" % (len(interactions), len(select_uid), len(select_iid)))
    return interactions


def get_time_range(hour):  # cell 8, "according to the Britannica dictionary"
    if hour >= 5 and hour <= 8:
        return 0
    if hour > 8 and hour < 11:
        return 1
    if hour >= 11 and hour <= 12:
        return 2
    if hour > 12 and hour <= 15:
        return 3
    if hour > 15 and hour <= 17:
        return 4
    if hour >= 18 and hour <= 19:
        return 5
    if hour > 19 and hour <= 21:
        return 6
    if hour > 21:
        return 7
    return 8  # 0-4 am


def fmt_float(x):
    # pandas to_csv writes a float64 column with numpy's shortest repr: 881250949.0
    return repr(float(x))


def write_tsv(path, rows):
    """Cell 16: df[select_columns].to_csv(path, sep="\\t", index=False)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\t".join(SELECT_COLUMNS) + "\n")
        for r in rows:
            f.write("%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n" % (
                r["user_id"], r["item_id"], fmt_float(r["time"]), r["label"], r["c_hour_c"], r["c_weekday_c"],
                r["c_period_c"], r["c_day_f"], r["impression_id"]))


def label_stats(rows):
    s = sum(r["label"] for r in rows)
    return s, (s / len(rows) if rows else float("nan"))


def is_within(path, parent):
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def timezone_note():
    off = datetime.datetime.now().astimezone().utcoffset()
    tz = os.environ.get("TZ")
    return "%s (UTC offset now: %s%s)" % ("TZ=" + tz if tz is not None else "/".join(sorted(set(_time.tzname))),
                             "+" if off >= datetime.timedelta(0) else "-",
                             str(abs(off))[:-3].rjust(5, "0"))


def main(argv=None):
    data_dir = os.environ.get("ANS_DATA_DIR") or os.path.join(ROOT, "..", "shared", "data")
    ap = argparse.ArgumentParser(description="Build ReChorus ML_100kCTR from MovieLens-100k (RecBole .inter), "
                                             "following ReChorus data/MovieLens_1M/MovieLens-1M.ipynb.")
    ap.add_argument("--inter", default=os.path.join(data_dir, "ml-100k", "ml-100k.inter"),
                    help="RecBole .inter file (default: $ANS_DATA_DIR/ml-100k/ml-100k.inter)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "data", "ML_100kCTR"),
                    help="output folder (default: <repo>/build/data/ML_100kCTR)")
    args = ap.parse_args(argv)

    out = os.path.realpath(args.out)
    root = os.path.realpath(ROOT)
    if is_within(out, root) and not is_within(out, os.path.join(root, "build")):
        print("make_ml100k_ctr.py: refusing to write to %s: it is inside the repository %s but not under %s/build"
              % (out, root, root), file=sys.stderr)
        return 2

    try:
        interactions, user_freq, item_freq = read_inter(args.inter)
    except InputError as e:
        print(str(e), file=sys.stderr)
        return 1
    print("input: %s (%d interactions)" % (args.inter, len(interactions)))
    print("local timezone used for dates: %s" % timezone_note())

    # Cell 5 and cell 6
    interactions = five_core(interactions, user_freq, item_freq)
    if not interactions:
        print("%s:0: no interaction is left after the 5-core filtering (no user and item with >= 5 positives)"
              % args.inter, file=sys.stderr)
        return 1

    # Cell 7: ts.append(datetime.fromtimestamp(interactions[i][1]))  -- local time of this process
    # Cell 8: hour, weekday, date, period, day = (date - min_date).days
    rows = []
    for uid, t, iid, label in interactions:
        ts = datetime.datetime.fromtimestamp(t)
        rows.append({"original_user_id": uid, "time": t, "news_id": iid, "label": label,
                     "c_hour_c": ts.hour, "c_weekday_c": ts.weekday(), "date": ts.date(),
                     "c_period_c": get_time_range(ts.hour)})
    min_date = min(r["date"] for r in rows)
    for r in rows:
        r["c_day_f"] = (r["date"] - min_date).days

    # Cell 11: ids from 1 in sorted() order of the raw id strings (lexicographic), then
    # sort_values(by=['user_id','time']) -- stable, ties keep the file order.
    user2newid_ctr = dict(zip(sorted(set(r["original_user_id"] for r in rows)), range(1, 1 + len(set(r["original_user_id"] for r in rows)))))
    item2newid_ctr = dict(zip(sorted(set(r["news_id"] for r in rows)), range(1, 1 + len(set(r["news_id"] for r in rows)))))
    for r in rows:
        r["user_id"] = user2newid_ctr[r["original_user_id"]]
        r["item_id"] = item2newid_ctr[r["news_id"]]
    rows.sort(key=lambda r: (r["user_id"], r["time"]))
    nu2nid = dict()
    ni2nid = dict()
    for i in user2newid_ctr.keys():
        nu2nid[int(i)] = user2newid_ctr[i]
    for i in item2newid_ctr.keys():
        ni2nid[int(i)] = item2newid_ctr[i]

    # Cell 12: "# Count statistics" (columns in the notebook's frame order)
    for col in ["c_hour_c", "c_weekday_c", "c_period_c", "c_day_f", "user_id", "item_id"]:
        print(col, len(set(r[col] for r in rows)))

    # Cell 13: split by day at max*0.8 / max*0.9 (floats), dev/test restricted to train users and items
    max_day = max(r["c_day_f"] for r in rows)
    split_time1 = max_day * 0.8
    train = [r for r in rows if r["c_day_f"] <= split_time1]
    val_test = [r for r in rows if r["c_day_f"] > split_time1]
    split_time2 = max_day * 0.9
    val = [r for r in val_test if r["c_day_f"] <= split_time2]
    test = [r for r in val_test if r["c_day_f"] > split_time2]
    train_u, train_i = set(r["user_id"] for r in train), set(r["item_id"] for r in train)
    val_sel = [r for r in val if r["user_id"] in train_u and r["item_id"] in train_i]
    test_sel = [r for r in test if r["user_id"] in train_u and r["item_id"] in train_i]
    print("Train user: %d, item: %d" % (len(train_u), len(train_i)))
    print("Validation user: %d, item:%d" % (len(set(r["user_id"] for r in val_sel)), len(set(r["item_id"] for r in val_sel))))
    print("Test user: %d, item:%d" % (len(set(r["user_id"] for r in test_sel)), len(set(r["item_id"] for r in test_sel))))
    print(repr(label_stats(train) + label_stats(val_sel) + label_stats(test_sel)))

    # Cell 15: impression ids, per split, runs of the same user cut every 20 rows
    for part in (train, val_sel, test_sel):
        current_impid = 0
        impression_len = 0
        max_imp_len = 20
        last_uid = None  # shift(1) gives NaN on the first row
        for r in part:
            uid = r["user_id"]
            if uid == last_uid:
                if impression_len >= max_imp_len:
                    current_impid += 1
                    impression_len = 1
                else:
                    impression_len += 1
            else:
                current_impid += 1
                impression_len = 1
            r["impression_id"] = current_impid
            last_uid = uid

    # Cell 10 (os.makedirs) and cell 16 (save), plus the id maps of cell 11
    try:
        os.makedirs(out, exist_ok=True)
        write_tsv(os.path.join(out, "train.csv"), train)
        write_tsv(os.path.join(out, "dev.csv"), val_sel)
        write_tsv(os.path.join(out, "test.csv"), test_sel)
        with open(os.path.join(out, "user2newid.json"), "w", encoding="utf-8") as f:
            json.dump(nu2nid, f)
        with open(os.path.join(out, "item2newid.json"), "w", encoding="utf-8") as f:
            json.dump(ni2nid, f)
    except OSError as e:
        print("%s:0: cannot write: %s" % (e.filename or out, e.strerror or e), file=sys.stderr)
        return 1

    # Extra summary: split boundaries and sizes, and what the ReChorus reader logs on loading
    print("days 0..%d from %s; train day <= %r (through %s), dev day <= %r (through %s), test after"
          % (max_day, min_date, split_time1, min_date + datetime.timedelta(days=math.floor(split_time1)),
             split_time2, min_date + datetime.timedelta(days=math.floor(split_time2))))
    for name, part in (("train.csv", train), ("dev.csv", val_sel), ("test.csv", test_sel)):
        pos, _ = label_stats(part)
        print("%s: %d rows, %d positives, %d users, %d items, %d impressions" % (
            name, len(part), pos, len(set(r["user_id"] for r in part)), len(set(r["item_id"] for r in part)),
            part[-1]["impression_id"] if part else 0))
    all_rows = train + val_sel + test_sel
    n_pos = sum(r["label"] for r in all_rows)
    print('ReChorus reader: "# user": %d, "# item": %d, "# entry": %d, "# positive interaction": %d (%.1f%%)' % (
        max(r["user_id"] for r in all_rows), max(r["item_id"] for r in all_rows), len(all_rows), n_pos,
        n_pos / len(all_rows) * 100))
    print("wrote %s/{train,dev,test}.csv, user2newid.json, item2newid.json" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
