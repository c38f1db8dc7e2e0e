#!/usr/bin/python3
"""CPU/CUDA timing / reference-export harness for the official PyTorch DecAlign model.

decocl's copy of ../shared/bench/decalign_torch_bench.py with a --device option
(cpu | cuda) for ci/gpu-bench: on cuda the model, the batch and the epoch data live
on the GPU, every timer is preceded by torch.cuda.synchronize(), the per-phase
breakdown is skipped (its timers do not synchronise), and the JSON adds the GPU name,
its peak allocated memory and a GPU SGEMM probe.

This file contains no code from the DecAlign repository.  The model, the
config builder and the trainer's loss functions are *imported* from an
exported copy of the official repository given by --decalign-src, e.g.

    (a copy of github.com/taco-group/DecAlign in /tmp/decalign_ref)

Run with the Debian interpreter that has torch 1.13:

    /usr/bin/python3 decalign_torch_bench.py --decalign-src /tmp/decalign_ref \
        --config config/dec_mosi_config.json --json-out mosi.json

What it measures (torch.set_num_threads(--threads), default 2):
  a) one training step (zero_grad, forward, task + dec + hete + homo (+ct) loss,
     backward, clip_grad_norm_, Adam step), median of --iters after --warmup;
     forward-only (eval, no_grad) per batch; peak RSS.
  b) one full epoch over --epoch-samples synthetic samples (shuffled, last
     partial batch kept, like the official DataLoader(drop_last=False)).
  c) a breakdown: in-situ forward timers around the model's own sub-steps
     (projections/encoders, decoupling loss, hetero loss (GMM+Sinkhorn), homo
     loss, the three cross-modal transformers, the rest) and isolated
     forward/backward timings of the same components; optionally a
     torch.profiler operator table.

--export DIR writes, for one fixed batch: the initial state_dict as a
safetensors file (written here by hand), the batch as .npy, and a JSON with
eval-mode outputs, losses and per-parameter gradient norms (plus full
gradients, a few intermediates, the parameters after one clipped Adam step,
and float64 reference values of the losses).
"""

import argparse
import copy
import json
import os
import platform
import resource
import statistics
import struct
import sys
import time
import types
from collections import OrderedDict, defaultdict
from pathlib import Path

import numpy as np
import torch

# --------------------------------------------------------------------------
# dataset shapes (MMSA feature files) used as overrides of the config
# --------------------------------------------------------------------------
DATASET_SHAPES = {
    # mosi_aligned_50.pkl: text 768 (BERT features), audio 5 (COVAREP subset), vision 20 (Facet)
    "mosi": {"seq_lens": [50, 50, 50], "feature_dims": [768, 5, 20], "train_samples": 1284,
             "label_range": 3.0, "label_step": None},
    # mosei_aligned_50.pkl
    "mosei": {"seq_lens": [50, 50, 50], "feature_dims": [768, 74, 35], "train_samples": 16326,
              "label_range": 3.0, "label_step": None},
    # SIMS unaligned_39.pkl: text 39x768, audio 400x33, vision 55x709
    "sims": {"seq_lens": [39, 400, 55], "feature_dims": [768, 33, 709], "train_samples": 1368,
             "label_range": 1.0, "label_step": 0.2},
}


def log(*a):
    print(*a, flush=True)


DEVICE = torch.device("cpu")  # set by --device


def sync():
    """Waits for queued GPU work, so that host timers measure it."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def rss_now_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def rss_peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def loaded_blas():
    """Which BLAS/LAPACK shared objects this process mapped (torch here is built with
    BLAS_INFO=generic, i.e. whatever libblas.so.3 the loader finds)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                base = os.path.basename(path)
                if "packages" in path:  # python extension modules (scipy, sklearn, numpy)
                    continue
                if any(t in base for t in ("blas", "lapack", "dnnl", "gomp", "mkl")):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(libs)


def prefault(mb):
    """Touch `mb` MiB in a child process and free it.  On this Firecracker VM
    (free-page reporting) first touches of guest memory cost ~6 us per 4 KiB page
    (about 1.7 s per GiB), which makes the first iterations of a fresh process
    on a fresh VM 2-3x slower; touching memory once beforehand removes that."""
    if mb <= 0:
        return 0.0
    import subprocess
    code = ("import numpy as np\n"
            f"for _ in range({(mb + 255) // 256}):\n"
            "    a = np.ones(256 * 2**20 // 8)\n")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t


class CpuMonitor:
    """Measures CPU time used by *other* processes while a phase runs
    (busy jiffies in /proc/stat minus this process's own user+sys time).  On a
    2-core machine a foreign process using ~1 core slows the 2-thread OpenMP
    torch run by 2-3x, so every phase reports `foreign_cores`."""

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK")
        self.phases = OrderedDict()

    def _snap(self):
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / self.hz
        r = resource.getrusage(resource.RUSAGE_SELF)
        c = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.perf_counter(), busy, r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime

    def start(self, name):
        self._cur = (name, self._snap())

    def stop(self):
        name, (t0, b0, o0) = self._cur
        t1, b1, o1 = self._snap()
        wall = max(t1 - t0, 1e-9)
        foreign = max(0.0, (b1 - b0) - (o1 - o0))
        self.phases[name] = {"wall_s": wall, "own_cpu_s": o1 - o0, "foreign_cpu_s": foreign,
                             "foreign_cores": foreign / wall}
        if foreign / wall > 0.1:
            log(f"  WARNING: other processes used {foreign / wall:.2f} cores during '{name}' "
                f"-> timings are contaminated")
        return self.phases[name]


