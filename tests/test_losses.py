"""Losses give their textbook values on known scores."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from ganlab.parts.registry import LOSSES
from tests.conftest import make_cfg


def loss(name: str, *overrides: str):
    return LOSSES.build(make_cfg(f"loss={name}", *overrides).loss)


def test_bce_and_bce_logits_agree_where_sigmoid_does_not_saturate():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.0, 1.0])
    for name in ("bce", "bce_logits"):
        torch.testing.assert_close(loss(name).d_loss(torch.zeros(4), torch.zeros(4)), torch.tensor(2 * math.log(2)))
    torch.testing.assert_close(loss("bce").d_loss(real, fake), loss("bce_logits").d_loss(real, fake))
    torch.testing.assert_close(loss("bce").g_loss(fake), loss("bce_logits").g_loss(fake))


def test_bce_saturates_as_the_seeds_sigmoid_head_did():
    # sigmoid(-200) rounds to 0 in float32: BCELoss clamps log(0) at -100, BCEWithLogits stays exact.
    fake = torch.tensor([-200.0])
    assert loss("bce").g_loss(fake).item() == pytest.approx(100.0)
    assert loss("bce_logits").g_loss(fake).item() == pytest.approx(200.0)


def test_label_smoothing_targets_enter_the_d_loss():
    real, fake = torch.tensor([10.0]), torch.tensor([-10.0])
    plain, smooth = loss("bce_logits").d_loss(real, fake), loss("label_smoothing").d_loss(real, fake)
    assert smooth > plain  # a confident D is penalised for overconfidence on real images
    two = loss("label_smoothing", "loss.real_target=0.98", "loss.fake_target=0.02")
    expected = -(0.98 * math.log(torch.sigmoid(real)) + 0.02 * math.log(1 - torch.sigmoid(real)))
    expected += -(0.02 * math.log(torch.sigmoid(fake)) + 0.98 * math.log(1 - torch.sigmoid(fake)))
    assert two.d_loss(real, fake).item() == pytest.approx(expected, rel=1e-4)


def test_hinge_lsgan_and_wasserstein_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert loss("hinge").d_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert loss("lsgan").d_loss(real, fake).item() == pytest.approx(0.5 * ((1 + 0.25) / 2 + (4 + 0) / 2))
    assert loss("wgan_gp").d_loss(real, fake).item() == pytest.approx(-1.25 - 1.0)
    assert loss("wgan_gp").g_loss(fake).item() == pytest.approx(1.0)


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic_and_positive_otherwise():
    critic = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.6, 0.8, 0.0]]))  # |grad| = 1 everywhere
    wgan = loss("wgan_gp")
    real, fake = torch.randn(16, 3), torch.randn(16, 3)
    assert wgan.penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        critic.weight.mul_(3)  # |grad| = 3: penalty = 10 * (3 - 1)^2
    assert wgan.penalty(critic, real, fake).item() == pytest.approx(40.0, rel=1e-5)
    assert loss("bce_logits").penalty(critic, real, fake).item() == 0.0


def test_minimax_g_loss_saturates_where_the_non_saturating_one_does_not():
    fake = torch.tensor([-12.0], requires_grad=True)  # D is sure this sample is fake
    loss("minimax").g_loss(fake).backward()
    minimax_grad = fake.grad.abs().item()
    fake.grad = None
    loss("bce_logits").g_loss(fake).backward()
    assert minimax_grad < 1e-5 and fake.grad.abs().item() > 0.99
    assert loss("minimax").g_loss(torch.zeros(3)).item() == pytest.approx(-math.log(2))
