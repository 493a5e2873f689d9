"""A small safetensors writer and reader (the format's spec: 8-byte header length, JSON header, raw data)."""
from __future__ import annotations

import json
import struct

import numpy as np
import torch

_DTYPES = {torch.float32: ("F32", np.float32), torch.float16: ("F16", np.float16)}


def save(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str] | None = None) -> None:
    header: dict = {"__metadata__": metadata} if metadata else {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu()
        if tensor.dtype not in _DTYPES:
            raise ValueError(f"{name}: only float32 and float16 are written, got {tensor.dtype}")
        code, np_dtype = _DTYPES[tensor.dtype]
        data = tensor.contiguous().numpy().astype(np_dtype, copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)


def load(path: str) -> dict[str, torch.Tensor]:
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise ValueError(f"{name}: only F32 is read, got {entry['dtype']}")
        start, end = entry["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[start:end], dtype=np.float32).copy()).view(entry["shape"])
    return out
