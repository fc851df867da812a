#!/usr/bin/env python3
"""Export a PyTorch model's state_dict to .npz and .safetensors for normnorm::io.

    python3 tools/export_state_dict.py MODEL.pt OUT_STEM [--compressed]

MODEL.pt is what torch.save wrote: a state_dict (a mapping of names to tensors) or a
whole nn.Module. Writes OUT_STEM.npz (numpy.savez, or numpy.savez_compressed with
--compressed) and OUT_STEM.safetensors. From Python, call export_state_dict(state_dict,
out_stem) directly.

Needs only Debian's python3-torch and python3-numpy: the .safetensors file is written
here from the format's definition (no safetensors package):
  8 bytes  little-endian uint64 N, the header's length
  N bytes  JSON: {"<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
                  ..., "__metadata__": {"key": "value"}}, padded with spaces
  then     every tensor's bytes, little-endian, C order, at its data_offsets
NumPy has no bfloat16: bf16 tensors go to the .npz as float32 (exact), and to the
.safetensors as BF16.
"""
import argparse
import json
import struct
import sys

import numpy
import torch

# torch dtype -> (safetensors name, numpy dtype for the raw bytes)
SAFETENSORS_DTYPES = {
    torch.float16: ("F16", numpy.float16),
    torch.bfloat16: ("BF16", numpy.uint16),  # bytes as uint16, see tensor_bytes
    torch.float32: ("F32", numpy.float32),
    torch.float64: ("F64", numpy.float64),
    torch.int8: ("I8", numpy.int8),
    torch.int16: ("I16", numpy.int16),
    torch.int32: ("I32", numpy.int32),
    torch.int64: ("I64", numpy.int64),
    torch.uint8: ("U8", numpy.uint8),
    torch.bool: ("BOOL", numpy.bool_),
}


def tensor_bytes(tensor):
    """The tensor's values as little-endian C-order bytes, in its own dtype."""
    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        # bf16 is the top half of a float32: keep exactly those 16 bits.
        return tensor.view(torch.int16).numpy().astype("<i2").tobytes()
    _, numpy_dtype = SAFETENSORS_DTYPES[tensor.dtype]
    return tensor.numpy().astype(numpy.dtype(numpy_dtype).newbyteorder("<")).tobytes()


def write_safetensors(path, state_dict, metadata=None):
    header = {}
    blobs = []
    offset = 0
    for name, tensor in state_dict.items():
        if tensor.dtype not in SAFETENSORS_DTYPES:
            raise ValueError(f"{name}: dtype {tensor.dtype} has no safetensors name here")
        data = tensor_bytes(tensor)
        header[name] = {"dtype": SAFETENSORS_DTYPES[tensor.dtype][0], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def to_numpy(tensor):
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.to(torch.float32)
    return tensor.numpy()


def write_npz(path, state_dict, compressed=False):
    arrays = {name: to_numpy(tensor) for name, tensor in state_dict.items()}
    (numpy.savez_compressed if compressed else numpy.savez)(path, **arrays)


def export_state_dict(state_dict, out_stem, compressed=False, metadata=None):
    """Writes out_stem.npz and out_stem.safetensors; returns their paths."""
    state_dict = {name: t for name, t in state_dict.items() if isinstance(t, torch.Tensor)}
    npz, safetensors = out_stem + ".npz", out_stem + ".safetensors"
    write_npz(npz, state_dict, compressed)
    write_safetensors(safetensors, state_dict, metadata)
    return npz, safetensors


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="torch.save'd state_dict or nn.Module")
    parser.add_argument("out_stem", help="output path without extension")
    parser.add_argument("--compressed", action="store_true", help="deflate the .npz members")
    args = parser.parse_args(argv)
    loaded = torch.load(args.model, map_location="cpu")
    state_dict = loaded.state_dict() if isinstance(loaded, torch.nn.Module) else loaded
    for path in export_state_dict(state_dict, args.out_stem, args.compressed):
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
