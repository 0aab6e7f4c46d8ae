"""A stack: K GANs of one architecture trained as one vmapped computation, each member as its solo run."""

from __future__ import annotations

import pytest
import torch

from ganlab.parts.data import load_dataset
from ganlab.training.batches import BatchStream
from ganlab.training.job import build_gan
from ganlab.training.stack import StackedStep, why_not_stackable
from ganlab.training.step import GANStep
from tests.conftest import TINY_POINTS, make_cfg

CPU = torch.device("cpu")
SEEDS = (1, 2, 3)
RING = [*TINY_POINTS, "data.n_samples=1024", "trainer.batch_size=64"]  # 16 steps an epoch


def members(cfg, seeds=SEEDS):
    """Each seed's GAN, built as a solo run builds it, with its batch stream and its noise stream."""
    data = load_dataset(cfg.data, 0)
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        gan = build_gan(cfg, data.sample_shape, CPU)
        batches = BatchStream(data, cfg.trainer.batch_size, cfg.trainer.n_critic, seed)
        out.append((gan, batches, torch.Generator().manual_seed(1000 + seed)))
    return out


def real_batches(streams):
    return [[x for x, _ in stream.next()] for stream in streams]


DIGITS = ["trainer.batch_size=16", "generator.width=8", "discriminator.width=8"]  # the digits DCGAN, batch norm


@pytest.mark.parametrize("overrides", [
    RING, [*RING, "discriminator=maxout", "discriminator.width=16"], [*RING, "loss=hinge", "trainer.n_critic=2"],
    [*RING, "loss=label_smoothing"], DIGITS],
    ids=["ring-mlp", "maxout", "hinge-n_critic-2", "label-smoothing", "digits-dcgan-batch-norm"])
def test_each_member_of_a_stack_trains_as_its_solo_run_for_five_steps(overrides):
    cfg = make_cfg(*overrides)
    solo, stacked = members(cfg), members(cfg)
    stack = StackedStep([gan for gan, _, _ in stacked], [rng for _, _, rng in stacked], CPU)
    stack_stats = [stack(real_batches([b for _, b, _ in stacked]), step) for step in range(5)]
    for k, (gan, batches, rng) in enumerate(solo):
        step = GANStep(gan, CPU, rng=rng)
        solo_stats = [step([(x, None) for x in real_batches([batches])[0]], i) for i in range(5)]
        for net, stacked_net in ((gan.generator, stack.generator), (gan.discriminator, stack.discriminator)):
            member = stacked_net.member_state(k)
            for name, weight in net.state_dict().items():  # weights, running statistics, spectral norm's vectors
                torch.testing.assert_close(member[name], weight, rtol=1e-5, atol=1e-6, msg=f"seed {SEEDS[k]} {name}")
        torch.testing.assert_close(torch.stack(stack_stats)[:, k], torch.stack(solo_stats), rtol=1e-4, atol=1e-5)


def test_a_member_trains_the_same_whoever_its_neighbours_are():
    cfg = make_cfg(*RING)
    alone, among = members(cfg, (2,)), members(cfg, (7, 2, 9))
    stacks = [StackedStep([g for g, _, _ in m], [r for _, _, r in m], CPU) for m in (alone, among)]
    for step in range(3):
        for stack, m in zip(stacks, (alone, among)):
            stack(real_batches([b for _, b, _ in m]), step)
    a, b = stacks[0].generator.member_state(0), stacks[1].generator.member_state(1)
    assert all(torch.allclose(a[n], b[n], rtol=1e-5, atol=1e-6) for n in a)


def test_what_cannot_stack_is_named():
    dropout = make_cfg(*DIGITS, "discriminator.dropout=0.3")
    data = load_dataset(dropout.data, 0)
    gans = [build_gan(dropout, data.sample_shape, CPU) for _ in range(2)]
    assert "the discriminator has dropout" in why_not_stackable(gans)
    spectral = make_cfg(*DIGITS, "discriminator.norm=spectral")  # its power iteration writes with out=
    gans = [build_gan(spectral, data.sample_shape, CPU) for _ in range(2)]
    assert "the discriminator DCGANDiscriminator fails under torch.func.vmap (Batching rule not implemented for " \
           "aten::div.out" in why_not_stackable(gans)
    wgan = make_cfg(*RING, "loss=wgan_gp", "discriminator.norm=layer")
    points = load_dataset(wgan.data, 0)
    assert "gradient penalty" in why_not_stackable([build_gan(wgan, points.sample_shape, CPU) for _ in range(2)])
    ring = make_cfg(*RING)
    two = [build_gan(ring, points.sample_shape, CPU), build_gan(make_cfg(*RING, "optim.lr=1e-3"), points.sample_shape, CPU)]
    assert "optimiser settings differ" in why_not_stackable(two)
    with pytest.raises(ValueError, match="cannot train as one stack: the members' optimiser settings differ"):
        StackedStep(two, [torch.Generator(), torch.Generator()], CPU)
