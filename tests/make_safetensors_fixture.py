#!/usr/bin/env python3
"""Writes the safetensors fixtures of tests/test_checkpoint.c into tests/data/ (st_*.safetensors).

Only numpy, json and struct: the layout follows the safetensors format (u64 LE header
length, compact JSON header padded with spaces to 8 bytes, raw little-endian data), the
way safetensors.numpy.save_file lays it out: "__metadata__" first, the tensor entries in
name order, the data in a different order than the names (so readers must sort by offset).

    st_python_small.safetensors     five F32 tensors incl. a scalar and an empty one, metadata
    st_python_unpadded.safetensors  the same tensors, header not padded (N odd: unaligned data)

Tensor values: element i of tensor t is (i + 1) * scale[t] (see TENSORS), float32.
Run: /usr/bin/python3 tests/make_safetensors_fixture.py
"""
import json
import os
import struct

import numpy as np

# name: (shape, scale), in the order the data is laid out in the file
TENSORS = [
    ("z.last_in_name_first_in_data", (2, 3), 0.5),
    ("a.weight", (4, 2, 1), -0.25),
    ("scalar", (), 3.0),
    ("empty", (0, 4), 1.0),
    ("m.bias", (5,), 0.125),
]
METADATA = {"format": "pt", "writer": "make_safetensors_fixture.py"}


def build(pad):
    blobs, header, at = [], {}, 0
    for name, shape, scale in TENSORS:
        n = int(np.prod(shape)) if shape else 1
        arr = ((np.arange(n, dtype=np.float64) + 1.0) * scale).astype("<f4").reshape(shape)
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    ordered = {"__metadata__": METADATA}
    for name in sorted(header):
        ordered[name] = header[name]
    text = json.dumps(ordered, separators=(",", ":")).encode("utf-8")
    if pad:
        text += b" " * (-len(text) % 8)
    elif len(text) % 2 == 0:
        text += b" "  # an odd length, so the data starts unaligned
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    os.makedirs(out, exist_ok=True)
    for fname, pad in (("st_python_small.safetensors", True), ("st_python_unpadded.safetensors", False)):
        with open(os.path.join(out, fname), "wb") as f:
            f.write(build(pad))


if __name__ == "__main__":
    main()
