"""`ganlab eval PATH data=NAME`: samples made by any tool (a folder of images, an .npz) scored with the
dataset's yardstick beside the real-vs-real floor, as a run's checkpoint is."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.parts.data import load_dataset
from tests.conftest import QUICK_METRICS, ganlab, make_cfg


@pytest.fixture(scope="module")
def digits_uint8() -> np.ndarray:
    """Real digits as another tool would save them: (N, H, W, 1) uint8."""
    x = load_dataset(make_cfg().data).x[:360]
    return ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def scored(tmp_path, *args) -> dict:
    out = ganlab("eval", *args, *QUICK_METRICS, "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_real_images_in_an_npz_score_near_the_floor_and_noise_far_from_it(tmp_path, digits_uint8):
    np.savez(tmp_path / "real.npz", images=digits_uint8)
    np.savez(tmp_path / "noise.npz", images=np.random.default_rng(0).integers(0, 256, digits_uint8.shape, dtype=np.uint8))
    real, noise = scored(tmp_path, "real.npz", "data=digits"), scored(tmp_path, "noise.npz", "data=digits")
    assert real["metric"] == "fd_classifier" and "fd_classifier" in real["at_the_floor"]["at"]
    assert noise["scores"]["fd_classifier"] > 10 * real["floor"]["fd_classifier"]
    assert real["scores"]["classes_covered"] == 10 and noise["scores"]["classes_covered"] < 10
    # the same images as floats in [-1, 1], channels first, score the same
    floats = digits_uint8.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
    np.savez(tmp_path / "floats.npz", floats)
    assert scored(tmp_path, "floats.npz", "data=digits")["scores"] == pytest.approx(real["scores"], rel=1e-5)


def test_a_folder_of_image_files_is_read_converted_and_resized(tmp_path, digits_uint8, caplog):
    (tmp_path / "pngs").mkdir()
    for i, image in enumerate(digits_uint8[:40]):
        Image.fromarray(image[:, :, 0]).convert("RGB").resize((16, 16)).save(tmp_path / "pngs" / f"{i:03}.png")
    out = ganlab("eval", "pngs", "data=digits", *QUICK_METRICS, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "40 samples of pngs, against data=digits" in out.stdout and "fd_classifier" in out.stdout
    assert "resized to the data's 8x8" in caplog.text and "give 200 for a like-for-like comparison" in caplog.text  # QUICK_METRICS: 200


@pytest.mark.parametrize("args, says", [
    (["pngs"], "pngs: name the dataset whose yardstick scores these samples, e.g. ganlab eval pngs data=fashion_mnist"),
    (["missing.npz", "data=digits"], "missing.npz: no such file or folder"),
    (["empty", "data=digits"], "empty: no images to score"),
    (["real.npz", "data=ring8"], "samples of shape (5, 8, 8, 1), but data=ring8 holds points of shape (2,)"),
])
def test_bad_samples_get_one_line(tmp_path, args, says, digits_uint8):
    (tmp_path / "empty").mkdir()
    (tmp_path / "pngs").mkdir()
    np.savez(tmp_path / "real.npz", images=digits_uint8[:5])
    out = ganlab("eval", *args, cwd=tmp_path)
    assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr


def png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header declares width x height pixels, with almost no data behind it (a bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def npz_declaring(path, shape: tuple[int, ...]) -> None:
    """An .npz whose array header declares `shape` (float32) over a few bytes of data."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images.npy", header.getvalue() + b"\0" * 64)


@pytest.mark.parametrize("make, says", [
    (lambda d: np.savez(d / "s.npz", images=np.full((20, 8, 8), np.nan, np.float32)),
     "s.npz: 1,280 of the values are NaN or infinite"),
    (lambda d: np.savez(d / "s.npz", images=np.full((20, 8, 8), np.inf, np.float32)), "NaN or infinite"),
    (lambda d: np.savez(d / "s.npz", images=np.zeros((1, 8, 8), np.uint8)), "s.npz: 1 samples; the scores compare"),
    (lambda d: np.savez(d / "s.npz", images=np.zeros((0, 8, 8), np.uint8)), "s.npz: 0 samples"),
    (lambda d: np.savez(d / "s.npz", images=np.zeros((20, 8, 8), np.complex64)), "samples of dtype complex64"),
    (lambda d: np.savez(d / "s.npz", images=np.full((20, 8, 8), 10**12, np.int64)),
     "integer samples from 1000000000000 to 1000000000000"),
    (lambda d: np.savez(d / "s.npz", images=np.full((20, 8, 8), 200.0, np.float32)), "float images from 200 to 200"),
    (lambda d: npz_declaring(d / "s.npz", (10**8, 64, 64, 3)), "header declares 4,915,200,000,000 bytes"),
    (lambda d: (d / "s").mkdir() or png_header_only(d / "s" / "big.png", 50_000, 50_000), "big.png"),
    (lambda d: (d / "s").mkdir() or png_header_only(d / "s" / "wide.png", 8_000, 8_000),
     "an image of 8000 x 8000 pixels"),
    (lambda d: (d / "s").mkdir() or __import__("os").mkfifo(d / "s" / "pipe.png"), "s: no images to score"),
], ids=["nan", "inf", "one", "zero", "complex", "int64", "float-range", "header", "bomb", "huge", "fifo"])
def test_outside_samples_that_no_range_holds_or_that_would_hang_get_one_line(tmp_path, make, says):
    make(tmp_path)
    given = "s.npz" if (tmp_path / "s.npz").exists() else "s"
    out = ganlab("eval", given, "data=digits", *QUICK_METRICS, cwd=tmp_path)
    assert out.returncode == 2 and says in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
