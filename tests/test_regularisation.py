"""R1 / R2: the lazy penalty is (gamma / 2) E||grad D||^2 scaled by reg_every on its steps and
zero between them, it trains, it is logged and drawn, and a resumed run continues it exactly."""

from __future__ import annotations

import csv

import pytest
import torch
import torch.nn as nn

from ganlab.config import ConfigError, validate
from ganlab.parts.losses import LazyRegulariser
from ganlab.training.job import run_job
from tests.conftest import TINY, make_cfg, whole_and_resumed

R1 = ["loss.r1_gamma=10", "loss.reg_every=4"]


def test_the_lazy_r1_penalty_matches_a_direct_computation():
    torch.manual_seed(0)
    d = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1))
    real, fake = torch.randn(5, 1, 4, 4), torch.randn(5, 1, 4, 4)
    direct = 0.0
    for x in real:  # one sample at a time: d D(x_i) / d x_i, squared norm, averaged
        x = x.unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(d(x).sum(), x)
        direct += grad.pow(2).sum().item() / len(real)
    regularise = LazyRegulariser(r1_gamma=10.0, r2_gamma=0.0, every=4)
    r1, r2 = regularise(d, real, fake, d_step=8)
    assert r1.item() == pytest.approx(10.0 / 2 * 4 * direct, rel=1e-5) and r2.item() == 0.0
    assert all(term.item() == 0.0 for term in regularise(d, real, fake, d_step=9))  # between lazy steps
    r1.backward()  # it is a differentiable part of D's loss
    assert d[1].weight.grad is not None and d[1].weight.grad.abs().sum() > 0


def test_r1_and_r2_are_refused_for_wgan_gp_and_negative_values():
    with pytest.raises(ConfigError, match="wgan_gp has its own gradient penalty"):
        validate(make_cfg("loss=wgan_gp", "discriminator.norm=layer", "loss.r1_gamma=1"))
    with pytest.raises(ConfigError, match=r"loss.r2_gamma=-1.0 must be >= 0"):
        validate(make_cfg("loss.r2_gamma=-1"))


@pytest.mark.parametrize("loss", ["bce_logits", "hinge", "lsgan"])
def test_a_run_with_r1_and_r2_logs_both_penalties(tmp_path, loss):
    # a row every 4 G steps holds exactly one lazy D step
    run_job(make_cfg(*TINY, f"loss={loss}", *R1, "loss.r2_gamma=1", "trainer.steps=8", "trainer.log_every=4"),
          tmp_path / "run")
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert all(float(r["r1"]) > 0 and float(r["r2"]) >= 0 for r in rows)
    plain = run_job(make_cfg(*TINY, "trainer.steps=2"), tmp_path / "plain")
    assert plain["final"]["r1"] == "" and plain["final"]["r2"] == ""


def test_a_resumed_run_applies_the_lazy_penalty_on_the_same_steps(tmp_path):
    a, b = whole_and_resumed(tmp_path, [*TINY, *R1], steps=10)
    assert all(torch.equal(a["discriminator"][k], b["discriminator"][k]) for k in a["discriminator"])
