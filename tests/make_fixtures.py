#!/usr/bin/python3
"""Writes the data-layer fixtures under tests/data/ (committed; CI does not run this script).

Run with Debian's /usr/bin/python3 (numpy 1.24):  /usr/bin/python3 tests/make_fixtures.py
Outputs:
  mmsa_<variant>_p<2..5>.pkl   MMSA-shaped pickles, shared/spec/mmsa-format.md §2.3 variants
  mmsa_unicode.{tar,tar.gz,tar.xz,zip}, mmsa_nested.tar.gz (member in a folder), mmsa_unicode.npz,
  npydir/<split>/<key>.npy     the same dataset in every container
  std.pkl                      standardisation input; numpy's statistics in expected.json
  hostile/*                    malformed and malicious inputs; expected status + message in hostile.json
  expected.json                every array's dtype, shape and values as Python wrote them
"""
import io
import json
import os
import pickle
import pickletools
import shutil
import subprocess
import tarfile
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data")
N = {"train": 3, "valid": 2, "test": 1}
TT, DT, TA, DA, TV, DV = 4, 6, 5, 3, 3, 4


def split_data(variant, split, n, rng):
    d = {}
    ftype = np.float64 if variant == "fet" else np.float32
    d["text"] = rng.standard_normal((n, TT, DT)).astype(ftype)
    audio = rng.standard_normal((n, TA, DA))
    audio[0, 1, 2] = -np.inf  # MOSEI COVAREP style
    if split == "train":
        audio[n - 1, 0, 0] = np.nan
        audio[n - 1, 2, 1] = np.inf
    d["audio"] = audio.astype(np.float64)
    vision = rng.standard_normal((n, TV, DV)).astype(ftype)
    if split == "train":
        vision = np.asfortranarray(vision)  # one Fortran-ordered array
    d["vision"] = vision
    ids = np.arange(n * 3 * TT).reshape(n, 3, TT) + 101
    if variant == "fet":
        d["text_bert"] = ids.transpose(0, 2, 1).astype(np.float64).copy().transpose(0, 2, 1)  # non-contiguous
    else:
        d["text_bert"] = ids.astype(np.int64)
    raw = ["hello world %d" % i for i in range(n)]
    raw[0] = "这部电影很好"  # SIMS-style Chinese text, UCS-4 in <U arrays
    idl = ["vid%02d$_$%d" % (i, i + 1) for i in range(n)]
    ann = ["Negative", "Neutral", "Positive"][:n] + ["Neutral"] * max(0, n - 3)
    if variant == "objarr":
        d["raw_text"], d["id"], d["annotations"] = (np.array(v, dtype=object) for v in (raw, idl, ann))
    elif variant == "lists":
        d["raw_text"], d["id"], d["annotations"] = raw, idl, ann
    else:
        d["raw_text"], d["id"], d["annotations"] = (np.array(v) for v in (raw, idl, ann))
    lens_a = np.arange(n, dtype=np.int64) + 2
    lens_v = np.arange(n, dtype=np.int64) + 1
    if variant == "lists":
        d["audio_lengths"] = [np.int64(x) for x in lens_a]
        d["vision_lengths"] = [np.int64(x) for x in lens_v]
    else:
        d["audio_lengths"], d["vision_lengths"] = lens_a, lens_v
    reg = np.round(rng.uniform(-3, 3, n), 1)
    d["regression_labels"] = reg.astype(np.float64)
    d["classification_labels"] = (np.sign(reg) + 1).astype(np.float64)
    if variant == "lists":  # SIMS unimodal labels
        for m in "TAV":
            d["regression_labels_" + m] = np.round(rng.uniform(-1, 1, n), 1).astype(np.float64)
    if split == "train":
        d["scale0d"] = np.array(1.5)  # one 0-d array
        d["small_f16"] = np.array([1.0, -2.5, 65504.0], dtype=np.float16)
        d["flags"] = np.array([True, False, True])
        d["bytes_u8"] = np.arange(5, dtype=np.uint8)
        d["i32"] = np.array([-7, 2**31 - 1], dtype=np.int32)
        d["big_int"] = 2**40 + 5  # LONG1
        d["py_float"] = 0.25
        d["py_none"] = None
        d["py_tuple"] = (1, True, "x")
    return d