CLEAN_THRESHOLD = 0.1  # foreign cores; iterations above it are "contaminated"
_PROBE = None


def probe():
    global _PROBE
    if _PROBE is None:
        _PROBE = CpuMonitor()
    return _PROBE._snap()


def foreign_cores(s0, s1):
    """Cores used by other processes between two probe() snapshots (10 ms jiffy resolution)."""
    (t0, b0, o0), (t1, b1, o1) = s0, s1
    return max(0.0, (b1 - b0) - (o1 - o0)) / max(t1 - t0, 1e-9)


def stats_clean(series, foreign):
    """stats of every series over all iterations, plus over the iterations during which
    other processes used < CLEAN_THRESHOLD cores (only if some were contaminated)."""
    out = {k: stats_ms(v) for k, v in series.items()}
    clean = [i for i, f in enumerate(foreign) if f < CLEAN_THRESHOLD]
    out["contamination"] = {"iters": len(foreign), "clean_iters": len(clean),
                            "max_foreign_cores": max(foreign) if foreign else 0.0,
                            "mean_foreign_cores": statistics.fmean(foreign) if foreign else 0.0}
    if clean and len(clean) < len(foreign):
        out["clean"] = {k: stats_ms([v[i] for i in clean]) for k, v in series.items()}
    return out


def wait_idle(max_wait_s, window_s=5.0, threshold_cores=0.15):
    """Block until other processes use < threshold_cores over a window (or give up)."""
    mon = CpuMonitor()
    t_end = time.perf_counter() + max_wait_s
    while True:
        t0, b0, o0 = mon._snap()
        time.sleep(window_s)
        t1, b1, o1 = mon._snap()
        busy = max(0.0, (b1 - b0) - (o1 - o0)) / (t1 - t0)
        if busy < threshold_cores:
            return {"idle": True, "others_cores": busy}
        if time.perf_counter() > t_end:
            log(f"  WARNING: machine still busy ({busy:.2f} cores used by others) after {max_wait_s} s")
            return {"idle": False, "others_cores": busy}
        n_wait = getattr(wait_idle, "_n", 0) + 1
        wait_idle._n = n_wait
        if n_wait % 12 == 1:
            log(f"  waiting for an idle CPU: others use {busy:.2f} cores")


def stats_ms(samples):
    s = sorted(samples)
    n = len(s)
    return {
        "median_ms": 1e3 * statistics.median(s),
        "mean_ms": 1e3 * statistics.fmean(s),
        "min_ms": 1e3 * s[0],
        "p90_ms": 1e3 * s[min(n - 1, int(round(0.9 * (n - 1))))],
        "max_ms": 1e3 * s[-1],
        "n": n,
    }


# --------------------------------------------------------------------------
# importing the official code
# --------------------------------------------------------------------------
def import_official(src):
    src = str(Path(src).resolve())
    if src not in sys.path:
        sys.path.insert(0, src)
    # use_bert=False: the BERT wrapper (needs `transformers`) is never
    # instantiated, but models/model.py imports it through trains.subNets.
    # Register a stub module under its import name so the import succeeds
    # without touching the exported copy.
    name = "trains.subNets.BertTextEncoder"
    if name not in sys.modules:
        stub = types.ModuleType(name)

        class BertTextEncoder(torch.nn.Module):  # pragma: no cover - never built
            def __init__(self, *a, **k):
                raise RuntimeError("BertTextEncoder stub: run with use_bert=False")

        stub.BertTextEncoder = BertTextEncoder
        sys.modules[name] = stub
    import config as dcfg  # official config.py
    import models as dmodels  # official models/__init__.py
    from trains.ATIO import DecAlignTrainer  # official trainer (loss functions)
    return dcfg, dmodels, DecAlignTrainer


def infer_dataset(config_path):
    stem = Path(config_path).stem.lower()
    for key in ("mosei", "mosi", "sims", "iemocap"):
        if key in stem:
            return key
    raise SystemExit(f"cannot infer dataset from {config_path}; pass --dataset")


def build_args(dcfg, cli):
    cfg_path = Path(cli.config)
    if not cfg_path.is_absolute():
        cfg_path = Path(cli.decalign_src) / cfg_path
    if not cfg_path.is_file():
        raise SystemExit(f"config not found: {cfg_path}")
    dataset = cli.dataset or infer_dataset(cfg_path)
    shapes = DATASET_SHAPES[dataset]
    # The official builder: defaults <- config JSON <- dataset block.
    args = dcfg.get_config_regression("decalign", dataset, str(cfg_path))
    # Overrides: precomputed 768-d text features (no BERT), dataset shapes.
    args.use_bert = False
    args.seq_lens = list(cli.seq_lens or shapes["seq_lens"])
    args.feature_dims = list(cli.feature_dims or shapes["feature_dims"])
    if cli.batch_size:
        args.batch_size = cli.batch_size
    for item in cli.set or []:
        k, v = item.split("=", 1)
        try:
            v = json.loads(v)
        except json.JSONDecodeError:
            pass
        setattr(args, k, v)
    return args, dataset, cfg_path


