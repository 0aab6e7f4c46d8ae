"""Class-conditional GANs: configs, tiny real runs for both conditioning methods and every loss,
grids with one class per row, per-class scores, `ganlab sample --class`, resume, errors."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.config import ConfigError, validate
from ganlab.parts.data import DatasetError, load_dataset
from ganlab.parts.networks.conditional import ClassNorm, ConditionalDiscriminator, ConditionalGenerator
from ganlab.parts.registry import LOSSES
from ganlab.training.job import run_job
from tests.conftest import TINY, ganlab, make_cfg, whole_and_resumed

CONDITIONAL = ["generator.conditioning=cbn", "discriminator.conditioning=projection"]


def loss_overrides(loss):
    return [f"loss={loss}"] + (["discriminator.norm=layer", "trainer.n_critic=2"] if loss == "wgan_gp" else [])


def test_the_conditional_study_composes_and_names_its_methods():
    cfg = make_cfg("+exp=conditional", "data=fashion_mnist")
    validate(cfg)
    assert (cfg.generator.conditioning, cfg.discriminator.conditioning) == ("cbn", "projection")
    assert make_cfg().discriminator.conditioning == "none"  # unconditional unless asked


@pytest.mark.parametrize("overrides,message", [
    (["data=ring8", "generator=mlp", "discriminator=mlp", "discriminator.conditioning=acgan"], "holds points"),
    (["discriminator.conditioning=projection", "generator.conditioning=cbn", "generator.norm=none"],
     "use generator.norm=batch"),
    (["discriminator.conditioning=auxiliary"], "discriminator.conditioning"),
    (["discriminator.conditioning=acgan", "discriminator.class_weight=-1"], "class_weight=-1"),
])
def test_bad_conditioning_is_refused_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate(make_cfg(*overrides))


@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
@pytest.mark.parametrize("loss", LOSSES.names())
def test_every_loss_trains_conditionally_with_finite_numbers(tmp_path, conditioning, loss):
    cfg = make_cfg(*TINY, "metrics.enabled=false", "trainer.epochs=1", f"discriminator.conditioning={conditioning}",
                   *loss_overrides(loss))
    assert run_job(cfg, tmp_path / "run")["status"] == "completed"
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(math.isfinite(float(r["loss_d"])) and math.isfinite(float(r["loss_g"])) for r in rows)
    # ACGAN's class term is measured; other methods leave the column blank
    assert all((r["class_loss"] != "") == (conditioning == "acgan") for r in rows)


@pytest.mark.parametrize("g_method,d_method", [("concat", "projection"), ("cbn", "acgan")])
def test_conditional_networks_take_the_class(g_method, d_method):
    cfg = make_cfg(f"generator.conditioning={g_method}", f"discriminator.conditioning={d_method}",
                   "generator.width=8", "discriminator.width=8")
    G, D = ConditionalGenerator(cfg.generator, (1, 8, 8), 10), ConditionalDiscriminator(cfg.discriminator, (1, 8, 8), 10)
    z = torch.randn(4, G.z_dim)
    for norm in (m for m in G.modules() if isinstance(m, ClassNorm)):
        torch.nn.init.normal_(norm.bias.weight)  # as training leaves them: per-class biases (they start at 0)
    G.eval()
    zero, three = G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.full((4,), 3))
    assert zero.shape == (4, 1, 8, 8) and not torch.allclose(zero, three)  # the class changes the image
    if g_method == "cbn":
        assert any(isinstance(m, ClassNorm) for m in G.modules())
        assert not any(isinstance(m, torch.nn.BatchNorm2d) and m.affine for m in G.modules())
    scores = D(zero, torch.zeros(4, dtype=torch.long))
    assert scores.shape == (4,)
    if d_method == "acgan":
        assert D.class_logits.shape == (4, 10) and D.class_loss(torch.zeros(4, dtype=torch.long)) > 0


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cond") / "r"
    run_job(make_cfg(*TINY, *CONDITIONAL, "trainer.n_grid=20"), run)
    return run


def test_a_conditional_run_draws_a_class_per_row_and_scores_each_class(conditional_run):
    run = conditional_run
    grid = Image.open(sorted((run / "samples").glob("*.png"))[-1])
    assert (grid.width, grid.height) == (2 * 32 + 3 * 4, 10 * 32 + 11 * 4)  # 10 rows (classes) of 2
    with open(run / "classes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows[:10]] == [str(k) for k in range(10)] and len(rows) == 10 * 2  # 2 evaluations
    assert sum(int(r["n"]) for r in rows[:10]) == 200  # the evaluation samples, every class drawn
    summary = json.loads((run / "summary.json").read_text())
    quality = summary["quality"]
    assert 0 <= quality["best"]["scores"]["class_accuracy"] <= 1
    assert quality["weakest_class"]["fd"] == max(c["fd"] for c in quality["best"]["per_class"])
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["classes"] == [str(k) for k in range(10)]
    assert ganlab("report", str(run)).returncode == 0
    page = (run / "report.html").read_text()
    assert "One class per row, top to bottom: 0, 1, 2" in page and "<h2>Classes</h2>" in page and "weakest" in page


def test_sample_draws_the_class_asked_for(conditional_run, tmp_path):
    out = tmp_path / "s.npz"
    assert ganlab("sample", str(conditional_run), "--class", "3", "--n", "6", "--out", str(out), "--force").returncode == 0
    assert np.load(out)["labels"].tolist() == [3] * 6
    assert ganlab("sample", str(conditional_run), "--class", "all", "--n", "20", "--out", str(out), "--force").returncode == 0
    assert np.load(out)["labels"].tolist() == [k for k in range(10) for _ in range(2)]
    assert ganlab("sample", str(conditional_run), "--class", "7", "--interpolate", "4", "--n", "8",
                  "--out", str(out), "--force").returncode == 0
    assert np.load(out)["images"].shape == (8, 8, 8, 1) and set(np.load(out)["labels"]) == {7}
    bad = ganlab("sample", str(conditional_run), "--class", "cat", "--out", str(tmp_path / "x.png"))
    assert bad.returncode == 2 and "give 0-9, all, or a name" in bad.stderr and not (tmp_path / "x.png").exists()


def test_class_of_an_unconditional_run_is_a_clear_error(tmp_path):
    run = tmp_path / "plain"
    run_job(make_cfg(*TINY, "metrics.enabled=false", "trainer.epochs=1"), run)
    out = ganlab("sample", str(run), "--class", "3", "--checkpoint", "last", "--out", str(tmp_path / "x.png"))
    assert out.returncode == 2 and "is not class-conditional" in out.stderr and "+exp=conditional" in out.stderr


def test_a_conditional_acgan_run_resumes_bit_for_bit(tmp_path):
    whole, resumed = whole_and_resumed(tmp_path, [*TINY, "metrics.enabled=false", "generator.conditioning=cbn",
                                                  "discriminator.conditioning=acgan"], steps=12)
    for net in ("generator", "discriminator"):
        for key, value in whole[net].items():
            assert torch.equal(value, resumed[net][key]), f"{net}.{key}"


def test_a_folder_gives_classes_from_its_subfolders_and_refuses_conditioning_without(tmp_path):
    for name in ("cats", "dogs"):
        (tmp_path / "by_class" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), 40 * i).save(tmp_path / "by_class" / name / f"{i}.png")
    data = load_dataset(make_cfg("data=folder", f"data.root={tmp_path / 'by_class'}", "data.image_size=8").data)
    assert data.classes == ["cats", "dogs"] and data.labels.tolist() == [0, 0, 0, 1, 1, 1]

    (tmp_path / "flat").mkdir()
    for i in range(40):
        Image.new("L", (8, 8), i).save(tmp_path / "flat" / f"{i}.png")
    cfg = make_cfg(*TINY, "data=folder", f"data.root={tmp_path / 'flat'}", "data.image_size=8",
                   "discriminator.conditioning=projection")
    with pytest.raises(DatasetError, match="put each class's images in its own subfolder"):
        run_job(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before a folder was made


@pytest.mark.slow
def test_samples_of_a_class_are_classified_as_that_class_by_the_yardstick(tmp_path):
    """A conditional run long enough to learn the digits (the default 60 epochs): the yardstick
    classifier sees the asked-for class in most of `ganlab sample --class K`'s samples, for every K."""
    from ganlab.quality import build_evaluator

    cfg = make_cfg("+exp=conditional", "trainer.progress=false")
    run_job(cfg, tmp_path / "run")
    evaluator = build_evaluator(cfg, load_dataset(cfg.data))
    for k in range(10):
        out = tmp_path / f"class{k}.npz"
        assert ganlab("sample", str(tmp_path / "run"), "--class", str(k), "--n", "100", "--out", str(out), "--force").returncode == 0
        images = torch.from_numpy(np.load(out)["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1
        _, predicted = evaluator.classifier.net.embed(images)
        assert (predicted == k).float().mean() > 0.8, k