def dataset(variant):
    rng = np.random.default_rng({"objarr": 1, "unicode": 2, "lists": 3, "fet": 4}[variant])
    return {s: split_data(variant, s, n, rng) for s, n in N.items()}


def enc_float(x):
    x = float(x)
    if np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def describe(v):
    """dtype / shape / values (flat, C order) of a value as the C test sees it."""
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            return {"dtype": "object", "shape": list(v.shape), "strings": [str(s) for s in v.ravel()]}
        if v.dtype.kind == "U":
            return {"dtype": "<U%d" % (v.dtype.itemsize // 4), "shape": list(v.shape), "strings": [str(s) for s in v.ravel()]}
        flat = v.ravel(order="C")
        vals = [enc_float(x) for x in flat] if v.dtype.kind == "f" else [int(x) for x in flat]
        return {"dtype": v.dtype.name, "shape": list(v.shape), "values": vals}
    if isinstance(v, list):
        if all(isinstance(x, str) for x in v):
            return {"dtype": "list", "shape": [len(v)], "strings": v}
        return {"dtype": "list", "shape": [len(v)], "values": [int(x) for x in v]}
    return {"dtype": type(v).__name__, "shape": []}


def write(path, data):
    with open(os.path.join(OUT, path), "wb") as f:
        f.write(data)


def op_offsets(data, name):
    return [pos for op, arg, pos in pickletools.genops(data) if op.name == name]


def clear_own_outputs():
    """Removes what this script wrote before; other fixtures in data/ (st_*) stay."""
    if not os.path.isdir(OUT):
        return
    for name in os.listdir(OUT):
        if name.startswith("st_"):
            continue
        path = os.path.join(OUT, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def main():
    clear_own_outputs()
    os.makedirs(os.path.join(OUT, "hostile"))
    expected = {"variants": {}, "files": {}, "standardize": {}}
    for variant in ("objarr", "unicode", "lists", "fet"):
        ds = dataset(variant)
        expected["variants"][variant] = {s: {k: describe(v) for k, v in d.items()} for s, d in ds.items()}
        for proto in (2, 3, 4, 5):
            name = "mmsa_%s_p%d.pkl" % (variant, proto)
            write(name, pickle.dumps(ds, protocol=proto))
            expected["files"][name] = variant
    blob = pickle.dumps(dataset("unicode"), protocol=4)
    for ext, mode in (("tar", "w"), ("tar.gz", "w:gz"), ("tar.xz", "w:xz")):
        bio = io.BytesIO()
        with tarfile.open(fileobj=bio, mode=mode) as t:
            info = tarfile.TarInfo("mmsa_unicode.pkl")
            info.size = len(blob)
            t.addfile(info, io.BytesIO(blob))
            readme = b"not a pickle\n"
            info = tarfile.TarInfo("README.txt")
            info.size = len(readme)
            t.addfile(info, io.BytesIO(readme))
        write("mmsa_unicode." + ext, bio.getvalue())
        expected["files"]["mmsa_unicode." + ext] = "unicode"
    with zipfile.ZipFile(os.path.join(OUT, "mmsa_unicode.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mmsa_unicode.pkl", blob)
    expected["files"]["mmsa_unicode.zip"] = "unicode"
    # a member in a folder, next to another pickle: needs FILE#member
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as t:
        for nm, b in (("data/mosi/aligned.pkl", blob), ("data/other.pkl", pickle.dumps({"x": 1}, protocol=4))):
            info = tarfile.TarInfo(nm)
            info.size = len(b)
            t.addfile(info, io.BytesIO(b))
    write("mmsa_nested.tar.gz", bio.getvalue())
    expected["files"]["mmsa_nested.tar.gz#data/mosi/aligned.pkl"] = "unicode"
    # .npz and a directory of .npy: numeric and <U keys (object arrays would need pickle)
    ds = dataset("unicode")
    arrays = {"%s/%s" % (s, k): v for s, d in ds.items() for k, v in d.items()
              if isinstance(v, np.ndarray) and v.dtype != object}
    np.savez_compressed(os.path.join(OUT, "mmsa_unicode.npz"), **arrays)
    for key, v in arrays.items():
        os.makedirs(os.path.join(OUT, "npydir", os.path.dirname(key)), exist_ok=True)
        np.save(os.path.join(OUT, "npydir", key + ".npy"), v)
    expected["npy_keys"] = sorted(arrays)

    # payloads above the reader's 64 KiB copy threshold (moved, not copied), protocols 2-5, xz-packed
    # to stay small: float64 and float16 features (converted to float32), an int64 and a C/F pair
    for proto in (2, 3, 4, 5):
        big = {"f64": (np.arange(2 * 100 * 50) % 64 * 0.5).reshape(2, 100, 50),
               "f16": (np.arange(300 * 120) % 64).astype(np.float16).reshape(1, 300, 120),
               "i64": (np.arange(9000, dtype=np.int64) % 100).reshape(3, 3000),
               "f32f": np.asfortranarray((np.arange(200 * 100) % 128 * 0.25).astype(np.float32).reshape(2, 100, 100))}
        bio = io.BytesIO()
        b = pickle.dumps({"train": big}, protocol=proto)
        with tarfile.open(fileobj=bio, mode="w:xz") as t:
            info = tarfile.TarInfo("large.pkl")
            info.size = len(b)
            t.addfile(info, io.BytesIO(b))
        write("large_p%d.tar.xz" % proto, bio.getvalue())

    write_std(expected)
    write_hostile(expected)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(OUT) for fn in fns)
    print("fixtures: %d bytes under %s" % (total, OUT))


def write_std(expected):
    """DecAlign's standardisation (spec §4 step 6) computed by numpy, float32 as the loader does."""
    rng = np.random.default_rng(7)
    splits = {}
    for s, n in (("train", 6), ("valid", 2), ("test", 1)):
        audio = rng.standard_normal((n, 7, 3)) * 2 + 1
        vision = rng.standard_normal((n, 5, 2))
        if s == "train":
            audio[0, 0, 0] = 40.0  # outlier the clip removes
            audio[1, 1, 1] = -np.inf
            audio[:, :, 2] = 3.0  # constant: std floors at 1e-6
            audio[2, 3, 0] = np.nan
        splits[s] = {"text": rng.standard_normal((n, 2, 4)).astype(np.float32), "audio": audio,
                     "vision": vision.astype(np.float32), "regression_labels": rng.uniform(-3, 3, n)}
    write("std.pkl", pickle.dumps(splits, protocol=4))
    pct = [0.5, 99.5]
    out = {"pct": pct}
    stats = None
    for s in ("train", "valid", "test"):
        x = splits[s]["audio"].astype(np.float32)
        x[x == -np.inf] = 0
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if stats is None:
            low, high = np.percentile(x, pct, axis=(0, 1))
            c = np.clip(x, low, high)
            mean = c.mean(axis=(0, 1))
            std = np.maximum(c.std(axis=(0, 1)), 1e-6)
            # the same statistics in float64, which the C code accumulates in
            x64 = x.astype(np.float64)
            l64, h64 = np.percentile(x64, pct, axis=(0, 1))
            c64 = np.clip(x64, l64, h64)
            stats = {"low": low.tolist(), "high": high.tolist(), "mean": mean.tolist(), "std": std.tolist(),
                     "mean64": c64.mean(axis=(0, 1)).tolist(), "std64": np.maximum(c64.std(axis=(0, 1)), 1e-6).tolist()}
            out["audio_stats"] = stats
            lo_, hi_, mu_, sd_ = low, high, mean, std
        y = np.nan_to_num((np.clip(x, lo_, hi_) - mu_) / sd_).astype(np.float32)
        out[s + "_audio"] = [float(v) for v in y.ravel()]
    expected["standardize"] = out


def write_hostile(expected):
    cases = []

    def add(name, data, status, contains, layer="doc"):
        write("hostile/" + name, data)
        cases.append({"file": "hostile/" + name, "status": status, "contains": contains, "layer": layer})

    # os.system via GLOBAL + REDUCE (protocol 2) and via STACK_GLOBAL (protocol 4: posix.system)
    add("os_system_p2.pkl", b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00echoq\x01\x85q\x02Rq\x03.", "FORMAT",
        ["offset 2:", "GLOBAL", "'os.system'"])

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = pickle.dumps(Evil(), protocol=4)
    add("os_system_p4.pkl", evil, "FORMAT", ["offset %d:" % op_offsets(evil, "STACK_GLOBAL")[0], "STACK_GLOBAL",
                                             "'posix.system'"])
    good = pickle.dumps({"train": {"x": np.zeros((2, 3), np.float32)}}, protocol=4)
    bad = good[:-1] + b"i" + b"."  # INST before STOP
    add("unknown_opcode_inst.pkl", bad, "FORMAT", ["offset %d:" % (len(good) - 1), "INST (0x69)", "not allowed"])
    add("unknown_opcode_ff.pkl", b"\x80\x04N\xff.", "FORMAT", ["offset 3:", "0xff", "not allowed"])
    add("next_buffer.pkl", b"\x80\x05\x97.", "FORMAT", ["offset 2:", "NEXT_BUFFER"])
    add("wrong_magic.pkl", b"\x80\x01N.", "UNSUPPORTED", ["offset 0:", "protocol 1"])
    add("protocol0.pkl", b"(lp0\n.", "FORMAT", ["hostile/protocol0.pkl", "neither a pickle"])
    # truncations of a real MMSA pickle: inside a payload, inside an opcode argument, between opcodes
    src = pickle.dumps(dataset("unicode"), protocol=4)
    ops = list(pickletools.genops(src))
    big = max((o for o in ops if o[0].name in ("BINBYTES", "SHORT_BINBYTES")), key=lambda o: len(o[1]))
    add("trunc_payload.pkl", src[:big[2] + 20], "FORMAT", ["offset %d:" % big[2], "truncated"])
    binint = [o for o in ops if o[0].name in ("BININT1", "BININT2", "BININT")][3]
    add("trunc_arg.pkl", src[:binint[2] + 1], "FORMAT", ["offset %d:" % binint[2], "truncated"])
    mid = ops[len(ops) // 2][2]
    add("trunc_boundary.pkl", src[:mid], "FORMAT", ["offset %d:" % mid, "truncated"])
    add("trunc_header.pkl", src[:1], "FORMAT", ["truncated"])
    su = [o for o in ops if o[0].name == "SHORT_BINUNICODE"][5]
    add("trunc_string.pkl", src[:su[2] + 3], "FORMAT", ["offset %d:" % su[2], "truncated"])
    # shape / payload mismatch: (2,3) float32 with the shape patched to (2,4)
    for proto in (3, 5):
        p = pickle.dumps(np.zeros((2, 3), np.float32), protocol=proto)
        assert p.count(b"K\x02K\x03\x86") == 1
        p = p.replace(b"K\x02K\x03\x86", b"K\x02K\x04\x86")
        at = op_offsets(p, "BUILD")[-1] if proto == 3 else op_offsets(p, "REDUCE")[-1]
        add("shape_mismatch_p%d.pkl" % proto, p, "FORMAT", ["offset %d:" % at, "payload has 24 bytes",
                                                            "need 32"])
    add("memo_get_oob.pkl", b"\x80\x04h\x05.", "FORMAT", ["offset 2:", "BINGET", "memo index 5 out of range"])
    add("memo_put_huge.pkl", b"\x80\x04Nr\xff\xff\xff\x7f.", "FORMAT", ["offset 3:", "LONG_BINPUT",
                                                                        "memo index 2147483647 out of range"])
    add("stack_underflow.pkl", b"\x80\x04a.", "FORMAT", ["offset 2:", "APPEND", "stack underflow"])
    add("mark_unbalanced.pkl", b"\x80\x04(N.", "FORMAT", ["offset 4:", "STOP", "unbalanced"])
    add("tuple_no_mark.pkl", b"\x80\x04Nt.", "FORMAT", ["offset 3:", "TUPLE", "no MARK"])
    add("build_on_dict.pkl", b"\x80\x04}Nb.", "FORMAT", ["offset 4:", "BUILD on a dict"])
    add("reduce_on_none.pkl", b"\x80\x04N)R.", "FORMAT", ["offset 4:", "REDUCE", "calls a None"])
    add("ndarray_called.pkl", b"\x80\x02cnumpy\nndarray\n)R.", "FORMAT", ["REDUCE", "numpy.ndarray cannot be called"])
    add("dict_int_key.pkl", b"\x80\x04}K\x01Ns.", "FORMAT", ["offset 6:", "SETITEM", "dict key is a int"])
    be = pickle.dumps(np.zeros(3, dtype=">f4"), protocol=3)
    dtype_build = op_offsets(be, "BUILD")[0]
    add("big_endian.pkl", be, "UNSUPPORTED", ["offset %d:" % dtype_build, "big-endian"])
    cx = pickle.dumps(np.zeros(2, dtype=np.complex128), protocol=4)
    add("complex.pkl", cx, "UNSUPPORTED", ["unsupported dtype 'c16'"])
    add("long1_huge.pkl", b"\x80\x04\x8a\x09" + b"\x01" * 9 + b".", "UNSUPPORTED", ["offset 2:", "LONG1",
                                                                                   "does not fit in 64 bits"])
    add("bad_utf8.pkl", b"\x80\x04\x8c\x02\xff\xfe.", "FORMAT", ["offset 2:", "not valid UTF-8"])
    add("binbytes_huge.pkl", b"\x80\x03B\xff\xff\xff\xff.", "FORMAT", ["offset 2:", "BINBYTES", "length 4294967295"])
    # containers
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        z.writestr("a.pkl", pickle.dumps({"x": 1}, protocol=4))
        z.writestr("b.pkl", pickle.dumps({"y": 2}, protocol=4))
    add("two_pickles.zip", bio.getvalue(), "FORMAT", ["several pickles (a.pkl, b.pkl)", "#MEMBER"])
    with open(os.path.join(OUT, "mmsa_unicode.tar.gz"), "rb") as f:
        tgz = bytearray(f.read())
    cut = bytes(tgz[: len(tgz) // 2])
    add("truncated.tar.gz", cut, "FORMAT", ["hostile/truncated.tar.gz"])
    corrupt = bytearray(tgz)
    for i in range(len(corrupt) // 3, len(corrupt) // 3 + 64):
        corrupt[i] ^= 0x5A
    add("corrupt.tar.gz", bytes(corrupt), "FORMAT", ["hostile/corrupt.tar.gz", "corrupt"])
    add("not_archive.bin", b"hello, this is text\n" * 4, "FORMAT", ["not_archive.bin", "neither a pickle"])
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        z.writestr("notes.txt", b"nothing here")
    add("no_pickle.zip", bio.getvalue(), "FORMAT", [".pkl or .npy member", "notes.txt"])
    try:  # ZipCrypto through Info-ZIP's zip (Python's zipfile cannot write encrypted members)
        tmp = os.path.join(OUT, "hostile", "enc.pkl")
        with open(tmp, "wb") as f:
            f.write(pickle.dumps({"x": 1}, protocol=4))
        subprocess.run(["zip", "-q", "-j", "-P", "secret", os.path.join(OUT, "hostile", "encrypted.zip"), tmp],
                       check=True)
        os.remove(tmp)
        cases.append({"file": "hostile/encrypted.zip", "status": "UNSUPPORTED", "contains": ["member enc.pkl",
                                                                                            "encrypted"],
                      "layer": "doc"})
    except (OSError, subprocess.CalledProcessError) as e:
        print("no encrypted zip fixture:", e)
    # dataset-level errors
    ds = dataset("unicode")
    d = {s: dict(v) for s, v in ds.items()}
    del d["valid"]["audio"]
    add("missing_key.pkl", pickle.dumps(d, protocol=4), "FORMAT", ["split 'valid': missing key 'audio'"], "dataset")
    d = {s: dict(v) for s, v in ds.items()}
    d["test"] = {k: (v[:0] if isinstance(v, np.ndarray) and v.ndim else v) for k, v in d["test"].items()}
    add("empty_split.pkl", pickle.dumps(d, protocol=4), "FORMAT", ["split 'test'", "empty"], "dataset")
    d = {s: dict(v) for s, v in ds.items()}
    d["train"]["vision"] = d["train"]["vision"][:2]
    add("inconsistent_n.pkl", pickle.dumps(d, protocol=4), "FORMAT",
        ["split 'train'", "key 'vision' is float32 [2, 3, 4] but the labels have 3 samples"], "dataset")
    d = {s: dict(v) for s, v in ds.items()}
    del d["test"]
    add("missing_split.pkl", pickle.dumps(d, protocol=4), "FORMAT", ["missing split 'test'"], "dataset")
    add("top_list.pkl", pickle.dumps([1, 2], protocol=4), "FORMAT", ["top-level object is a list"], "dataset")
    expected["hostile"] = cases


if __name__ == "__main__":
    main()