# --------------------------------------------------------------------------
# synthetic MMSA-shaped data
# --------------------------------------------------------------------------
def make_data(n, args, dataset, seed):
    """text (n, Tt, 768) / audio (n, Ta, Da) / vision (n, Tv, Dv) float32 ~ N(0,1);
    labels (n, 1): uniform in [-R, R] (MOSI/MOSEI: R=3; SIMS: R=1 on a 0.2 grid)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    (tl, ta, tv), (dl, da, dv) = args.seq_lens, args.feature_dims
    text = rng.standard_normal((n, tl, dl), dtype=np.float32)
    audio = rng.standard_normal((n, ta, da), dtype=np.float32)
    vision = rng.standard_normal((n, tv, dv), dtype=np.float32)
    r = DATASET_SHAPES[dataset]["label_range"]
    labels = rng.uniform(-r, r, size=(n, 1))
    step = DATASET_SHAPES[dataset]["label_step"]
    if step:
        labels = np.round(labels / step) * step
    return {"text": text, "audio": audio, "vision": vision, "labels": labels.astype(np.float32)}


def to_torch(d):
    return {k: torch.from_numpy(v).to(DEVICE) for k, v in d.items()}


# --------------------------------------------------------------------------
# one training step, following the per-batch sequence of DecAlignTrainer.do_train
# --------------------------------------------------------------------------
def make_optimizer(model, args):
    # do_train with use_bert=False: a single param group with weight_decay
    return torch.optim.Adam([{"params": model.parameters(),
                              "weight_decay": getattr(args, "weight_decay", 0.0)}],
                            lr=args.learning_rate)


def compute_losses(trainer, args, outputs, labels):
    logits = outputs["output_logit"]
    main_loss = trainer._main_loss(logits, labels)
    loss = trainer._combined_loss(main_loss, outputs)
    ct_weight = getattr(args, "ct_weight", 0.0)
    ct_loss = None
    if ct_weight > 0:
        ct_loss = trainer._contrastive_loss(outputs.get("final_rep"), labels)
        loss = loss + ct_weight * ct_loss
    return loss, main_loss, ct_loss


def train_step(model, optimizer, trainer, args, b, marks=None):
    sync()
    t0 = time.perf_counter()
    model.zero_grad()
    outputs = model(b["text"], b["audio"], b["vision"])
    loss, _, _ = compute_losses(trainer, args, outputs, b["labels"])
    sync()
    t1 = time.perf_counter()
    loss.backward()
    sync()
    t2 = time.perf_counter()
    if hasattr(args, "clip"):
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
    optimizer.step()
    lv = loss.item()
    outputs["output_logit"].detach().cpu()
    t3 = time.perf_counter()
    if marks is not None:
        marks["fwd+loss"].append(t1 - t0)
        marks["backward"].append(t2 - t1)
        marks["clip+adam"].append(t3 - t2)
        marks["total"].append(t3 - t0)
    return lv


def fresh_model(dmodels, args, seed):
    torch.manual_seed(seed)
    return dmodels.build_model(args).to(DEVICE)


# --------------------------------------------------------------------------
# a) per-batch timings
# --------------------------------------------------------------------------
def bench_step(model, trainer, args, batch, warmup, iters):
    model.train()
    opt = make_optimizer(model, args)
    marks = defaultdict(list)
    for _ in range(warmup):
        lv = train_step(model, opt, trainer, args, batch)
    if not np.isfinite(lv):
        log(f"WARNING: non-finite training loss {lv}")
    foreign = []
    for _ in range(iters):
        p0 = probe()
        train_step(model, opt, trainer, args, batch, marks)
        foreign.append(foreign_cores(p0, probe()))
    return stats_clean(marks, foreign), lv


def bench_forward(model, batch, warmup, iters):
    model.eval()
    ts, foreign = [], []
    with torch.no_grad():
        for i in range(warmup + iters):
            p0 = probe()
            t0 = time.perf_counter()
            model(batch["text"], batch["audio"], batch["vision"])
            sync()
            if i >= warmup:
                ts.append(time.perf_counter() - t0)
                foreign.append(foreign_cores(p0, probe()))
    model.train()
    return stats_clean({"forward": ts}, foreign)


# --------------------------------------------------------------------------
# b) full epoch
# --------------------------------------------------------------------------
class _DictDataset(torch.utils.data.Dataset):
    """MMSA-like per-sample dicts (like the official MMDataset.__getitem__ output)."""

    def __init__(self, data):
        self.d = data

    def __len__(self):
        return len(self.d["labels"])

    def __getitem__(self, i):
        return {"text": torch.Tensor(self.d["text"][i]),
                "audio": torch.Tensor(self.d["audio"][i]),
                "vision": torch.Tensor(self.d["vision"][i]),
                "labels": {"M": torch.Tensor(self.d["labels"][i].reshape(-1))}}


def bench_epoch(model, trainer, args, data_np, epochs, seed, loader, num_workers):
    model.train()
    opt = make_optimizer(model, args)
    n = len(data_np["labels"])
    bs = args.batch_size
    res = []
    if loader == "dataloader":
        g = torch.Generator()
        g.manual_seed(seed)
        dl = torch.utils.data.DataLoader(_DictDataset(data_np), batch_size=bs, shuffle=True,
                                         drop_last=False, num_workers=num_workers, generator=g)
    else:
        data_t = to_torch(data_np)
        g = torch.Generator()
        g.manual_seed(seed)
    for ep in range(epochs):
        t_data = 0.0
        losses = []
        nb = 0
        bt, bf, bn = [], [], []  # per batch: time (incl. data), foreign cores, size
        t0 = time.perf_counter()
        p_ep = probe()
        p0 = p_ep
        if loader == "dataloader":
            it = iter(dl)
            while True:
                td = time.perf_counter()
                try:
                    bd = next(it)
                except StopIteration:
                    t_data += time.perf_counter() - td
                    break
                b = {"text": bd["text"], "audio": bd["audio"], "vision": bd["vision"],
                     "labels": bd["labels"]["M"]}
                t_data += time.perf_counter() - td
                losses.append(train_step(model, opt, trainer, args, b))
                p1 = probe()
                bt.append(p1[0] - p0[0])
                bf.append(foreign_cores(p0, p1))
                bn.append(len(b["labels"]))
                p0 = p1
                nb += 1
        else:
            perm = torch.randperm(n, generator=g)
            for s in range(0, n, bs):
                td = time.perf_counter()
                idx = perm[s:s + bs].to(DEVICE)
                b = {k: v.index_select(0, idx) for k, v in data_t.items()}
                t_data += time.perf_counter() - td
                losses.append(train_step(model, opt, trainer, args, b))
                p1 = probe()
                bt.append(p1[0] - p0[0])
                bf.append(foreign_cores(p0, p1))
                bn.append(len(b["labels"]))
                p0 = p1
                nb += 1
        dt = time.perf_counter() - t0
        ep_foreign = foreign_cores(p_ep, probe())
        # estimate of the epoch time without other processes: contaminated batches are
        # replaced by the median clean time of batches of the same size
        clean_by_size = defaultdict(list)
        for t_, f_, n_ in zip(bt, bf, bn):
            if f_ < CLEAN_THRESHOLD:
                clean_by_size[n_].append(t_)
        est, ok = 0.0, True
        for t_, f_, n_ in zip(bt, bf, bn):
            if f_ < CLEAN_THRESHOLD:
                est += t_
            elif clean_by_size[n_]:
                est += statistics.median(clean_by_size[n_])
            else:
                ok = False
        n_bad = sum(1 for f_ in bf if f_ >= CLEAN_THRESHOLD)
        res.append({"epoch_s": dt, "batches": nb, "data_s": t_data,
                    "mean_train_loss": float(np.mean(losses)),
                    "finite": bool(np.all(np.isfinite(losses))),
                    "foreign_cores": ep_foreign, "contaminated_batches": n_bad,
                    "epoch_s_clean_estimate": est if (ok and n_bad) else (dt if not n_bad else None),
                    "batch_ms": [round(1e3 * x, 2) for x in bt], "batch_foreign_cores": [round(x, 3) for x in bf]})
        if n_bad:
            log(f"  WARNING: {n_bad}/{nb} batches ran while other processes used >= {CLEAN_THRESHOLD} cores; "
                f"clean estimate {res[-1]['epoch_s_clean_estimate']}")
        log(f"  epoch {ep + 1}: {dt:.3f} s ({nb} batches, data {t_data:.3f} s, "
            f"mean loss {np.mean(losses):.4f})")
    return res


# --------------------------------------------------------------------------
# c) breakdown
# --------------------------------------------------------------------------
class ForwardTimers:
    """Wraps (per instance, nothing in the source is changed) the model's own
    sub-steps with perf_counter timers and profiler labels."""

    MODULE_GROUPS = {"proj_l": "proj+encoders", "proj_a": "proj+encoders", "proj_v": "proj+encoders",
                     "encoder_uni_l": "proj+encoders", "encoder_uni_a": "proj+encoders",
                     "encoder_uni_v": "proj+encoders", "encoder_com": "proj+encoders",
                     "out_layer": "out_layer"}

    def __init__(self, model):
        self.model = model
        self.acc = defaultdict(float)
        self.handles = []
        self.wrapped = []
        self._starts = {}
        trans_names = {id(model.trans_l): "transformer_l", id(model.trans_a): "transformer_a",
                       id(model.trans_v): "transformer_v"}
        self._wrap("compute_decoupling_loss", lambda a: "dec_loss")
        self._wrap("compute_hetero_loss", lambda a: "hete_loss (GMM+Sinkhorn)")
        self._wrap("compute_homo_loss", lambda a: "homo_loss")
        self._wrap("_transform_and_pool", lambda a: trans_names.get(id(a[0]), "transformer_?"))
        for name, group in self.MODULE_GROUPS.items():
            mod = getattr(model, name)
            self.handles.append(mod.register_forward_pre_hook(self._pre(name)))
            self.handles.append(mod.register_forward_hook(self._post(name, group)))
        self.handles.append(model.register_forward_pre_hook(self._pre("__model__")))
        self.handles.append(model.register_forward_hook(self._post("__model__", "forward_total")))

    def _wrap(self, name, keyfn):
        orig = getattr(self.model, name)

        def wrapped(*a, **k):
            key = keyfn(a)
            t = time.perf_counter()
            with torch.profiler.record_function(key):
                r = orig(*a, **k)
            self.acc[key] += time.perf_counter() - t
            return r

        setattr(self.model, name, wrapped)
        self.wrapped.append(name)

    def _pre(self, name):
        def hook(mod, inp):
            self._starts[name] = time.perf_counter()
        return hook

    def _post(self, name, group):
        def hook(mod, inp, out):
            self.acc[group] += time.perf_counter() - self._starts.pop(name)
        return hook

    def reset(self):
        self.acc = defaultdict(float)

    def remove(self):
        for h in self.handles:
            h.remove()
        for name in self.wrapped:
            delattr(self.model, name)  # back to the class method


def bench_breakdown(model, trainer, args, batch, warmup, iters):
    out = {}
    # --- in-situ forward timers during normal training steps ---------------
    model.train()
    opt = make_optimizer(model, args)
    ft = ForwardTimers(model)
    per_iter = defaultdict(list)
    marks = defaultdict(list)
    foreign = []
    for i in range(warmup + iters):
        ft.reset()
        p0 = probe()
        train_step(model, opt, trainer, args, batch, marks if i >= warmup else None)
        if i >= warmup:
            foreign.append(foreign_cores(p0, probe()))
            for k, v in ft.acc.items():
                per_iter[k].append(v)
    ft.remove()
    clean = [j for j, f_ in enumerate(foreign) if f_ < CLEAN_THRESHOLD]
    use = clean if len(clean) >= max(5, iters // 3) else list(range(iters))
    out["in_situ_iters_used"] = {"used": len(use), "of": iters,
                                 "note": "only iterations with < %.2f foreign cores" % CLEAN_THRESHOLD
                                 if len(use) < iters else "all"}
    per_iter = {k: [v[j] for j in use] for k, v in per_iter.items()}
    marks = {k: [v[j] for j in use] for k, v in marks.items()}
    iters = len(use)
    fwd = {k: stats_ms(v) for k, v in per_iter.items()}
    comp_keys = [k for k in fwd if k != "forward_total"]
    med_total = fwd["forward_total"]["median_ms"]
    # per-iteration residual: forward_total minus all timed components
    resid = [per_iter["forward_total"][j] - sum(per_iter[k][j] for k in comp_keys)
             for j in range(iters)]
    fwd["rest of forward (pool/cat/dropout/transposes)"] = stats_ms(resid)
    out["forward_in_situ"] = fwd
    out["step_with_timers"] = {k: stats_ms(v) for k, v in marks.items()}
    out["forward_total_median_ms"] = med_total

    # --- isolated fwd/bwd per component on detached inputs -----------------
    model.train()
    with torch.no_grad():
        o = model(batch["text"], batch["audio"], batch["vision"])
    feats = {k: o[k].detach() for k in ("s_l", "s_a", "s_v", "c_l", "c_a", "c_v")}

    def leaf(names):
        return [feats[n].clone().requires_grad_(True) for n in names]

    gen = torch.Generator().manual_seed(0)
    g_pool = torch.randn(batch["text"].shape[0], model.d_model, generator=gen)

    def s_ctx(name, s):
        d = {"text": s[0], "audio": s[1], "vision": s[2]}
        return model._cross_context(name, d, model.active_modalities)

    comps = OrderedDict()
    comps["dec_loss (x3)"] = (("s_l", "c_l", "s_a", "c_a", "s_v", "c_v"),
                              lambda x: (model.compute_decoupling_loss(x[0], x[1])
                                         + model.compute_decoupling_loss(x[2], x[3])
                                         + model.compute_decoupling_loss(x[4], x[5])), None)
    comps["hete_loss (GMM+Sinkhorn)"] = (("s_l", "s_a", "s_v"),
                                          lambda x: model.compute_hetero_loss(x[0], x[1], x[2]), None)
    comps["homo_loss"] = (("c_l", "c_a", "c_v"),
                          lambda x: model.compute_homo_loss(x[0], x[1], x[2])[0], None)
    for nm, mod, idx in (("transformer_l", model.trans_l, 0), ("transformer_a", model.trans_a, 1),
                         ("transformer_v", model.trans_v, 2)):
        full = ("text", "audio", "vision")[idx]
        comps[nm] = (("s_l", "s_a", "s_v"),
                     (lambda m, i, f: (lambda x: model._transform_and_pool(m, x[i], None, s_ctx(f, x))))(mod, idx, full),
                     g_pool)
    iso = {}
    for name, (inputs, fn, grad) in comps.items():
        tf, tb = [], []
        for i in range(warmup + iters):
            xs = leaf(inputs)
            model.zero_grad()
            t0 = time.perf_counter()
            y = fn(xs)
            t1 = time.perf_counter()
            if grad is None:
                y.backward()
            else:
                y.backward(grad)
            t2 = time.perf_counter()
            if i >= warmup:
                tf.append(t1 - t0)
                tb.append(t2 - t1)
        iso[name] = {"forward": stats_ms(tf), "backward": stats_ms(tb),
                     "fwd+bwd_median_ms": 1e3 * (statistics.median(tf) + statistics.median(tb))}
    out["isolated"] = iso
    model.zero_grad()
    return out


def run_profiler(model, trainer, args, batch, steps, path, row_limit=45):
    from torch.profiler import ProfilerActivity, profile
    model.train()
    opt = make_optimizer(model, args)
    ft = ForwardTimers(model)  # gives record_function labels to the sub-steps
    for _ in range(3):
        train_step(model, opt, trainer, args, batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            train_step(model, opt, trainer, args, batch)
    ft.remove()
    ka = prof.key_averages()
    with open(path, "w") as f:
        f.write(f"# torch.profiler, {steps} training steps (times are totals over all steps)\n\n")
        f.write("## sorted by self CPU time\n")
        f.write(ka.table(sort_by="self_cpu_time_total", row_limit=row_limit))
        f.write("\n\n## sorted by total CPU time (includes record_function labels)\n")
        f.write(ka.table(sort_by="cpu_time_total", row_limit=row_limit))
    # every profiler event counts, nested ones included (e.g. aten::linear -> aten::addmm, and
    # the per-matrix aten::select calls inside CPU bmm), so this is a measure of framework
    # dispatch work, not of distinct kernels
    n_ev = sum(e.count for e in ka if not e.key.startswith(("hete_loss", "homo_loss", "dec_loss",
                                                               "transformer_", "ProfilerStep")))
    return {"profile_table": str(path), "profiler_events_per_step": n_ev / steps}


# --------------------------------------------------------------------------
# export (numerics reference for a C implementation)
# --------------------------------------------------------------------------
def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer: u64-LE header length, JSON header
    {name: {dtype, shape, data_offsets:[begin,end]}} (offsets relative to the
    start of the data section), then raw little-endian data in header order."""
    header = OrderedDict()
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()
        if a.dtype != np.float32:
            raise ValueError(f"{name}: only F32 supported, got {a.dtype}")
        b = a.astype("<f4", copy=False).tobytes(order="C")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)  # pad so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    return off


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (hl,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hl].decode("utf-8"))
    base = 8 + hl
    out = OrderedDict()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + b:base + e], dtype="<f4").reshape(info["shape"])
    return out


