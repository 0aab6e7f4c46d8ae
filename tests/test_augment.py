"""DiffAugment and ADA: the transforms keep gradients and do what their names say, p follows
r_t towards the target, a run logs p, and a resumed run continues the augmentation exactly."""

from __future__ import annotations

import csv

import pytest
import torch

from ganlab.config import ConfigError, validate
from ganlab.parts.augment import CUTOUT_RATIO, DiffAugment, cutout, translation
from ganlab.training.job import run_job
from tests.conftest import TINY, make_cfg, whole_and_resumed

ADA = ["augment=diffaug", "augment.adaptive=true", "augment.p=0", "augment.ada_kimg=0.5", "augment.ada_interval=2"]


def images(n: int = 8, size: int = 16) -> torch.Tensor:
    return torch.rand(n, 1, size, size) + 0.5  # no zeros: an erased or padded pixel shows as 0


def test_translation_shifts_each_image_by_at_most_an_eighth_filling_with_zeros():
    torch.manual_seed(0)
    x = images()
    out = translation(x)
    limit = int(16 * 0.125 + 0.5)
    for original, moved in zip(x, out):
        shifts = [(dy, dx) for dy in range(-limit, limit + 1) for dx in range(-limit, limit + 1)
                  if torch.equal(moved, shifted(original, dy, dx))]
        assert shifts, "every translated image is its original shifted within the limit"


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """out[y, x] = image[y + dy, x + dx], zero outside."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    for y in range(h):
        for x in range(w):
            if 0 <= y + dy < h and 0 <= x + dx < w:
                out[..., y, x] = image[..., y + dy, x + dx]
    return out


def test_cutout_erases_one_square_of_half_the_size_at_most():
    torch.manual_seed(0)
    out = cutout(images(32))
    side = int(16 * CUTOUT_RATIO + 0.5)
    for image in out[:, 0]:
        rows, cols = (image == 0).nonzero(as_tuple=True)
        assert 0 < len(rows) <= side * side
        assert rows.max() - rows.min() < side and cols.max() - cols.min() < side
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # a rectangle


def test_diffaugment_is_differentiable_and_p_zero_is_the_identity():
    x = images().requires_grad_(True)
    DiffAugment(["color", "translation", "cutout"])(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    y = images()
    assert torch.equal(DiffAugment(["color", "translation", "cutout"], p=0.0)(y), y)


def test_with_p_one_half_about_half_the_images_are_transformed():
    torch.manual_seed(0)
    x = images(2000)
    out = DiffAugment(["cutout"], p=0.5)(x)
    changed = (out != x).flatten(1).any(1).float().mean().item()
    assert 0.45 < changed < 0.55


def test_ada_raises_p_while_d_is_sure_of_the_reals_and_lowers_it_otherwise():
    ada = DiffAugment(["color"], p=0.0, adaptive=True, target=0.6, interval=2, kimg=1.0, batch_size=50)
    speed = 50 * 2 / 1000
    for _ in range(4):  # r_t = 1 > 0.6: two adjustments up
        ada.observe(torch.ones(50))
    assert ada.p == pytest.approx(2 * speed) and ada.rt == 1.0
    for _ in range(2):  # r_t = 0.2 < 0.6: one adjustment down
        ada.observe(torch.tensor([1.0] * 30 + [-1.0] * 20))
    assert ada.p == pytest.approx(speed) and ada.rt == pytest.approx(0.2)
    for _ in range(10):
        ada.observe(-torch.ones(50))
    assert ada.p == 0.0  # never below 0


def test_augmentation_configs_compose_and_bad_values_are_refused():
    validate(make_cfg("augment=diffaug", "augment.policy=[color,cutout]"))
    with pytest.raises(ConfigError, match="augment.policy='flip' is not valid; choose one of: color, translation"):
        validate(make_cfg("augment=diffaug", "augment.policy=[color,flip]"))
    with pytest.raises(ConfigError, match="augment=diffaug transforms images, but data=ring8 holds points"):
        validate(make_cfg("data=ring8", "generator=mlp", "discriminator=mlp", "augment=diffaug"))
    with pytest.raises(ConfigError, match=r"augment.p=1.5 is out of range"):
        validate(make_cfg("augment=diffaug", "augment.p=1.5"))


def test_an_adaptive_run_logs_p_and_r_t_in_each_row(tmp_path):
    run_job(make_cfg(*TINY, *ADA, "trainer.steps=12", "trainer.log_every=4"), tmp_path / "run")
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert len(rows) == 3 and all(0 <= float(r["aug_p"]) <= 1 and -1 <= float(r["ada_rt"]) <= 1 for r in rows)
    assert len({r["aug_p"] for r in rows}) > 1  # p moved
    plain = run_job(make_cfg(*TINY, "trainer.steps=2"), tmp_path / "plain")
    assert plain["final"]["aug_p"] == "" and plain["final"]["ada_rt"] == ""


@pytest.mark.parametrize("loss", ["bce_logits", "wgan_gp"])
def test_diffaugment_trains_with_each_loss_family(tmp_path, loss):
    extra = ["discriminator.norm=layer"] if loss == "wgan_gp" else []
    summary = run_job(make_cfg(*TINY, f"loss={loss}", *extra, "augment=diffaug", "trainer.steps=4"), tmp_path / "run")
    assert summary["status"] == "completed" and summary["final"]["aug_p"] == 1.0


def test_a_resumed_adaptive_run_continues_p_and_the_weights_bit_for_bit(tmp_path):
    a, b = whole_and_resumed(tmp_path, [*TINY, *ADA, "augment.target=0.01"], steps=10)  # p rises from 0
    assert a["augment"]["p"] > 0 and all(a["augment"][k] == b["augment"][k] for k in ("p", "rt", "count", "steps"))
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])
