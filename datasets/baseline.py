#!/usr/bin/python3
"""Ridge-regression baseline on time-pooled features of an MMSA-format pickle.

Usage: /usr/bin/python3 datasets/baseline.py FILE.pkl [FILE.pkl ...]

For each file prints one Markdown table row per feature set (text, audio, vision, all
three concatenated) with the TEST-split scores. Needs only numpy. Reads the file with
pickle.load, which executes code from the file: use it on files you generated yourself
(decocl make-dataset), never on files from elsewhere.

Method (datasets/README.md, "Synthetic datasets"):
  - features cleaned as DecAlign's loader does: NaN and +-inf in audio/vision become 0;
  - time pooling: the mean over the frames that are not all zero (padding is zero);
  - each pooled dimension standardised with the train split's mean and std;
  - ridge regression with an intercept, the penalty picked from a fixed grid by the
    VALID split (MAE for regression, accuracy for classification), fitted on train only;
  - regression (mosi/mosei/sims): MAE, Pearson correlation, Acc-2 on non-zero labels
    (sign agreement); classification (iemocap): one-vs-rest ridge on one-hot targets,
    argmax, accuracy and weighted F1.
"""
import pickle
import sys

import numpy as np

LAMBDAS = [10.0**e for e in np.arange(-2, 5.01, 0.5)]


def pooled(split, key):
    x = np.asarray(split[key], dtype=np.float64)
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    valid = np.any(x != 0, axis=2)  # (N, T)
    count = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    return (x * valid[:, :, None]).sum(axis=1) / count


class Ridge:
    """Ridge regression with an intercept for every penalty at once, through one SVD."""

    def __init__(self, x, y):
        self.xm, self.ym = x.mean(axis=0), y.mean(axis=0)
        u, self.s, self.vt = np.linalg.svd(x - self.xm, full_matrices=False)
        self.uty = u.T @ (y - self.ym)

    def predict(self, lam, x):
        shrink = self.s / (self.s**2 + lam)
        w = self.vt.T @ (shrink.reshape(-1, *([1] * (self.uty.ndim - 1))) * self.uty)
        return (x - self.xm) @ w + self.ym


def weighted_f1(y, p, classes):
    total = 0.0
    for c in classes:
        tp = np.sum((p == c) & (y == c))
        fp = np.sum((p == c) & (y != c))
        fn = np.sum((p != c) & (y == c))
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        total += f1 * np.sum(y == c)
    return total / len(y)


def regression_scores(y, p):
    nz = y != 0
    return {
        "MAE": np.mean(np.abs(p - y)),
        "Corr": np.corrcoef(p, y)[0, 1] if np.std(p) > 0 else 0.0,
        "Acc-2": np.mean(np.sign(p[nz]) == np.sign(y[nz])),
    }


def evaluate(data, keys, classify):
    feats = {}
    for s in ("train", "valid", "test"):
        feats[s] = np.concatenate([pooled(data[s], k) for k in keys], axis=1)
    mu, sd = feats["train"].mean(axis=0), feats["train"].std(axis=0)
    sd[sd == 0] = 1.0
    for s in feats:
        feats[s] = (feats[s] - mu) / sd
    if classify:
        labels = {s: np.asarray(data[s]["classification_labels"]).astype(np.int64) for s in feats}
        classes = np.arange(6)
        targets = (labels["train"][:, None] == classes[None, :]).astype(np.float64)
    else:
        labels = {s: np.asarray(data[s]["regression_labels"], dtype=np.float64) for s in feats}
        targets = labels["train"]

    model = Ridge(feats["train"], targets)

    def predict(lam, s):
        out = model.predict(lam, feats[s])
        return np.argmax(out, axis=1) if classify else out

    def valid_score(lam):
        p = predict(lam, "valid")
        if classify:
            return np.mean(p == labels["valid"])
        return -np.mean(np.abs(p - labels["valid"]))

    lam = max(LAMBDAS, key=valid_score)
    p, y = predict(lam, "test"), labels["test"]
    if classify:
        return {"Acc": np.mean(p == y), "WF1": weighted_f1(y, p, classes)}, lam
    return regression_scores(y, p), lam


def main(paths):
    for path in paths:
        with open(path, "rb") as f:
            data = pickle.load(f)  # trusted: a file we generated
        classify = "regression_labels" not in data["train"]
        n = "/".join(str(len(data[s]["id"])) for s in ("train", "valid", "test"))
        print(f"\n{path} (train/valid/test {n})")
        if classify:
            y_tr, y_te = (np.asarray(data[s]["classification_labels"]) for s in ("train", "test"))
            major = np.bincount(y_tr.astype(np.int64)).argmax()
            print(f"| features | Acc | WF1 | lambda |\n|---|---|---|---|\n"
                  f"| majority class | {np.mean(y_te == major):.3f} | - | - |")
        else:
            y_tr, y_te = (np.asarray(data[s]["regression_labels"], dtype=np.float64) for s in ("train", "test"))
            print("| features | MAE | Corr | Acc-2 | lambda |\n|---|---|---|---|---|\n"
                  f"| train mean | {np.mean(np.abs(y_te - y_tr.mean())):.3f} | - | - | - |")
        for name, keys in (("text", ["text"]), ("audio", ["audio"]), ("vision", ["vision"]),
                           ("all three", ["text", "audio", "vision"])):
            scores, lam = evaluate(data, keys, classify)
            cells = " | ".join(f"{v:.3f}" for v in scores.values())
            print(f"| {name} | {cells} | {lam:g} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
