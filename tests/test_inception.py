"""Inception FID / KID / IS from a weights file on disk: the plumbing runs on weights this test writes
from a randomly initialised torch-fidelity extractor, and ganlab's scores equal torch-fidelity's own on
the same images and weights. Without the file nothing changes and nothing is downloaded."""

from __future__ import annotations

import csv
from pathlib import Path
from unittest import mock

import pytest
import torch

from ganlab.config import ConfigError
from ganlab.quality.inception import KID_SUBSETS, SCORES, InceptionScores, as_uint8_rgb, find_weights
from ganlab.training.job import run_job
from tests.conftest import TINY, make_cfg

torch_fidelity = pytest.importorskip("torch_fidelity")
N = 12  # images per side: enough for IS's 10 splits, few enough for a CPU


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A weights file in torch-fidelity's format, of a randomly initialised Inception (nothing downloaded)."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    torch.manual_seed(0)
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: None), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("inception") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), path)
    return path


class Images(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor):
        self.images = as_uint8_rgb(images)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


def test_ganlabs_inception_scores_equal_torch_fidelitys_on_the_same_images_and_weights(weights, tmp_path):
    g = torch.Generator().manual_seed(1)
    real, fake = torch.rand(N, 1, 8, 8, generator=g) * 2 - 1, torch.rand(N, 1, 8, 8, generator=g) * 1.6 - 0.8
    ours = InceptionScores(weights, real, real.flip(0), tmp_path, "test").score(fake)
    theirs = torch_fidelity.calculate_metrics(input1=Images(fake), input2=Images(real), fid=True, kid=True, isc=True,
                                              feature_extractor_weights_path=str(weights), kid_subset_size=N,
                                              kid_subsets=KID_SUBSETS,
                                              batch_size=N, cuda=False, verbose=False, cache=False)
    for mine, key in zip(SCORES, ("frechet_inception_distance", "kernel_inception_distance_mean",
                                  "inception_score_mean")):
        assert ours[mine] == pytest.approx(theirs[key], rel=1e-4, abs=1e-9), mine


def test_a_run_scores_fid_from_the_weights_and_ranks_by_it(weights, tmp_path):
    overrides = [*TINY, "trainer.epochs=1", f"metrics.inception_weights={weights}", f"metrics.n_samples={N}", "metrics.primary=fid_inception",
                 f"metrics.cache_dir={tmp_path / 'cache'}"]
    summary = run_job(make_cfg(*overrides), tmp_path / "run")
    assert summary["quality"]["metric"] == "fid_inception"
    with open(tmp_path / "run" / "quality.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and all(float(r["fid_inception"]) > 0 and float(r["is_inception"]) >= 1 for r in rows)
    assert {"fid_inception", "kid_inception", "is_inception"} <= set(summary["at_the_floor"]["not"] + summary["at_the_floor"]["at"])
    assert len(list((tmp_path / "cache" / "inception").glob("*.pt"))) == 1  # the real statistics, once per dataset


def test_the_real_statistics_are_cached_once_and_a_damaged_cache_is_measured_again(weights, tmp_path, caplog):
    caplog.set_level("INFO", logger="ganlab")
    real = torch.rand(N, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    first = InceptionScores(weights, real, real.flip(0), tmp_path, "digits")
    assert "Inception features of" in caplog.text
    caplog.clear()
    again = InceptionScores(weights, real, real.flip(0), tmp_path, "digits")
    assert "Inception features of" not in caplog.text and torch.equal(first.real, again.real)
    assert again.floor == first.floor
    (cached,) = (tmp_path / "inception").glob("*.pt")
    cached.write_bytes(b"damaged")
    mended = InceptionScores(weights, real, real.flip(0), tmp_path, "digits")
    assert "not used (damaged" in caplog.text and torch.equal(mended.real, first.real)


def test_without_the_weights_nothing_changes_and_nothing_is_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    assert find_weights(None) is None
    with pytest.raises(ConfigError, match="metrics.inception_weights=/no/such.pth: no such file"):
        find_weights("/no/such.pth")
    with mock.patch("torch.hub.load_state_dict_from_url", side_effect=AssertionError("a download")):
        summary = run_job(make_cfg(*TINY), tmp_path / "run")
    assert summary["quality"]["metric"] == "fd_classifier" and "fid_inception" not in summary["quality"]["best"]["scores"]


class RunsAShellCommand:
    """What a crafted weights file pickles: unpickling it calls os.system (touching a file)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("kind, says", [
    ("pickled code", "not a file of plain tensors, refused"),
    ("random bytes", "not a file of plain tensors, refused"),
    ("a list", "holds a list, not a network's state dict"),
    ("a Linear's state dict", "not the weights of torch-fidelity's Inception (Missing key(s)"),
    ("a wrong shape", "not the weights of torch-fidelity's Inception (size mismatch for fc.weight"),
])
def test_a_weights_file_is_read_as_data_and_checked_against_the_network(weights, tmp_path, monkeypatch, kind, says):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pth"
    if kind == "pickled code":
        torch.save({"x": RunsAShellCommand(tmp_path / "PWNED")}, evil)
    elif kind == "random bytes":
        evil.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    elif kind == "a list":
        torch.save([torch.zeros(2)], evil)
    elif kind == "a Linear's state dict":
        torch.save(torch.nn.Linear(2, 2).state_dict(), evil)
    else:
        state = torch.load(weights, weights_only=True)
        torch.save({**state, "fc.weight": state["fc.weight"][:, :10]}, evil)
    real = torch.rand(N, 1, 8, 8) * 2 - 1
    with pytest.raises(ConfigError) as refused:
        InceptionScores(evil, real, real, tmp_path, "test")
    message = str(refused.value)
    assert message.startswith(f"metrics.inception_weights={evil}: ") and says in message and "\n" not in message
    assert not (tmp_path / "PWNED").exists()


def test_a_run_given_a_crafted_weights_file_stops_in_one_line_and_runs_nothing(tmp_path):
    from tests.conftest import ganlab

    evil = tmp_path / "evil.pth"
    torch.save({"x": RunsAShellCommand(tmp_path / "PWNED")}, evil)
    done = ganlab("train", *TINY, f"metrics.inception_weights={evil}", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2 and "not a file of plain tensors, refused" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "PWNED").exists()
