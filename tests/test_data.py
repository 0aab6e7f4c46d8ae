"""Datasets load from small files the tests write: IDX (gzipped or not), image folders, mixtures."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.parts.data import DatasetNotFoundError, load_dataset
from ganlab.parts.data.idx import read_idx
from ganlab.parts.data.mixtures import grid_modes, ring_modes
from tests.conftest import make_cfg


def write_idx(path, array: np.ndarray, gz: bool) -> None:
    code = {np.uint8: 0x08, np.int32: 0x0C}[array.dtype.type]
    data = array.astype(array.dtype.newbyteorder(">")) if array.dtype != np.uint8 else array
    raw = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape) + data.tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


def write_mnist_like(folder, n=40, size=28, prefix="train", gz=True, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, gz)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_round_trips_uint8_and_int32(tmp_path, gz):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    b = np.array([-5, 7, 1_000_000], dtype=np.int32)
    write_idx(tmp_path / "a", a, gz)
    write_idx(tmp_path / "b", b, gz)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "b"), b)


def test_idx_reader_names_the_file_when_truncated_or_foreign(tmp_path):
    write_idx(tmp_path / "ok", np.zeros((4, 5, 5), np.uint8), gz=False)
    (tmp_path / "cut").write_bytes((tmp_path / "ok").read_bytes()[:50])
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    (tmp_path / "bad.gz").write_bytes(gzip.compress(bytes(100))[:12])  # a cut gzip stream
    for name, message in [("cut", "truncated"), ("png", "not an IDX file"), ("bad.gz", "cannot be read")]:
        with pytest.raises(ValueError, match=message) as err:
            read_idx(tmp_path / name)
        assert name in str(err.value)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_style_datasets_read_idx_files_from_data_root(tmp_path, dataset, gz):
    images, labels = write_mnist_like(tmp_path / dataset, gz=gz)
    ds = load_dataset(make_cfg(f"data={dataset}", f"data.root={tmp_path / dataset}").data)
    assert ds.x.shape == (40, 1, 28, 28) and ds.x.dtype == torch.float32
    assert ds.x.min() >= -1 and ds.x.max() <= 1
    expected = torch.from_numpy(images.astype(np.float32) / 127.5 - 1)
    torch.testing.assert_close(ds.x[:, 0], expected)
    assert ds.labels.tolist() == labels.tolist()


def test_idx_files_in_torchvisions_layout_and_resized_test_split(tmp_path):
    write_mnist_like(tmp_path / "MNIST" / "raw", n=12, prefix="t10k")
    ds = load_dataset(make_cfg("data=mnist", f"data.root={tmp_path}", "data.split=test", "data.image_size=32",
                               "data.channels=3", "data.limit=5").data)
    assert ds.x.shape == (5, 3, 32, 32)


def test_missing_idx_files_name_the_files_and_the_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(make_cfg("data=mnist", f"data.root={tmp_path / 'nowhere'}").data)
    message = str(err.value)
    assert "train-images-idx3-ubyte[.gz]" in message and "train-labels-idx1-ubyte[.gz]" in message
    assert str(tmp_path / "nowhere") in message and "data.download=true" in message


def test_missing_cifar10_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py") as err:
        load_dataset(make_cfg("data=cifar10", f"data.root={tmp_path}").data)
    assert str(tmp_path) in str(err.value)


def test_folder_of_images_is_cropped_resized_and_skips_unreadable_files(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "sub").mkdir()
    for i, (w, h) in enumerate([(40, 30), (30, 50), (64, 64)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / "sub" / f"im{i}.png")
    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(tmp_path / "white.jpg")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    ds = load_dataset(make_cfg("data=folder", f"data.root={tmp_path}", "data.image_size=16").data)
    assert ds.x.shape == (4, 3, 16, 16) and ds.labels is None
    assert torch.allclose(ds.x[3], torch.ones(3, 16, 16), atol=0.02)  # white.jpg sorts last
    grey = load_dataset(make_cfg("data=folder", f"data.root={tmp_path}", "data.channels=1").data)
    assert grey.x.shape == (4, 1, 32, 32)


def test_folder_without_images_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no readable images"):
        load_dataset(make_cfg("data=folder", f"data.root={tmp_path}").data)
    with pytest.raises(DatasetNotFoundError, match="is not a folder"):
        load_dataset(make_cfg("data=folder", f"data.root={tmp_path / 'missing'}").data)


def test_digits_are_bundled_and_split_into_train_and_test():
    train = load_dataset(make_cfg().data)
    test = load_dataset(make_cfg("data.split=test").data)
    assert train.x.shape == (1437, 1, 8, 8) and test.x.shape == (360, 1, 8, 8)
    assert train.x.min() == -1 and train.x.max() == 1
    assert set(train.labels.tolist()) == set(range(10))


def test_mixture_modes_match_the_published_settings():
    ring = ring_modes(8, 1.0)
    assert torch.allclose(ring.norm(dim=1), torch.ones(8))
    grid = grid_modes(5, 2.0)
    assert sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0] and len(grid) == 25
    for name, dim, modes in [("ring8", 2, 8), ("grid25", 2, 25), ("gauss1d", 1, 2)]:
        ds = load_dataset(make_cfg(f"data={name}", "data.n_samples=5000").data, seed=3)
        assert ds.x.shape == (5000, dim) and len(ds.modes) == modes
        nearest = torch.cdist(ds.x, ds.modes).min(dim=1).values
        assert (nearest < 3 * ds.std * 1.5).float().mean() > 0.99  # samples sit on their modes
