#!/usr/bin/python3
"""Expected values for tests/test_metrics.c, computed independently with numpy (1.24).

sklearn is not available, so its f1_score(average='weighted') is re-derived here from its
documented definition: labels = sorted union of y_true and y_pred; per label
precision = tp/(tp+fp), recall = tp/(tp+fn), each 0 when its denominator is 0
(zero_division), F = 2PR/(P+R) (0 when P+R == 0); average weighted by the label's
support in y_true. The other metrics follow utils/metrices.py / MMSA on float32 arrays.
Run: /usr/bin/python3 tests/make_metrics_expected.py > block.txt and paste the block
into tests/test_metrics.c (between the GENERATED markers).
"""
import numpy as np

def wf1(t, p):
    t = np.asarray(t).astype(np.int64); p = np.asarray(p).astype(np.int64)
    labels = np.union1d(t, p)
    fs, ws = [], []
    for c in labels:
        tp = np.sum((t == c) & (p == c)); fp = np.sum((t != c) & (p == c)); fn = np.sum((t == c) & (p != c))
        pr = tp / (tp + fp) if tp + fp > 0 else 0.0
        rc = tp / (tp + fn) if tp + fn > 0 else 0.0
        fs.append(2 * pr * rc / (pr + rc) if pr + rc > 0 else 0.0); ws.append(np.sum(t == c))
    ws = np.array(ws, dtype=np.float64)
    return float(np.sum(np.array(fs) * ws) / np.sum(ws)) if ws.sum() > 0 else 0.0

def corr(p, t):
    with np.errstate(all='ignore'):
        c = np.corrcoef(p, t)[0][1] if len(p) > 1 else np.nan
    return 0.0 if not np.isfinite(c) else float(c)

def macc(p, t):
    return float(np.sum(np.round(p) == np.round(t)) / float(len(t)))

def conf(t, p, k):
    m = np.zeros((k, k), dtype=np.int64)
    for a, b in zip(t, p): m[a][b] += 1
    return m

def mosi(p, t):
    p = np.asarray(p, dtype=np.float32); t = np.asarray(t, dtype=np.float32)
    nz = np.nonzero(t != 0)[0]
    bt = (t[nz] > 0); bp = (p[nz] > 0)
    acc2 = float(np.mean(bt == bp)) if len(nz) else 0.0
    f1 = wf1(bt, bp) if len(nz) else 0.0
    mae = np.mean(np.absolute(p - t)).astype(np.float64)
    r = [("Acc_2", acc2), ("F1_score", f1), ("MAE", float(mae)), ("Corr", corr(p, t)),
         ("Acc_7", macc(np.clip(p, -3., 3.), np.clip(t, -3., 3.))),
         ("Has0_acc_2", float(np.mean((t >= 0) == (p >= 0)))), ("Has0_F1_score", wf1(t >= 0, p >= 0)),
         ("Acc_5", macc(np.clip(p, -2., 2.), np.clip(t, -2., 2.)))]
    return r, conf(bt.astype(int), bp.astype(int), 2)

def buckets(x, edges):
    out = np.full(x.shape, -1)
    for i in range(len(edges) - 1):
        out[(x > edges[i]) & (x <= edges[i + 1])] = i   # float32 array vs Python float: float32 compare
    return out

def sims(p, t):
    p = np.clip(np.asarray(p, dtype=np.float32), -1., 1.); t = np.clip(np.asarray(t, dtype=np.float32), -1., 1.)
    e2, e3, e5 = [-1.01, 0.0, 1.01], [-1.01, -0.1, 0.1, 1.01], [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01]
    b = {k: (buckets(p, e), buckets(t, e)) for k, e in (("2", e2), ("3", e3), ("5", e5))}
    r = [("Mult_acc_%s" % k, macc(b[k][0], b[k][1])) for k in ("2", "3", "5")]
    r += [("F1_score", wf1(b["2"][1], b["2"][0])),
          ("MAE", float(np.mean(np.absolute(p - t)).astype(np.float64))), ("Corr", corr(p, t))]
    return r, conf(b["2"][1], b["2"][0], 2)

def iemocap(logits, t):
    logits = np.asarray(logits, dtype=np.float32)
    yp = np.argmax(logits, axis=1); yt = np.asarray(t, dtype=np.float32).astype(int).flatten()
    return [("WAcc", float(np.mean(yt == yp))), ("WAF1", wf1(yt, yp))], conf(yt, yp, logits.shape[1])

def lit(v):
    s = "%.9g" % v
    return (s if ("." in s or "e" in s) else s + ".0") + "f"

def f32s(a):
    return ", ".join(lit(float(np.float32(v))) for v in np.asarray(a, dtype=np.float32).ravel())