def _loss_dict(trainer, args, outputs, labels):
    loss, main_loss, ct_loss = compute_losses(trainer, args, outputs, labels)
    d = {
        "main_loss": main_loss,
        "dec_loss": outputs["dec_loss"],
        "hete_loss": outputs["hete_loss"],
        "homo_loss": outputs["homo_loss"],
        "ct_loss": ct_loss,
        "total_loss": loss,
    }
    return loss, {k: (None if v is None else float(v.detach())) for k, v in d.items()}


def do_export(outdir, dmodels, trainer, args, dataset, seed, cfg_path):
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    bs = args.batch_size
    data = make_data(bs, args, dataset, seed)  # the export batch = first batch of the seed's data
    b = to_torch(data)
    for k, v in data.items():
        np.save(outdir / f"{k}.npy", v)

    model = fresh_model(dmodels, args, seed)
    sd = model.state_dict()
    nbytes = write_safetensors(outdir / "model_init.safetensors", sd,
                               {"format": "pt", "source": "DecAlign official models/model.py",
                                "seed": seed, "dataset": dataset})
    # round-trip check of the hand-written file
    back = read_safetensors(outdir / "model_init.safetensors")
    assert list(back.keys()) == list(sd.keys())
    for k in sd:
        assert np.array_equal(back[k], sd[k].numpy()), k

    # eval mode (dropout off), gradients enabled
    model.eval()
    model.zero_grad()
    outputs = model(b["text"], b["audio"], b["vision"])
    loss, losses = _loss_dict(trainer, args, outputs, b["labels"])
    loss.backward()
    grads = OrderedDict()
    grad_norms = OrderedDict()
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        grads[name] = g.detach().clone()
        grad_norms[name] = float(g.detach().double().norm())
    write_safetensors(outdir / "grads.safetensors", grads, {"mode": "eval", "loss": "total_loss"})
    inter = OrderedDict()
    for k in ("s_l", "s_a", "s_v", "c_l", "c_a", "c_v", "final_rep", "output_logit"):
        inter[k] = outputs[k].detach()
    for k, z in zip(("z_l", "z_a", "z_v"), outputs["z_common"]):
        if z is not None:
            inter[k] = z.detach()
    write_safetensors(outdir / "intermediates.safetensors", inter)

    # one optimizer step exactly like training: clip_grad_norm_ then Adam
    opt = make_optimizer(model, args)
    total_norm = None
    if hasattr(args, "clip"):
        total_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip))
    opt.step()
    write_safetensors(outdir / "params_after_step.safetensors", model.state_dict(),
                      {"note": "after clip_grad_norm_ + one Adam step on the eval-mode gradients"})

    # float64 reference of the same computation (same fp32 initial weights)
    m64 = fresh_model(dmodels, args, seed).double().eval()
    b64 = {k: v.double() for k, v in b.items()}
    out64 = m64(b64["text"], b64["audio"], b64["vision"])
    loss64, losses64 = _loss_dict(trainer, args, out64, b64["labels"])
    loss64.backward()
    grad_norms64 = OrderedDict((n, float(p.grad.norm()) if p.grad is not None else 0.0)
                               for n, p in m64.named_parameters())

    ref = {
        "description": "DecAlign (official PyTorch) reference values for one fixed batch; "
                       "model in eval mode (all dropout off), gradients of total_loss.",
        "torch_version": torch.__version__,
        "seed": seed,
        "dataset": dataset,
        "config_file": str(cfg_path),
        "args": {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, list, type(None)))},
        "loss_formula": "total = task(MSE) [+ binary_task_weight*BCE(nonzero labels>0)] + dec_loss_weight*dec_loss "
                        "+ alpha*hete_loss + beta*homo_loss + ct_weight*ct_loss(final_rep)",
        "loss_weights": {k: getattr(args, k, None) for k in
                         ("dec_loss_weight", "alpha", "beta", "ct_weight", "ct_temperature",
                          "binary_task_weight", "task_loss", "clip", "learning_rate", "weight_decay")},
        "files": {
            "model_init.safetensors": "initial state_dict (F32), order = state_dict order",
            "grads.safetensors": "d total_loss / d param after backward (eval mode)",
            "intermediates.safetensors": "s_*, c_* (B, d_model, T'), final_rep, output_logit, z_* (pde outputs)",
            "params_after_step.safetensors": "params after clip_grad_norm_(clip) + Adam(lr, weight_decay) step 1",
            "text.npy": list(data["text"].shape), "audio.npy": list(data["audio"].shape),
            "vision.npy": list(data["vision"].shape), "labels.npy": list(data["labels"].shape),
        },
        "param_shapes": OrderedDict((k, list(v.shape)) for k, v in sd.items()),
        "num_params": int(sum(v.numel() for v in sd.values())),
        "state_dict_bytes": nbytes,
        "output_logit": [float(x) for x in outputs["output_logit"].detach().reshape(-1)],
        "losses": losses,
        "grad_norms": grad_norms,
        "grad_total_norm_before_clip": total_norm,
        "float64_reference": {
            "output_logit": [float(x) for x in out64["output_logit"].detach().reshape(-1)],
            "losses": losses64,
            "grad_norms": grad_norms64,
            "max_abs_diff_logit_fp32_vs_fp64": float((outputs["output_logit"].detach().double()
                                                      - out64["output_logit"].detach()).abs().max()),
        },
    }
    with open(outdir / "reference.json", "w") as f:
        json.dump(ref, f, indent=1)
    log(f"export: wrote {outdir} (losses {losses})")
    return ref


