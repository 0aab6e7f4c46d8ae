"""Quality scores against known answers, best checkpoints, diagnoses, and the commands that use them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.parts.data import load_dataset
from ganlab.parts.data.mixtures import ring_modes, sample_mixture
from ganlab.quality import build_evaluator, scores
from ganlab.training.diagnose import Diagnostician
from ganlab.training.job import run_job
from tests.conftest import QUICK_METRICS, TINY, TINY_POINTS, ganlab, make_cfg


def gaussian(n, d=8, shift=0.0, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


# ------------------------------------------------------------------------- scores, exact
def test_frechet_distance_is_zero_for_the_same_gaussian_and_the_squared_shift_otherwise():
    assert scores.frechet_distance(gaussian(4000), gaussian(4000, seed=1)) < 0.05
    shifted = scores.frechet_distance(gaussian(4000), gaussian(4000, shift=2.0, seed=1))
    assert shifted == pytest.approx(8 * 2.0**2, rel=0.03)  # |mu difference|^2 in 8 dimensions


def test_kid_is_unbiased_near_zero_for_one_distribution_and_large_for_another():
    assert abs(scores.kernel_inception_distance(gaussian(1000), gaussian(1000, seed=1))) < 0.01
    assert scores.kernel_inception_distance(gaussian(1000), gaussian(1000, shift=1.0, seed=1)) > 0.5


def test_prdc_on_identical_and_disjoint_samples():
    real = gaussian(500)
    same = scores.prdc(real, real.clone(), k=5)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0 and same["density"] >= 1.0
    far = scores.prdc(real, gaussian(500, shift=50.0), k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    half = scores.prdc(real, real[real[:, 0] > 0.5].clone(), k=5)  # a generator of one side of the data
    assert half["precision"] == 1.0 and half["coverage"] < 0.6 and half["recall"] < 0.8


def test_mode_scores_are_exact_on_hand_made_samples():
    modes, std = ring_modes(8, 1.0), 0.02
    points = torch.cat([modes[0].repeat(6, 1), modes[3].repeat(2, 1),
                        (modes[0] + torch.tensor([0.055, 0.0]))[None],  # 2.75 std away: high quality
                        (modes[5] + torch.tensor([0.0, 0.07]))[None],   # 3.5 std away: not
                        torch.zeros(2, 2)])                             # the centre: not
    result = scores.mode_scores(points, modes, std)
    assert result["modes_covered"] == 2
    assert result["hq_share"] == pytest.approx(9 / 12)
    p = torch.tensor([7 / 9, 2 / 9], dtype=torch.float64)
    assert result["mode_kl"] == pytest.approx(float((p * (p * 8).log()).sum()))
    assert scores.mode_scores(torch.full((5, 2), 9.0), modes, std) == {
        "modes_covered": 0, "hq_share": 0.0, "mode_kl": pytest.approx(math.log(8))}


def test_class_scores_and_sliced_wasserstein_known_values():
    freq = torch.full((10,), 0.1)
    assert scores.class_scores(torch.zeros(100, dtype=torch.long), freq) == {
        "classes_covered": 1, "class_kl": pytest.approx(math.log(10))}
    assert scores.class_scores(torch.arange(100) % 10, freq)["class_kl"] == pytest.approx(0.0, abs=1e-6)
    a = torch.randn(1000, 1, generator=torch.Generator().manual_seed(0))
    assert scores.sliced_wasserstein(a, a + 0.7) == pytest.approx(0.7)  # exact W1 in 1-D


# ---------------------------------------------------------------- evaluators on real data
@pytest.fixture(scope="module")
def digits_evaluator():
    cfg = make_cfg("metrics.n_samples=1000")  # the shipped yardstick of the digits: nothing to train
    return build_evaluator(cfg, load_dataset(cfg.data)), cfg


def test_digits_classifier_is_accurate_and_recorded(digits_evaluator):
    evaluator, _ = digits_evaluator
    assert evaluator.info["test_accuracy"] > 0.9 and len(evaluator.info["hash"]) == 16
    assert evaluator.info["n_generated"] == 360  # the size of the test split, so the floor is comparable
    assert evaluator.classifier.folder.is_dir() and any(evaluator.classifier.folder.glob("floor-*.json"))


def test_real_images_score_near_the_floor_collapse_and_noise_far_from_it(digits_evaluator):
    evaluator, cfg = digits_evaluator
    floor = evaluator.floor
    test = load_dataset(make_cfg("data.split=test").data)
    real = evaluator.score(test.x)
    assert real["fd_classifier"] == pytest.approx(floor["fd_classifier"], rel=0.05)
    assert real["classes_covered"] == 10 and real["precision"] > 0.9

    one_image = evaluator.score(test.x[:1].repeat(400, 1, 1, 1))
    assert one_image["classes_covered"] <= 2 and one_image["diversity_ratio"] < 0.05
    assert one_image["coverage"] < 0.2 and one_image["fd_classifier"] > 5 * floor["fd_classifier"]

    noise = evaluator.score(torch.rand(400, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert noise["fd_classifier"] > 20 * floor["fd_classifier"] and noise["precision"] < 0.1


def test_mixture_evaluator_scores_a_one_mode_generator_as_collapsed():
    data = load_dataset(make_cfg("data=ring8").data)
    evaluator = build_evaluator(make_cfg("data=ring8", "generator=mlp", "discriminator=mlp"), data)
    assert evaluator.floor["modes_covered"] == 8 and evaluator.floor["hq_share"] > 0.98
    one_mode = sample_mixture(data.modes[:1], data.std, 2000, torch.Generator().manual_seed(5))
    collapsed = evaluator.score(one_mode)
    assert collapsed["modes_covered"] == 1 and collapsed["mode_kl"] == pytest.approx(math.log(8))
    assert collapsed["diversity_ratio"] < 0.1 and collapsed["swd"] > 20 * evaluator.floor["swd"]
    good = evaluator.score(sample_mixture(data.modes, data.std, 2000, torch.Generator().manual_seed(6)))
    assert good["modes_covered"] == 8 and good["swd"] < 3 * evaluator.floor["swd"]


def test_unlabelled_folder_gets_distribution_scores_from_a_rotation_classifier(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(60):  # bright top half, dark bottom half: rotations are learnable
        image = np.zeros((16, 16, 3), np.uint8)
        image[: 8 + rng.integers(-2, 3)] = 200 + rng.integers(0, 50)
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    cfg = make_cfg("data=folder", f"data.root={tmp_path}", "data.image_size=16", *QUICK_METRICS)
    evaluator = build_evaluator(cfg, load_dataset(cfg.data))
    assert evaluator.info["task"] == "rotation" and evaluator.info["test_accuracy"] > 0.5
    result = evaluator.score(load_dataset(cfg.data).x)
    assert "classes_covered" not in result and {"fd_classifier", "kid", "precision", "coverage"} <= set(result)


# -------------------------------------------------------------------------------- runs
def test_every_evaluation_is_recorded_and_best_pt_is_the_best_score(tmp_path):
    summary = run_job(make_cfg(*TINY, "trainer.epochs=3"), tmp_path / "r")
    rows = (tmp_path / "r" / "quality.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,fd_classifier,kid,precision,recall,density,coverage")
    assert len(rows) == 1 + 3
    quality = summary["quality"]
    scores_ = [float(r.split(",")[2]) for r in rows[1:]]
    best = quality["best"]
    assert best["score"] == min(scores_) and best["epoch"] == 1 + scores_.index(min(scores_))
    assert best["samples"] == f"samples/epoch_{best['epoch']:04d}.png" and (tmp_path / "r" / best["samples"]).exists()
    assert torch.load(tmp_path / "r" / "checkpoints" / "best.pt", weights_only=True)["epoch"] == best["epoch"]
    assert quality["floor"]["fd_classifier"] > 0 and quality["scored_with"]["hash"]
    assert 0 < quality["eval_share"] < 1


def test_metrics_can_be_switched_off(tmp_path):
    summary = run_job(make_cfg(*TINY, "metrics.enabled=false"), tmp_path / "r")
    assert "quality" not in summary and not (tmp_path / "r" / "checkpoints" / "best.pt").exists()


def test_mode_collapse_on_the_ring_is_diagnosed_in_plain_words(tmp_path):
    summary = run_job(make_cfg("+exp=mode_collapse_ring", "trainer.steps=1000", "metrics.every=2",
                             "trainer.progress=false", "metrics.n_samples=500"), tmp_path / "r")
    kinds = {d["kind"]: d for d in summary["diagnoses"]}
    assert "mode_collapse" in kinds and "discriminator.pack=2" in kinds["mode_collapse"]["suggestion"]
    assert summary["quality"]["final"]["modes_covered"] <= 3
    assert kinds["mode_collapse"]["message"].startswith("G has collapsed onto a few modes")


# ----------------------------------------------------------------------- diagnoses rules
def rows(n, **columns):
    return [{"step": 10 * (i + 1), "epoch": i / 10, **{k: (v(i) if callable(v) else v) for k, v in columns.items()}}
            for i in range(n)]


HEALTHY = dict(acc_real=lambda i: 0.7 + 0.05 * (i % 2), acc_fake=lambda i: 0.6 + 0.05 * (i % 3),
               grad_norm_g=lambda i: 3.0 + (i % 4))


def diagnose(history, evals=()):
    doctor = Diagnostician()
    for row in history:
        doctor.on_metrics(row)
    for row in evals:
        doctor.on_quality(row)
    return doctor.found


def test_a_healthy_history_has_no_diagnosis():
    evals = [{"epoch": e, "step": e * 10, "modes_covered": 8, "diversity_ratio": 0.95} for e in range(1, 6)]
    assert diagnose(rows(60, **HEALTHY), evals) == {}


def test_d_overpowering_vanishing_gradients_and_oscillation_are_each_recognised():
    strong = diagnose(rows(15, acc_real=0.99, acc_fake=0.98, grad_norm_g=2.0))
    assert set(strong) == {"d_overpowering"} and "acc_fake >= 0.98" in strong["d_overpowering"].evidence
    vanishing = diagnose(rows(30, acc_real=0.8, acc_fake=0.7, grad_norm_g=lambda i: 5.0 if i < 10 else 1e-4))
    assert set(vanishing) == {"vanishing_g_gradients"} and "loss=bce_logits" in vanishing["vanishing_g_gradients"].suggestion
    swinging = diagnose(rows(30, acc_real=0.8, acc_fake=lambda i: 0.95 if (i // 4) % 2 else 0.05, grad_norm_g=2.0))
    assert set(swinging) == {"oscillation"}


def test_a_wasserstein_critic_that_separates_well_is_not_overpowering():
    doctor = Diagnostician(critic=True)
    for row in rows(15, acc_real=0.99, acc_fake=0.98, grad_norm_g=2.0):
        doctor.on_metrics(row)
    assert doctor.found == {}


def test_falling_class_coverage_is_mode_collapse():
    evals = [{"epoch": e, "step": e, "classes_covered": c, "diversity_ratio": 0.9} for e, c in enumerate([10, 10, 6, 5], 1)]
    found = diagnose([], evals)
    assert "classes covered fell to 5 from 10 at epoch 1" in found["mode_collapse"].evidence


# ---------------------------------------------------------------------------- commands
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "r"
    run_job(make_cfg(*TINY), run)
    return run


def test_sample_writes_a_png_grid_and_an_npz_in_data_space(trained_run, tmp_path):
    out = ganlab("sample", str(trained_run), "--n", "25", "--out", str(tmp_path / "grid.png"))
    assert out.returncode == 0, out.stderr
    assert Image.open(tmp_path / "grid.png").width == 5 * 32 + 6 * 4  # 5 x 5 enlarged 8x8 images
    out = ganlab("sample", str(trained_run), "--n", "7", "--out", str(tmp_path / "s.npz"), "--checkpoint", "last")
    assert out.returncode == 0, out.stderr
    images = np.load(tmp_path / "s.npz")["images"]
    assert images.shape == (7, 8, 8, 1) and images.dtype == np.uint8


def test_slerp_keeps_the_norm_and_ends_at_both_latents():
    from ganlab.judging.sampling import slerp

    a, b = torch.randn(3, 16), torch.randn(3, 16)
    b = b * (a.norm(dim=1, keepdim=True) / b.norm(dim=1, keepdim=True))  # equal norms: the arc keeps them
    path = slerp(a, b, torch.linspace(0, 1, 7))
    assert path.shape == (3, 7, 16)
    assert torch.allclose(path[:, 0], a, atol=1e-5) and torch.allclose(path[:, -1], b, atol=1e-5)
    assert torch.allclose(path.norm(dim=-1), a.norm(dim=1, keepdim=True).expand(3, 7), rtol=1e-4)


def test_sample_interpolates_in_rows_and_truncates_towards_the_mean(trained_run, tmp_path):
    def images(*args):
        out = ganlab("sample", str(trained_run), "--out", str(tmp_path / "s.npz"), "--checkpoint", "last", "--force", *args)
        assert out.returncode == 0, out.stderr
        return np.load(tmp_path / "s.npz")["images"].astype(int)

    strips = images("--n", "20", "--interpolate", "5").reshape(4, 5, 8, 8, 1)
    assert (np.abs(np.diff(strips, axis=1)).mean() < np.abs(strips[:, :1] - strips[:, -1:]).mean())  # gradual
    out = ganlab("sample", str(trained_run), "--interpolate", "--out", str(tmp_path / "strips.png"))
    assert out.returncode == 0 and Image.open(tmp_path / "strips.png").width == 8 * 32 + 9 * 4  # 8 steps a row
    plain = images("--n", "6")
    assert (images("--n", "6", "--truncation", "1") == plain).all()
    mean = images("--n", "6", "--truncation", "0")
    assert (mean == mean[0]).all() and not (plain == plain[0]).all()  # psi 0: every latent is the mean
    half = images("--n", "6", "--truncation", "0.5")
    assert np.abs(half - mean).mean() < np.abs(plain - mean).mean()
    for args, message in [(["--truncation", "1.5"], "psi must be in [0, 1]"),
                          (["--interpolate", "1"], "at least 2 steps")]:
        out = ganlab("sample", str(trained_run), "--out", str(tmp_path / "x.png"), "--force", *args)
        assert out.returncode == 2 and message in out.stderr and not (tmp_path / "x.png").exists()


def test_sample_of_points_and_errors_name_the_problem(tmp_path):
    run = tmp_path / "ring"
    run_job(make_cfg(*TINY_POINTS), run)
    assert ganlab("sample", str(run), "--n", "50", "--out", str(tmp_path / "p.npz")).returncode == 0
    assert np.load(tmp_path / "p.npz")["points"].shape == (50, 2)
    bad = [(["sample", str(tmp_path), "--out", "x.png"], "is not a ganlab run folder"),
           (["sample", str(run), "--out", str(tmp_path / "x.jpg")], "must end in .png"),
           (["sample", str(run), "--out", str(tmp_path / "no" / "x.png")], "does not exist"),
           (["sample", str(run), "--out", str(tmp_path / "x.png"), "--interpolate"], "draws strips of images")]
    for args, message in bad:
        out = ganlab(*args)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_eval_recomputes_the_scores_of_a_checkpoint(trained_run):
    out = ganlab("eval", str(trained_run))
    assert out.returncode == 0, out.stderr
    assert "fd_classifier" in out.stdout and "real vs real" in out.stdout
    result = json.loads((trained_run / "eval_best.json").read_text())
    summary = json.loads((trained_run / "summary.json").read_text())
    assert result["epoch"] == summary["quality"]["best"]["epoch"]
    assert result["scored_with"]["hash"] == summary["quality"]["scored_with"]["hash"]


def test_optuna_minimises_the_quality_score(tmp_path):
    out = ganlab("train", "-m", "hydra/sweeper=optuna", "hydra/launcher=basic", "hydra.sweeper.n_trials=2",
                 "hydra.sweeper.n_jobs=1", "optim.lr=interval(1e-4,1e-3)", *TINY, "trainer.steps=4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Best value:" in out.stdout + out.stderr
    sweep = next((tmp_path / "outputs" / "sweeps").iterdir())
    assert "fd_classifier" in (sweep / "sweep.csv").read_text()


def test_a_changed_classifier_cache_is_never_used_and_the_yardstick_stays_the_same(tmp_path, caplog):
    """Flipped bytes in classifier.pt scored a run 0.0 instead of 104.8 with an unchanged yardstick hash;
    a `[]` classifier.json or a truncated floor file gave tracebacks."""
    import logging

    from ganlab.parts.data import load_dataset
    from ganlab.quality import build_evaluator
    from tests.conftest import make_cfg

    cfg = make_cfg("metrics.classifier_steps=60", "metrics.n_samples=200", f"metrics.cache_dir={tmp_path}")
    data = load_dataset(cfg.data)
    first = build_evaluator(cfg, data)
    images = data.x[:200]
    expected, floor = first.score(images)["fd_classifier"], first.floor
    folder = first.classifier.folder
    weights, meta = folder / "classifier.pt", folder / "classifier.json"
    [floor_file] = folder.glob("floor-*.json")

    def damage(path: Path, how) -> None:
        data_ = bytearray(path.read_bytes())
        path.write_bytes(bytes(how(data_)))

    cases = {
        "flipped bytes in the weights": lambda: damage(weights, lambda b: b[:len(b) // 2] + bytes(x ^ 0x55 for x in b[len(b) // 2: len(b) // 2 + 64]) + b[len(b) // 2 + 64:]),
        "a [] metadata file": lambda: meta.write_text("[]"),
        "a truncated floor": lambda: damage(floor_file, lambda b: b[: len(b) // 2]),
        "an edited floor": lambda: floor_file.write_text(floor_file.read_text().replace('"fd_classifier": ', '"fd_classifier": 1')),
    }
    for name, spoil in cases.items():
        spoil()
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            again = build_evaluator(cfg, data)
        assert "not used" in caplog.text, name
        assert again.score(images)["fd_classifier"] == expected and again.floor == floor, name
        assert again.info["yardstick"] == first.info["yardstick"], name


def test_the_digits_are_scored_with_the_shipped_yardstick_on_every_machine_whatever_the_cache_held(tmp_path, caplog):
    """Trained here, the yardstick classifier's weights depend on the processor and the threads (Fashion-MNIST's
    scored the same generators up to 4% apart), so the studies' datasets ship theirs: a fresh cache, or one holding
    weights trained on this machine, scores with the shipped weights, and the yardstick names them."""
    import logging
    import shutil

    from ganlab.quality.classifier import SHIPPED, unsealed

    cfg = make_cfg("metrics.n_samples=300", f"metrics.cache_dir={tmp_path}")
    data = load_dataset(cfg.data)
    with caplog.at_level(logging.INFO):
        shipped = build_evaluator(cfg, data)
    assert "trained the" not in caplog.text  # nothing trained
    meta = unsealed(SHIPPED / shipped.classifier.folder.name / "classifier.json")
    assert shipped.classifier.weights_sha256 == meta["weights_sha256"]
    assert shipped.info["yardstick"].endswith(f"-w{shipped.info['weights'][:8]}")
    expected = shipped.score(data.x[:300])
    # a cache that holds a classifier trained on this machine (here: 60 steps, sealed as the cache seals it)
    folder = shipped.classifier.folder
    shutil.rmtree(folder)
    local = build_evaluator(make_cfg("metrics.n_samples=300", f"metrics.cache_dir={tmp_path / 'local'}",
                                     "metrics.classifier_steps=60"), data)
    shutil.copytree(local.classifier.folder, folder)
    assert local.info["yardstick"] != shipped.info["yardstick"]  # other weights, another yardstick
    with caplog.at_level(logging.INFO):
        caplog.clear()
        again = build_evaluator(cfg, data)
    assert "replaced by the yardstick ganlab ships" in caplog.text
    assert again.info["yardstick"] == shipped.info["yardstick"] and again.score(data.x[:300]) == expected
    assert again.floor == shipped.floor  # the floor of the other weights went with them
