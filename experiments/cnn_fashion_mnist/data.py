"""Fashion-MNIST from Debian's dataset-fashion-mnist (IDX files, gzip), as float tensors."""

import gzip
import os

import numpy as np
import torch

DATA_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _read_idx(path: str) -> np.ndarray:
    """One IDX file: big-endian header (magic, then one uint32 per dimension), uint8 data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned byte data
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def available(data_dir: str = DATA_DIR) -> bool:
    return all(os.path.exists(os.path.join(data_dir, name)) for pair in FILES.values() for name in pair)


def load(data_dir: str = DATA_DIR, train_subset: int = 0, subset_seed: int = 12345):
    """(train_x, train_y, test_x, test_y): images (N, 1, 28, 28) float32 standardized with
    the full training set's mean and standard deviation, labels int64.

    train_subset > 0 keeps that many training images, chosen by a fixed permutation
    (subset_seed) that does not depend on the run's seed, so every run sees the same subset.
    """
    arrays = {}
    for split, (images, labels) in FILES.items():
        x = _read_idx(os.path.join(data_dir, images)).astype(np.float32) / 255.0
        y = _read_idx(os.path.join(data_dir, labels)).astype(np.int64)
        arrays[split] = (x, y)
    mean = float(arrays["train"][0].mean())
    std = float(arrays["train"][0].std())
    out = []
    for split in ("train", "test"):
        x, y = arrays[split]
        out.append(torch.from_numpy((x - mean) / std).unsqueeze(1).contiguous())
        out.append(torch.from_numpy(y.copy()))
    train_x, train_y, test_x, test_y = out
    if train_subset and train_subset < len(train_y):
        keep = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(subset_seed))[:train_subset]
        train_x, train_y = train_x[keep].contiguous(), train_y[keep].contiguous()
    return train_x, train_y, test_x, test_y