# --------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decalign-src", required=True, help="exported official DecAlign repository")
    ap.add_argument("--config", required=True, help="config JSON (relative paths are inside --decalign-src)")
    ap.add_argument("--dataset", choices=sorted(DATASET_SHAPES), help="default: from the config file name")
    ap.add_argument("--seq-lens", type=int, nargs=3, metavar=("T", "A", "V"))
    ap.add_argument("--feature-dims", type=int, nargs=3, metavar=("T", "A", "V"))
    ap.add_argument("--batch-size", type=int, help="default: the config's batch_size")
    ap.add_argument("--set", action="append", metavar="KEY=JSON", help="extra args override, repeatable")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    ap.add_argument("--seed", type=int, default=1111)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--epoch-samples", type=int, help="default: MOSI 1284, SIMS 1368, MOSEI 16326")
    ap.add_argument("--epochs", type=int, default=1, help="timed epochs (0 = skip)")
    ap.add_argument("--loader", choices=("tensor", "dataloader"), default="tensor",
                    help="epoch batches by tensor indexing (pure compute) or a torch DataLoader over MMSA-like dicts")
    ap.add_argument("--num-workers", type=int, default=0)
    ap.add_argument("--no-breakdown", action="store_true")
    ap.add_argument("--profile", metavar="TXT", help="write a torch.profiler operator table here")
    ap.add_argument("--profile-steps", type=int, default=5)
    ap.add_argument("--export", metavar="DIR")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--json-out", metavar="FILE")
    ap.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                    help="first wait up to this long until other processes leave the CPUs idle")
    ap.add_argument("--prefault-mb", type=int, default=4096,
                    help="touch this much memory in a child process first (0 = off); see prefault()")
    cli = ap.parse_args()

    global DEVICE
    DEVICE = torch.device(cli.device)
    if DEVICE.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {cli.device}: torch {torch.__version__} sees no CUDA device "
                             f"(built with CUDA {torch.version.cuda})")
        if not cli.no_breakdown:
            log("  note: --device cuda skips the per-phase breakdown (its timers do not synchronise)")
            cli.no_breakdown = True
        cli.prefault_mb = 0
    torch.set_num_threads(cli.threads)
    idle = wait_idle(cli.wait_idle) if cli.wait_idle > 0 else None
    prefault_s = prefault(cli.prefault_mb)
    rss0 = rss_now_mb()
    dcfg, dmodels, DecAlignTrainer = import_official(cli.decalign_src)
    args, dataset, cfg_path = build_args(dcfg, cli)
    trainer = DecAlignTrainer(args)
    res = OrderedDict()
    res["env"] = {
        "python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
        "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
        "cpu": platform.processor() or platform.machine(), "nproc": os.cpu_count(),
        "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH", ""),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", ""),
        "blas_probe_gflops_sgemm512": None,
        "prefault_mb": cli.prefault_mb, "prefault_s": prefault_s, "wait_idle_result": idle,
    }
    # a quick probe of which BLAS speed torch gets (netlib reference BLAS vs OpenBLAS)
    a = torch.randn(512, 512)
    a @ a
    t = time.perf_counter()
    for _ in range(3):
        a @ a
    res["env"]["blas_probe_gflops_sgemm512"] = 3 * 2 * 512 ** 3 / (time.perf_counter() - t) / 1e9
    res["env"]["loaded_blas_libs"] = loaded_blas()
    res["env"]["device"] = str(DEVICE)
    if DEVICE.type == "cuda":
        res["env"]["cuda_device_name"] = torch.cuda.get_device_name(DEVICE)
        res["env"]["cuda_version"] = torch.version.cuda
        g = torch.randn(4096, 4096, device=DEVICE)
        g @ g
        sync()
        t = time.perf_counter()
        for _ in range(10):
            g @ g
        sync()
        res["env"]["cuda_sgemm4096_gflops"] = 10 * 2 * 4096 ** 3 / (time.perf_counter() - t) / 1e9
        del g
        torch.cuda.reset_peak_memory_stats(DEVICE)
    res["command"] = " ".join([sys.executable] + sys.argv)
    res["dataset"] = dataset
    res["config_file"] = str(cfg_path)
    keys = ("dst_feature_dim_nheads", "nlevels", "conv1d_kernel_size_l", "conv1d_kernel_size_a",
            "conv1d_kernel_size_v", "num_prototypes", "gmm_em_iters", "ot_num_iters", "lambda_ot",
            "pde_dim", "use_cross_modal_attention", "attn_mask", "use_sequence_mask", "batch_size",
            "learning_rate", "weight_decay", "clip", "task_loss", "dec_loss_weight", "alpha", "beta",
            "ct_weight", "binary_task_weight", "seq_lens", "feature_dims", "use_bert")
    res["args"] = {k: getattr(args, k, None) for k in keys}
    log(f"[{dataset}] config {cfg_path}")
    log("  args: " + json.dumps(res["args"]))
    log(f"  torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"sgemm probe {res['env']['blas_probe_gflops_sgemm512']:.1f} GFLOP/s, libs {res['env']['loaded_blas_libs']}")

    if cli.export:
        do_export(cli.export, dmodels, trainer, args, dataset, cli.seed, cfg_path)
        res["export_dir"] = cli.export
        if cli.export_only:
            if cli.json_out:
                with open(cli.json_out, "w") as f:
                    json.dump(res, f, indent=1)
            return

    model = fresh_model(dmodels, args, cli.seed)
    nparam = sum(p.numel() for p in model.parameters())
    res["num_params"] = nparam
    bs = args.batch_size
    batch = to_torch(make_data(bs, args, dataset, cli.seed))
    # shapes as they flow through the model (conv kernel k shortens sequences by k-1)
    with torch.no_grad():
        model.eval()
        o = model(batch["text"], batch["audio"], batch["vision"])
        model.train()
    res["internal_shapes"] = {k: list(o[k].shape) for k in ("s_l", "s_a", "s_v", "final_rep", "output_logit")}
    log(f"  params {nparam}, batch {bs}, internal shapes {res['internal_shapes']}")
    rss_model = rss_now_mb()

    mon = CpuMonitor()
    res["loadavg_at_start"] = open("/proc/loadavg").read().split()[:3]
    # a) per-batch
    mon.start("a_train_step")
    step, last_loss = bench_step(model, trainer, args, batch, cli.warmup, cli.iters)
    res["train_step"] = step
    res["train_step_last_loss"] = last_loss
    st = step.get("clean", step)
    tag = "" if "clean" not in step else \
        f" [clean iterations only: {step['contamination']['clean_iters']}/{cli.iters}]"
    log(f"  a) train step median {st['total']['median_ms']:.1f} ms "
        f"(fwd+loss {st['fwd+loss']['median_ms']:.1f}, bwd {st['backward']['median_ms']:.1f}, "
        f"clip+adam {st['clip+adam']['median_ms']:.1f}); mean {st['total']['mean_ms']:.1f}, "
        f"min {st['total']['min_ms']:.1f}{tag}")
    mon.stop()
    mon.start("a_forward")
    fwd = bench_forward(model, batch, cli.warmup, cli.iters)
    mon.stop()
    res["forward_eval_nograd"] = fwd
    fw = fwd.get("clean", fwd)["forward"]
    log(f"     forward-only (eval, no_grad) median {fw['median_ms']:.1f} ms"
        + ("" if "clean" not in fwd else f" [clean iterations {fwd['contamination']['clean_iters']}/{cli.iters}]"))
    res["rss_mb"] = {"at_start": rss0, "after_model_build": rss_model,
                     "peak_after_per_batch_benchmarks": rss_peak_mb()}
    log(f"     peak RSS after per-batch benchmarks {rss_peak_mb():.0f} MB")
    if DEVICE.type == "cuda":
        res["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated(DEVICE) / 2 ** 20
        log(f"     peak CUDA memory allocated {res['cuda_peak_allocated_mb']:.0f} MB")

    # c) breakdown
    if not cli.no_breakdown:
        mon.start("c_breakdown")
        bd = bench_breakdown(model, trainer, args, batch, cli.warmup, cli.iters)
        mon.stop()
        res["breakdown"] = bd
        log("  c) forward in situ (median ms):")
        for k, v in sorted(bd["forward_in_situ"].items(), key=lambda kv: -kv[1]["median_ms"]):
            log(f"       {k:48s} {v['median_ms']:8.2f}")
        log("     isolated components (median ms): fwd / bwd")
        for k, v in bd["isolated"].items():
            log(f"       {k:48s} {v['forward']['median_ms']:8.2f} / {v['backward']['median_ms']:8.2f}")

    # b) epoch
    if cli.epochs > 0:
        n = cli.epoch_samples or DATASET_SHAPES[dataset]["train_samples"]
        t = time.perf_counter()
        data = make_data(n, args, dataset, cli.seed + 1)
        gen_s = time.perf_counter() - t
        data_mb = sum(v.nbytes for v in data.values()) / 2 ** 20
        log(f"  b) epoch over N={n} (batch {bs}, loader {cli.loader}); synthetic data {data_mb:.0f} MB")
        model_ep = fresh_model(dmodels, args, cli.seed)
        mon.start("b_epoch")
        ep = bench_epoch(model_ep, trainer, args, data, cli.epochs, cli.seed, cli.loader, cli.num_workers)
        mon.stop()
        res["epoch"] = {"N": n, "batch_size": bs, "loader": cli.loader, "num_workers": cli.num_workers,
                        "data_mb": data_mb, "data_gen_s": gen_s, "epochs": ep}
        res["rss_mb"]["peak_after_epoch"] = rss_peak_mb()
        res["rss_mb"]["epoch_data_mb"] = data_mb
        log(f"     peak RSS after epoch(s) {rss_peak_mb():.0f} MB (includes {data_mb:.0f} MB data)")
        del model_ep

    # profiler last, so that its own memory does not show up in the RSS numbers above
    if cli.profile:
        mon.start("c_profiler")
        res["profile"] = run_profiler(model, trainer, args, batch, cli.profile_steps, cli.profile)
        mon.stop()
        log(f"     profiler table -> {cli.profile}")
    res["cpu_contention"] = mon.phases
    log("  foreign CPU use per phase (cores): "
        + ", ".join(f"{k} {v['foreign_cores']:.2f}" for k, v in mon.phases.items()))
    if cli.json_out:
        with open(cli.json_out, "w") as f:
            json.dump(res, f, indent=1)
        log(f"results -> {cli.json_out}")


if __name__ == "__main__":
    main()
