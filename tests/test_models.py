"""Networks build for every image size, kernel, norm and activation; D returns one raw score each."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from ganlab.parts.networks.dcgan import resolutions
from ganlab.parts.registry import DISCRIMINATORS, GENERATORS
from tests.conftest import make_cfg


def nets(*overrides: str, shape):
    cfg = make_cfg(*overrides)
    return GENERATORS.build(cfg.generator, shape), DISCRIMINATORS.build(cfg.discriminator, shape)


@pytest.mark.parametrize("size,channels", list(itertools.product([8, 16, 28, 32, 64], [1, 3])))
def test_dcgan_makes_images_of_every_supported_size(size, channels):
    G, D = nets("generator.width=4", "discriminator.width=4", shape=(channels, size, size))
    images = G(torch.randn(3, G.z_dim))
    assert images.shape == (3, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    scores = D(images)
    assert scores.shape == (3,)


@pytest.mark.parametrize("kernel,depth,norm,activation", [
    (3, 1, "batch", "relu"), (4, 2, "layer", "leaky_relu"), (5, 3, "spectral", "gelu"), (4, 1, "none", "tanh"),
    (2, 2, "batch", "elu"), (6, 1, "layer", "silu")])
def test_dcgan_options_build_and_run(kernel, depth, norm, activation):
    opts = [f"{side}.{k}={v}" for side in ("generator", "discriminator")
            for k, v in [("kernel_size", kernel), ("depth", depth), ("norm", norm), ("activation", activation),
                         ("width", 4), ("dropout", 0.2)]]
    G, D = nets(*opts, shape=(1, 28, 28))
    assert D(G(torch.randn(2, G.z_dim))).shape == (2,)
    convs = [m for m in G.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 * (depth - 1)  # extra stride-1 convs at the 7x7 and 14x14 resolutions
    if norm == "spectral":
        assert any(hasattr(m, "parametrizations") for m in D.modules())


def test_deeper_and_wider_networks_have_more_parameters():
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    base, _ = nets(shape=(1, 28, 28))
    deeper, _ = nets("generator.depth=3", shape=(1, 28, 28))
    wider, _ = nets("generator.width=128", shape=(1, 28, 28))
    assert count(deeper) > count(base) and count(wider) > count(base)


def test_resolutions():
    assert resolutions(28) == [7, 14, 28] and resolutions(64) == [4, 8, 16, 32, 64] and resolutions(8) == [4, 8]


@pytest.mark.parametrize("shape", [(2,), (1,), (1, 8, 8)])
def test_mlp_handles_points_and_images(shape):
    data = {2: "ring8", 1: "gauss1d"}.get(shape[0] if len(shape) == 1 else 0, "digits")
    G, D = nets(f"data={data}", "generator=mlp", "discriminator=mlp", "generator.norm=batch",
                "discriminator.norm=spectral", shape=shape)
    x = G(torch.randn(5, G.z_dim))
    assert x.shape == (5, *shape) and D(x).shape == (5,)
    if len(shape) == 1:
        assert x.abs().max() > 0  # unbounded output for points (no tanh)


RESNET = ("generator=resnet", "discriminator=resnet", "generator.width=4", "discriminator.width=4")


@pytest.mark.parametrize("size,channels", list(itertools.product([16, 28, 32, 64], [1, 3])))
def test_resnet_makes_images_of_every_size_from_16_to_64(size, channels):
    G, D = nets(*RESNET, shape=(channels, size, size))
    images = G(torch.randn(3, G.z_dim))
    assert images.shape == (3, channels, size, size) and images.min() >= -1 and images.max() <= 1
    assert D(images).shape == (3,)
    ups = sum(1 for m in G.modules() if type(m).__name__ == "GBlock" and m.up)
    downs = sum(1 for m in D.modules() if type(m).__name__ == "DBlock" and m.down)
    assert ups == downs == len(resolutions(size)) - 1  # one resampling block per level


def test_resnet_discriminator_has_spectral_norm_on_every_layer_by_default():
    _, D = nets(*RESNET, shape=(1, 28, 28))
    layers = [m for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    _, plain = nets(*RESNET, "discriminator.norm=none", shape=(1, 28, 28))
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())


@pytest.mark.parametrize("norm,activation,depth", [("batch", "relu", 1), ("layer", "leaky_relu", 2),
                                                   ("none", "gelu", 1), ("spectral", "silu", 2)])
def test_resnet_knobs_build_and_run(norm, activation, depth):
    opts = [f"{side}.{k}={v}" for side in ("generator", "discriminator")
            for k, v in [("depth", depth), ("norm", norm), ("activation", activation), ("dropout", 0.1)]]
    G, D = nets(*RESNET, *opts, shape=(3, 32, 32))
    assert D(G(torch.randn(2, G.z_dim))).shape == (2,)
    blocks = sum(1 for m in G.modules() if type(m).__name__ == "GBlock")
    assert blocks == depth * (len(resolutions(32)) - 1)
    norms = [m for m in G.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm))]
    assert bool(norms) == (norm in ("batch", "layer"))


@pytest.mark.parametrize("loss", ["hinge", "wgan_gp"])
def test_resnet_gan_trains_on_digits_with_finite_numbers(tmp_path, loss):
    from ganlab.training.job import run_job
    from tests.conftest import TINY

    extra = ["discriminator.norm=layer", "trainer.n_critic=2"] if loss == "wgan_gp" else []
    summary = run_job(make_cfg(*TINY, *RESNET, f"loss={loss}", *extra), tmp_path / "run")
    assert summary["status"] == "completed" and math.isfinite(summary["quality"]["best"]["score"])
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