def emit(name, kind, p, t, ncols, res):
    r, cm = res
    print("static const float %s_pred[] = {%s};" % (name, f32s(p)))
    print("static const float %s_label[] = {%s};" % (name, f32s(t)))
    print("static const struct expect %s_exp = {%s, %d, %d, %d," % (name, kind, ncols, len(t), len(r)))
    print("    {%s}," % ", ".join('"%s"' % k for k, _ in r))
    print("    {%s}," % ", ".join("%.17g" % v for _, v in r))
    print("    {%s}," % ", ".join("%.17g" % np.round(np.float64(v), 4) for _, v in r))
    print("    %d, {%s}};" % (cm.shape[0], ", ".join(str(int(x)) for x in cm.ravel())))

rng = np.random.RandomState(5)
cases = []
# MOSI/MOSEI
p = [-2.5, 0.5, 1.5, 0.0, -0.3, 2.9, 3.7, -3.2, 0.49, -1.5]
t = [-2.4, 0.0, 1.5, 0.6, -1.0, 2.5, 3.0, -3.0, -0.5, -1.5]
cases.append(("mosi_hand", "DC_KIND_MOSI", p, t, 1, mosi(p, t)))
p = [0.3, -0.2, 0.0, 1.2]; t = [0.0, 0.0, 0.0, 0.0]
cases.append(("mosi_zero_labels", "DC_KIND_MOSI", p, t, 1, mosi(p, t)))
p = [0.7] * 6; t = [-1.0, 2.0, 0.0, 0.4, -2.2, 1.0]
cases.append(("mosi_const", "DC_KIND_MOSEI", p, t, 1, mosi(p, t)))
p = [0.5, 1.0, 2.0, 0.1, 3.0]; t = [-1.0, 1.0, -2.0, 1.0, 0.0]
cases.append(("mosi_never_neg", "DC_KIND_MOSI", p, t, 1, mosi(p, t)))
t = np.round(rng.uniform(-3, 3, 60) * 3) / 3; t[::7] = 0
p = t + rng.normal(0, 0.9, 60)
cases.append(("mosi_rand", "DC_KIND_MOSEI", p, t, 1, mosi(p, t)))
# SIMS
p = [-0.1, 0.1, 0.7, 0.0, -0.7, 1.5, -1.2, 0.05, -0.05, 0.69, 0.7000001, -0.1000001, 0.1, 0.7, -0.7]
t = [-0.2, 0.1, 0.8, 0.0, -0.6, 1.0, -1.0, 0.1, -0.1, 0.7, 0.7, -0.1, 0.15, 0.75, -0.65]
cases.append(("sims_edges", "DC_KIND_SIMS", p, t, 1, sims(p, t)))
t = rng.choice(np.arange(-5, 6) / 5.0, 40); p = t + rng.normal(0, 0.4, 40)
cases.append(("sims_rand", "DC_KIND_SIMS", p, t, 1, sims(p, t)))
p = [0.2] * 5; t = [-1.0, -0.2, 0.0, 0.4, 1.0]
cases.append(("sims_const", "DC_KIND_SIMS", p, t, 1, sims(p, t)))
# IEMOCAP (logits, 6 classes); row 2 ties classes 1 and 4 (argmax takes 1); class 5 never predicted
lg = np.zeros((8, 6)); yt = [0, 1, 1, 2, 3, 4, 5, 5]
for i, c in enumerate([0, 1, 1, 2, 4, 4, 0, 3]): lg[i][c] = 2.0
lg[2][4] = 2.0
cases.append(("iemo_hand", "DC_KIND_IEMOCAP", lg, yt, 6, iemocap(lg, yt)))
yt = rng.randint(0, 6, 50); lg = rng.normal(0, 1, (50, 6)); lg[np.arange(50), yt] += 1.0
cases.append(("iemo_rand", "DC_KIND_IEMOCAP", lg, yt, 6, iemocap(lg, yt)))

print("/* ---- GENERATED by tests/make_metrics_expected.py (numpy %s) ---- */" % np.__version__)
for c in cases:
    emit(*c)
print("static const struct expect_case all_cases[] = {")
for c in cases:
    print('    {"%s", %s_pred, %s_label, &%s_exp},' % (c[0], c[0], c[0], c[0]))
print("};")
# numpy.round(x, 4) on doubles, including ties in the scaled product
xs = [0.12345, 0.00005, 0.00015, 0.00025, 1.00005, 0.56785, -0.12345, -0.00005, 0.33335, 0.99995, 2.5e-5, 0.7071067811865476]
print("static const double round_in[] = {%s};" % ", ".join("%.17g" % x for x in xs))
print("static const double round_out[] = {%s};" % ", ".join("%.17g" % np.round(np.float64(x), 4) for x in xs))
# numpy float32 mean (pairwise summation) of x_i = float32(((i*7919) %% 1000) / 997.0)
for n in (7, 100, 1000, 5000):
    x = np.array([((i * 7919) % 1000) / 997.0 for i in range(n)], dtype=np.float32)
    print("/* np.mean float32 n=%d */ static const float mean_%d = %s;" % (n, n, lit( float(np.mean(x)))))
print("/* ---- end GENERATED ---- */")
