"""Remedies against mode collapse: PacGAN's packing, the maxout D, StyleGAN's minibatch std layer and
the RpGAN loss; each a part like the others (composed, validated, trained, resumed bit for bit)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganlab.config import ConfigError, validate
from ganlab.parts.losses import RpGANLoss, squared_gradient_norm
from ganlab.parts.networks.build import build_discriminator
from ganlab.parts.networks.layers import MinibatchStd
from ganlab.parts.networks.packing import Packed
from tests.conftest import TINY, TINY_POINTS, make_cfg, whole_and_resumed


def test_minibatch_std_joins_each_sample_the_std_of_its_group():
    x = torch.zeros(8, 3)
    x[:, 0] = torch.tensor([0.0, 0, 0, 0, 2, 2, 2, 2])  # groups hold samples i, i+2, i+4, i+6
    x[1::2, 1] = torch.tensor([1.0, -1, 1, -1])  # the odd group varies in feature 1 by std 1
    out = MinibatchStd()(x)
    assert out.shape == (8, 4) and torch.equal(out[:, :3], x)
    # even group (samples 0, 2, 4, 6): feature 0 is 0, 0, 2, 2 -> std 1; the others 0 -> mean (1 + 0 + 0) / 3
    assert torch.allclose(out[0::2, 3], torch.full((4,), 1 / 3), atol=1e-4)
    assert torch.allclose(out[1::2, 3], torch.full((4,), 2 / 3), atol=1e-4)  # std 1 in features 0 and 1
    images = MinibatchStd()(torch.randn(6, 2, 4, 4))  # 6 samples: groups of 2, the largest size dividing both
    assert images.shape == (6, 3, 4, 4) and torch.equal(images[:, 2], images[:, 2, :1, :1].expand(6, 4, 4))


def test_a_packed_d_sees_consecutive_samples_side_by_side_and_scores_each_pack():
    seen = []
    d = Packed(lambda x: seen.append(x) or x.sum(1), 2)
    points = torch.arange(12.0).reshape(6, 2)
    assert torch.equal(d(points), torch.tensor([0 + 1 + 2 + 3, 4 + 5 + 6 + 7, 8 + 9 + 10 + 11.0]))
    assert torch.equal(seen[0][1], torch.tensor([4.0, 5, 6, 7]))
    images = torch.randn(4, 1, 8, 8)
    assert torch.equal(Packed(lambda x: x, 2)(images)[1], torch.cat([images[2], images[3]]))


@pytest.mark.parametrize("net", ["mlp", "maxout"])
def test_every_d_packs_and_a_penalty_takes_each_packs_gradient(net):
    cfg = make_cfg(*TINY_POINTS, f"discriminator={net}", "discriminator.pack=4")
    d = build_discriminator(cfg.discriminator, (2,))
    x = torch.randn(8, 2, requires_grad=True)
    first = d.net.body[1]
    assert d(x).shape == (2,) and getattr(first, "linear", first).in_features == 4 * 2
    # R1 over packs: the mean over the 2 packs of the squared gradient of each pack's score
    direct = sum(torch.autograd.grad(d(x[i:i + 4]).sum(), x)[0].pow(2).sum() for i in (0, 4)) / 2
    assert torch.allclose(squared_gradient_norm(d, x.detach()), direct)


def test_the_maxout_d_takes_the_maximum_of_its_pieces():
    cfg = make_cfg(*TINY_POINTS, "discriminator=maxout", "discriminator.width=3", "discriminator.pieces=5",
                   "discriminator.depth=1")
    d = build_discriminator(cfg.discriminator, (2,))
    maxout = d.body[1]
    x = torch.randn(7, 2)
    pieces = maxout.linear(x).view(7, 3, 5)
    assert torch.equal(maxout(x), pieces.max(-1).values)
    assert sum(p.numel() for p in d.parameters()) == (2 * 15 + 15) + (3 + 1)


def test_rpgan_compares_each_real_sample_with_its_fake():
    loss, real, fake = RpGANLoss(), torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    assert math.isclose(loss.d_loss(real, fake).item(), (F.softplus(torch.tensor(-1.0)) + F.softplus(torch.tensor(1.0))).item() / 2, rel_tol=1e-6)
    assert math.isclose(loss.g_loss(fake, real).item(), loss.d_loss(fake, real).item(), rel_tol=1e-6)
    assert loss.d_loss(real + 5, fake + 5) == loss.d_loss(real, fake)  # only differences count


@pytest.mark.parametrize("overrides, says", [
    (["discriminator.pack=3", "trainer.batch_size=32"], "discriminator.pack=3 must divide trainer.batch_size=32"),
    (["discriminator.pack=0"], "discriminator.pack=0 must be >= 1"),
    (["discriminator.pack=2", "+exp=conditional"], "a pack holds samples of several classes"),
])
def test_remedies_refuse_what_cannot_work_in_one_line(overrides, says):
    with pytest.raises(ConfigError, match=r"^.*" + says.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        validate(make_cfg(*overrides))


def test_packing_minibatch_std_and_rpgan_with_r1_r2_train_and_resume_bit_for_bit(tmp_path):
    overrides = [*TINY_POINTS, "discriminator=maxout", "discriminator.width=8", "discriminator.pack=2",
                 "discriminator.minibatch_std=true", "loss=rpgan", "loss.r1_gamma=1", "loss.r2_gamma=1",
                 "loss.reg_every=2"]
    a, b = whole_and_resumed(tmp_path, overrides, steps=12)
    for net in ("generator", "discriminator"):
        assert all(torch.equal(a[net][k], b[net][k]) for k in a[net])
    assert "net.body.1.linear.weight" in a["discriminator"]  # the maxout D, packed
    assert a["discriminator"]["net.body.5.weight"].shape == (1, 8 + 1)  # 3 maxout layers, the std; its head sees the minibatch std too


def test_an_image_d_with_minibatch_std_and_packing_trains(tmp_path):
    from ganlab.training.job import run_job

    for net in ("dcgan", "resnet"):
        summary = run_job(make_cfg(*TINY, f"discriminator={net}", f"generator={net}", "discriminator.pack=2",
                                 "discriminator.minibatch_std=true", "+exp=r3gan", "trainer.steps=2"), tmp_path / net)
        assert summary["status"] == "completed", summary
