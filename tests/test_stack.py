"""A stack: K GANs of one architecture trained as one vmapped computation, each member as its solo run."""

from __future__ import annotations

import pytest
import torch

from ganlab.config import is_conditional
from ganlab.parts.data import load_dataset
from ganlab.parts.losses import LazyRegulariser
from ganlab.parts.registry import AUGMENTATIONS, LOSSES
from ganlab.training.batches import BatchStream
from ganlab.training.job import build_gan
from ganlab.training.stack import StackedStep, why_not_stackable
from ganlab.training.step import GAN, GANStep
from tests.conftest import REPO, TINY_POINTS, make_cfg, run_cli

CPU = torch.device("cpu")
SEEDS = (1, 2, 3)
RING = [*TINY_POINTS, "data.n_samples=1024", "trainer.batch_size=64"]  # 16 steps an epoch


def members(cfg, seeds=SEEDS):
    """Each seed's GAN, built as a solo run builds it, with its batch stream and its noise stream."""
    data = load_dataset(cfg.data, 0)
    n_classes = data.n_classes if is_conditional(cfg) else 0
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        gan = build_gan(cfg, data.sample_shape, CPU, n_classes)
        batches = BatchStream(data, cfg.trainer.batch_size, cfg.trainer.n_critic, seed, labelled=bool(n_classes))
        out.append((gan, batches, torch.Generator().manual_seed(1000 + seed)))
    return out


def real_batches(streams):
    for stream in streams:
        if stream.steps_left() == 0:
            stream.end_epoch()
    return [stream.next() for stream in streams]


def before_batch_norm(net):
    """The biases of layers that feed a batch norm (and its running mean): their gradient is zero but for rounding, and Adam scales
    that noise up to steps of lr, so they follow no kernel's rounding but their own (as with another thread
    count) and change nothing the network computes (the batch norm subtracts them)."""
    layers = [(name, m) for name, m in net.named_modules()]
    return {key for (name, m), (norm, after) in zip(layers, layers[1:])
            if isinstance(after, torch.nn.modules.batchnorm._BatchNorm) and getattr(m, "bias", None) is not None
            for key in (f"{name}.bias", f"{norm}.running_mean")}  # the running mean follows that bias


DIGITS = ["trainer.batch_size=16", "generator.width=8", "discriminator.width=8"]  # the digits DCGAN, batch norm


@pytest.mark.parametrize("overrides", [
    RING, [*RING, "discriminator=maxout", "discriminator.width=16"], [*RING, "loss=hinge", "trainer.n_critic=2"],
    [*RING, "loss=label_smoothing"], DIGITS,
    [*RING, "generator.norm=batch", "discriminator=maxout", "discriminator.width=16", "discriminator.pack=2"],
    [*RING, "discriminator.norm=layer", "discriminator.minibatch_std=true"],
    [*RING, "loss=wgan_gp", "discriminator.norm=layer", "discriminator.pack=2"],
    [*RING, "loss.r1_gamma=1", "loss.r2_gamma=0.5", "loss.reg_every=2", "discriminator=maxout", "discriminator.width=16"],
    [*RING, "discriminator=maxout", "discriminator.width=16", "discriminator.norm=spectral", "loss=hinge"],
    [*DIGITS, "generator.conditioning=cbn", "discriminator.conditioning=projection"],
    [*DIGITS, "generator.conditioning=concat", "discriminator.conditioning=projection", "loss.r1_gamma=1",
     "loss.reg_every=2"],
    [*DIGITS, "augment=diffaug", "augment.p=0.5", "augment.adaptive=true", "augment.ada_interval=1",
     "augment.ada_kimg=0.1"],
    [*DIGITS, "discriminator.norm=spectral"],
    [*DIGITS, "generator=resnet", "discriminator=resnet"],
    [*DIGITS, "discriminator.dropout=0.3", "loss.r1_gamma=1", "loss.reg_every=2"],
    [*DIGITS, "generator.conditioning=cbn", "discriminator.conditioning=acgan"],
    [*RING, "loss=wgan_gp", "discriminator.norm=none", "discriminator.dropout=0.3", "generator.norm=batch",
     "generator.dropout=0.2"]],
    ids=["ring-mlp", "maxout", "hinge-n_critic-2", "label-smoothing", "digits-dcgan-batch-norm",
         "pacgan2-batch-norm-g", "layer-norm-minibatch-std", "wgan-gp-packed", "lazy-r1-r2", "maxout-spectral-norm",
         "conditional-cbn-projection", "conditional-concat-r1", "diffaugment-ada", "dcgan-spectral-norm",
         "resnet-spectral-norm", "dcgan-dropout-r1", "conditional-acgan", "mlp-dropout-g-and-d-wgan-gp"])
def test_each_member_of_a_stack_trains_as_its_solo_run_for_five_steps(overrides):
    cfg = make_cfg(*overrides)
    solo, stacked = members(cfg), members(cfg)
    regulariser = LazyRegulariser(*(LOSSES.setting(cfg.loss, k) for k in ("r1_gamma", "r2_gamma", "reg_every")))
    augment = lambda: AUGMENTATIONS.build(cfg.augment, cfg.trainer.batch_size)  # noqa: E731 (each its own p)
    augments = [augment() for _ in stacked]
    stack = StackedStep([gan for gan, _, _ in stacked], [rng for _, _, rng in stacked], CPU,
                        regularisers=[regulariser] * len(stacked), augments=augments)
    stack_stats = [stack(real_batches([b for _, b, _ in stacked]), step) for step in range(5)]
    # the MLPs (and maxout) run hand-stacked layers; the DCGAN (conditional or not) runs under vmap
    assert (stack.generator.fast is not None) == (cfg.generator.name == "mlp")
    for k, (gan, batches, rng) in enumerate(solo):
        step = GANStep(gan, CPU, regulariser=regulariser, augment=augment(), rng=rng)
        solo_stats = [step(real_batches([batches])[0], i) for i in range(5)]
        for net, stacked_net in ((gan.generator, stack.generator), (gan.discriminator, stack.discriminator)):
            member = stacked_net.member_state(k)
            # ResNet's G sums two convolutions' biases into its next batch norm: rounding noise that Adam scales up
            # to lr-sized steps (before_batch_norm), up to 5 x 2e-4 x Adam's early-step factor in 5 steps
            atol = 3e-3 if net is gan.generator and cfg.generator.name == "resnet" else 1e-6
            for name, weight in net.state_dict().items():  # weights, running statistics, spectral norm's vectors
                if name in before_batch_norm(net):
                    continue
                torch.testing.assert_close(member[name], weight, rtol=1e-5, atol=atol, msg=f"seed {SEEDS[k]} {name}")
        torch.testing.assert_close(torch.stack(stack_stats)[:, k], torch.stack(solo_stats), rtol=1e-4, atol=1e-5)
        if step.augment:  # ADA's p moved as the solo run's did
            assert augments[k].p == pytest.approx(step.augment.p) and augments[k].p != cfg.augment.p


@pytest.mark.parametrize("overrides", [
    [*RING, "generator.norm=batch", "discriminator=maxout", "discriminator.width=16"], DIGITS,
    [*DIGITS, "generator=resnet", "discriminator=resnet"],
    [*DIGITS, "generator.conditioning=cbn", "discriminator.conditioning=acgan"]],
    ids=["hand-stacked-maxout", "digits-dcgan-vmap", "resnet-spectral-norm-vmap", "conditional-acgan-vmap"])
def test_members_train_in_bf16_as_their_solo_runs_within_its_rounding(overrides):
    """Hand-stacked layers run under autocast; vmapped networks repeat its casts (autocast does not reach there)."""
    cfg = make_cfg(*overrides)
    solo, stacked = members(cfg), members(cfg)
    if cfg.generator.name != "mlp":  # a vmapped forward computes what the solo one does under autocast
        fresh = [gan for gan, _, _ in members(cfg)]
        stack = StackedStep(fresh, [torch.Generator() for _ in fresh], CPU, "bf16")
        z, y = torch.randn(len(fresh), 4, stack.generator.z_dim), torch.zeros(len(fresh), 4, dtype=torch.long)
        y = y if is_conditional(cfg) else None
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
            fakes = stack.generator(z, y)
            solo_fakes = fresh[1].generator(*((z[1],) if y is None else (z[1], y[1])))
        with torch.no_grad():
            float32 = fresh[1].generator(*((z[1],) if y is None else (z[1], y[1])))
        # batched kernels round otherwise: by about as much as bf16 rounds against float32 (up to twice that)
        assert fakes.dtype == solo_fakes.dtype == torch.bfloat16
        assert (fakes[1] - solo_fakes).abs().max() <= 2 * (float32 - solo_fakes).abs().max()
    stack = StackedStep([gan for gan, _, _ in stacked], [rng for _, _, rng in stacked], CPU, "bf16")
    for step in range(5):
        stack(real_batches([b for _, b, _ in stacked]), step)
    atol = 3e-3 if cfg.generator.name == "resnet" else 1e-3  # ResNet's: as in float32 (spectral norm's vectors too)
    for k, (gan, batches, rng) in enumerate(solo):
        step = GANStep(gan, CPU, "bf16", rng=rng)
        for i in range(5):
            step(real_batches([batches])[0], i)
        for net, stacked_net in ((gan.generator, stack.generator), (gan.discriminator, stack.discriminator)):
            member = stacked_net.member_state(k)
            for name, weight in net.state_dict().items():  # bf16 keeps 8 bits: kernels round differently
                if name not in before_batch_norm(net):
                    torch.testing.assert_close(member[name], weight, rtol=2e-3, atol=atol, msg=f"seed {SEEDS[k]} {name}")


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
    data = load_dataset(make_cfg(*DIGITS).data, 0)
    gans = [GAN(g.generator, torch.nn.Sequential(g.discriminator, torch.nn.Dropout(0.3)), g.loss, g.opt_g, g.opt_d)
            for g in (build_gan(make_cfg(*DIGITS), data.sample_shape, CPU) for _ in range(2))]
    assert "the discriminator has a dropout layer of its own" in why_not_stackable(gans)  # a user's: torch's stream
    class Branching(torch.nn.Module):  # a user's D whose forward pass branches on its data
        def __init__(self, d):
            super().__init__()
            self.d = d

        def forward(self, x):
            return self.d(x) if x.sum() > 0 else -self.d(x)

    gans = [GAN(g.generator, Branching(g.discriminator), g.loss, g.opt_g, g.opt_d)
            for g in (build_gan(make_cfg(*DIGITS), data.sample_shape, CPU) for _ in range(2))]
    assert "the discriminator Branching fails under torch.func.vmap (" in why_not_stackable(gans)
    dropping = members(make_cfg(*DIGITS, "discriminator.dropout=0.3"), (1, 2))  # R1 in one: its passes draw masks
    assert why_not_stackable([g for g, _, _ in dropping], [GANStep(g, CPU, regulariser=LazyRegulariser(gamma), rng=r)
                                                          for (g, _, r), gamma in zip(dropping, (0.0, 1.0))]) == \
        "some members take R1/R2 passes that others skip, and those passes draw dropout masks"
    dcgan = members(make_cfg(*DIGITS), (1, 2))
    assert why_not_stackable([g for g, _, _ in dcgan], [GANStep(g, CPU, rng=None) for g, _, _ in dcgan]) == \
        "the run cannot stack: its z does not come from a stream of its own"
    points = load_dataset(make_cfg(*RING).data, 0)
    assert why_not_stackable([build_gan(make_cfg(*RING, f"loss={loss}"), points.sample_shape, CPU)
                              for loss in ("hinge", "bce_logits")]) == "the members' losses differ (in more than their numbers)"
    ring = make_cfg(*RING)
    two = [build_gan(ring, points.sample_shape, CPU),
           build_gan(make_cfg(*RING, "optim.betas=[0.9,0.99]"), points.sample_shape, CPU)]
    with pytest.raises(ValueError, match=r"cannot train as one stack: the members' optimiser settings \(other than the "
                                         r"learning rate\) differ"):
        StackedStep(two, [torch.Generator(), torch.Generator()], CPU)


OWN_NUMBERS = {  # each member's own settings: (lr, d_lr_mult), targets, penalty weights
    "adam-lr": [[f"optim.lr={lr}", f"optim.d_lr_mult={mult}"] for lr, mult in ((1e-4, 1.0), (3e-4, 2.0), (1e-3, 0.5))],
    "rmsprop-lr": [["optim=rmsprop", f"optim.lr={lr}"] for lr in (5e-5, 1e-4, 3e-4)],
    "label-targets": [["loss=label_smoothing", f"loss.real_target={t}"] for t in (0.8, 0.9, 1.0)],
    "r1-gammas": [["loss.reg_every=2", f"loss.r1_gamma={g}"] for g in (0.0, 1.0, 5.0)],
    "gp-weights": [["loss=wgan_gp", "discriminator.norm=layer", f"loss.gp_weight={w}"] for w in (1.0, 5.0, 10.0)],
    "rpgan-pairs": [["loss=rpgan", f"loss.r1_gamma={g}", f"loss.r2_gamma={g}"] for g in (0.0, 0.5, 1.0)],
    "dropout-rates": [[f"discriminator.dropout={p}", f"generator.dropout={p / 2}"] for p in (0.1, 0.3, 0.5)],
}


@pytest.mark.parametrize("numbers", OWN_NUMBERS.values(), ids=OWN_NUMBERS.keys())
def test_members_with_their_own_numbers_train_as_their_solo_runs(numbers):
    cfgs = [make_cfg(*RING, *own) for own in numbers]
    built = [members(cfg, (seed,))[0] for cfg, seed in zip(cfgs, SEEDS)]
    regularisers = [LazyRegulariser(*(LOSSES.setting(c.loss, k) for k in ("r1_gamma", "r2_gamma", "reg_every")))
                    for c in cfgs]
    stack = StackedStep([gan for gan, _, _ in built], [rng for _, _, rng in built], CPU, regularisers=regularisers)
    for step in range(5):
        stack(real_batches([b for _, b, _ in built]), step)
    for k, (cfg, seed) in enumerate(zip(cfgs, SEEDS)):
        gan, batches, rng = members(cfg, (seed,))[0]
        solo = GANStep(gan, CPU, regulariser=regularisers[k], rng=rng)
        for i in range(5):
            solo(real_batches([batches])[0], i)
        for net, stacked_net in ((gan.generator, stack.generator), (gan.discriminator, stack.discriminator)):
            member = stacked_net.member_state(k)
            for name, weight in net.state_dict().items():
                torch.testing.assert_close(member[name], weight, rtol=1e-5, atol=1e-6, msg=f"seed {seed} {name}")


# ------------------------------------------------------------------ stacked runs: folders, resume, divergence
STACKED = [*TINY_POINTS, "trainer.stack=3"]


def member_jobs(tmp_path, name, seeds=SEEDS, *overrides, resume=False):
    """One Job a seed in tmp_path/name/seed-S (new folders, or resumed from their last.pt)."""
    from ganlab.record.checkpoints import Checkpoint
    from ganlab.training.job import Job

    jobs = []
    for seed in seeds:
        folder = tmp_path / name / f"seed-{seed}"
        state = Checkpoint.read(folder / "checkpoints" / "last.pt") if resume else None
        jobs.append(Job(make_cfg(*STACKED, f"seed={seed}", *overrides), folder, resume=state))
    return jobs


def weights(folder):
    state = torch.load(folder / "checkpoints" / "last.pt", weights_only=True)
    return {f"{part}.{k}": v for part in ("generator", "discriminator", "generator_ema") for k, v in state.get(part, {}).items()}


def test_a_stack_writes_each_members_folder_as_its_solo_run_would(tmp_path):
    from ganlab.record.catalog import load_run
    from ganlab.training.job import run_job
    from ganlab.training.resume import resume_run
    from ganlab.training.stacked_runs import train_members

    # EMA; dropout in G and D, its masks from each member's own stream
    own = ("trainer.ema_decay=0.9", "discriminator.dropout=0.3", "generator.dropout=0.2")
    assert train_members(member_jobs(tmp_path, "stack", SEEDS, *own), jobs=1) == 0
    run_job(make_cfg(*STACKED, "seed=2", *own), tmp_path / "solo")
    stacked, solo = tmp_path / "stack" / "seed-2", tmp_path / "solo"
    assert sorted(p.name for p in stacked.rglob("*")) == sorted(p.name for p in solo.rglob("*"))
    a, b = weights(stacked), weights(solo)
    assert a.keys() == b.keys()
    for name in a:  # 16 G steps: equal within float rounding (the stack's kernels sum in another order)
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)
    run = load_run(stacked)
    assert run.status == "completed" and run.summary["stack"] == {"members": ["seed-1", "seed-2", "seed-3"], "index": 1}
    rows = [(tmp_path / f).joinpath("metrics.csv").read_text().splitlines() for f in ("stack/seed-2", "solo")]
    assert [r.split(",")[:4] for r in rows[0]] == [r.split(",")[:4] for r in rows[1]]  # step, epoch, loss_d, loss_g (6 digits)
    # a member's checkpoint holds its own weights, not the stack's: as small as the solo run's
    assert (stacked / "checkpoints" / "last.pt").stat().st_size < 1.1 * (solo / "checkpoints" / "last.pt").stat().st_size
    # and it goes on alone as any run does: `ganlab resume` extends it as it extends its solo run
    for folder in (stacked, solo):
        assert resume_run(folder, ["trainer.epochs=3"])["status"] == "completed"
    a, b = weights(stacked), weights(solo)
    assert all(torch.allclose(a[n], b[n], rtol=1e-4, atol=1e-5) for n in a)


def test_a_stack_stopped_mid_epoch_resumes_bit_for_bit(tmp_path):
    from ganlab.training.stacked_runs import train_members

    quick = ["metrics.enabled=false", "trainer.steps=16", "generator.dropout=0.2"]
    train_members(member_jobs(tmp_path, "whole", SEEDS, *quick), jobs=1)
    train_members(member_jobs(tmp_path, "parts", SEEDS, *quick, "trainer.steps=5"), jobs=1)  # 8 steps an epoch
    train_members(member_jobs(tmp_path, "parts", SEEDS, *quick, resume=True), jobs=1)
    for seed in SEEDS:
        a, b = (weights(tmp_path / name / f"seed-{seed}") for name in ("whole", "parts"))
        assert all(torch.equal(a[n], b[n]) for n in a), seed
        opt = [torch.load(tmp_path / name / f"seed-{seed}" / "checkpoints" / "last.pt", weights_only=True)["opt_d"]
               for name in ("whole", "parts")]
        assert all(torch.equal(x, y) for i in opt[0]["state"] for x, y in
                   zip(opt[0]["state"][i].values(), opt[1]["state"][i].values()))


def test_a_diverging_member_is_frozen_while_the_others_go_on(tmp_path):
    from ganlab.record.catalog import load_run
    from ganlab.training.job import run_job
    from ganlab.training.stacked_runs import train_members

    jobs = member_jobs(tmp_path, "stack")
    with torch.no_grad():
        next(jobs[1].gan.generator.parameters()).fill_(float("nan"))  # seed 2 is non-finite from its first step
    assert train_members(jobs, jobs=1) == 1
    runs = [load_run(tmp_path / "stack" / f"seed-{s}") for s in SEEDS]
    assert [r.status for r in runs] == ["completed", "diverged", "completed"]
    assert "non-finite" in runs[1].summary["error"] and not (runs[1].path / "checkpoints" / "last.pt").exists()
    run_job(make_cfg(*STACKED, "seed=3"), tmp_path / "solo")
    a, b = weights(runs[2].path), weights(tmp_path / "solo")
    assert all(torch.allclose(a[n], b[n], rtol=1e-5, atol=1e-6) for n in a)


def sweep_of_stacks(sweep, *overrides):
    return run_cli("train", "-m", *TINY_POINTS, "seed=1,2,3,4", "trainer.stack=2", f"hydra.sweep.dir={sweep}", *overrides)


@pytest.mark.slow  # 24 s: a parallel sweep of 4 jobs as 2 stacks in worker processes; the default suite's study
# tests train their rounds as stacks through the same callback, in-process
def test_a_sweep_with_trainer_stack_trains_its_seeds_as_stacks(tmp_path):
    from ganlab.record.catalog import find_runs

    out = sweep_of_stacks(tmp_path / "sweep", "trainer.epochs=1", "metrics.enabled=false")  # scores: in-process test
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ganlab: 4 jobs as 2 stacks, 2 at a time" in out.stdout
    runs = find_runs(tmp_path / "sweep")
    assert [r.status for r in runs] == ["completed"] * 4
    assert [len(r.summary["stack"]["members"]) for r in runs] == [2] * 4
    stacks = {tuple(r.summary["stack"]["members"]) for r in runs}
    assert len(stacks) == 2 and sorted(n for s in stacks for n in s) == sorted(r.path.name for r in runs)
    assert all((r.path / "checkpoints" / "last.pt").is_file() and list((r.path / "samples").iterdir()) for r in runs)
    assert "(1 torch threads" in (runs[0].path / "train.log").read_text()  # two stacks at once on 2 cores


@pytest.mark.slow  # 90 s: two sweeps of 4 jobs, one stopped by SIGTERM and completed by `ganlab sweep --resume`
def test_a_sweep_of_stacks_stopped_by_sigterm_completes_in_place_bit_for_bit(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    longer = ["trainer.steps=400", "metrics.enabled=false", "trainer.checkpoint_minutes=0.01"]
    assert sweep_of_stacks(tmp_path / "whole", *longer).returncode == 0
    sweep = tmp_path / "stopped"
    process = subprocess.Popen([sys.executable, "-m", "ganlab.cli", "train", "-m", *TINY_POINTS, "seed=1,2,3,4",
                                "trainer.stack=2", f"hydra.sweep.dir={sweep}", *longer], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while len(list(sweep.glob("*/checkpoints/last.pt"))) < 4:
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-3000:]
    assert "continue it with: ganlab sweep" in err.strip().splitlines()[-1]
    done = run_cli("sweep", str(sweep), "--resume", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for a, b in zip(*(sorted(p.glob("*/checkpoints/last.pt")) for p in (tmp_path / "whole", sweep))):
        assert a.parent.parent.name == b.parent.parent.name
        wa, wb = weights(a.parent.parent), weights(b.parent.parent)
        assert all(torch.equal(wa[n], wb[n]) for n in wa), a


def test_trainer_stack_auto_measures_whether_a_stack_pays_and_says_so():
    import re

    from ganlab.training.stack_rule import measured_stack

    k, why = measured_stack(make_cfg(*STACKED), n_jobs=3, threads=1)
    assert re.fullmatch(r"(measured|a stack of 3 measured) \d+\.\d\dx per seed on .+\)(, under 1.15x)?", why), why
    assert (k == 3) == why.startswith("measured")
    assert measured_stack(make_cfg(*DIGITS, "trainer.precision=bf16"), n_jobs=4)[1].startswith(
        ("measured", "a stack of 4 measured"))  # the DCGAN stacks in bf16 too
    assert measured_stack(make_cfg(*STACKED), n_jobs=1) == (1, "a single job")


@pytest.mark.parametrize("value", ["0", "two"])
def test_a_bad_trainer_stack_is_refused_in_one_line(value):
    from ganlab.config import ConfigError, validate

    with pytest.raises(ConfigError, match=f"trainer.stack={value} must be a number >= 1 .* or auto"):
        validate(make_cfg(*STACKED[:-1], f"trainer.stack={value}"))


def test_a_stack_stopped_between_its_members_epoch_ends_resumes_in_step(tmp_path, monkeypatch):
    """A signal while the members close an epoch (grids, scores) checkpoints them all; the resumed stack closes
    the others' epochs and goes on as one that was never stopped."""
    from ganlab.training.stack import StackedTrainer
    from ganlab.training.trainer import Trainer
    from ganlab.training.stacked_runs import train_members

    quick = ["metrics.enabled=false", "trainer.epochs=3"]
    train_members(member_jobs(tmp_path, "whole", SEEDS, *quick), jobs=1)
    close = Trainer.close_epoch

    def stop_after_the_first_member(self):  # the signal arrives during member 1's epoch end of epoch 2
        close(self)
        if self.epoch == 2 and self.run.path.name == "seed-1":
            stacks[0].stop_signal = "SIGTERM"

    monkeypatch.setattr(Trainer, "close_epoch", stop_after_the_first_member)
    stacks = []
    monkeypatch.setattr(StackedTrainer, "fit", lambda self, fit=StackedTrainer.fit: (stacks.append(self), fit(self))[1])
    with pytest.raises(KeyboardInterrupt):
        train_members(member_jobs(tmp_path, "parts", SEEDS, *quick), jobs=1)
    monkeypatch.setattr(Trainer, "close_epoch", close)
    train_members(member_jobs(tmp_path, "parts", SEEDS, *quick, resume=True), jobs=1)
    for seed in SEEDS:
        a, b = (weights(tmp_path / name / f"seed-{seed}") for name in ("whole", "parts"))
        assert all(torch.equal(a[n], b[n]) for n in a), seed
        grids = [sorted(p.name for p in (tmp_path / name / f"seed-{seed}" / "samples").iterdir()) for name in ("whole", "parts")]
        assert grids[0] == grids[1] == ["epoch_0001.png", "epoch_0002.png", "epoch_0003.png"]


BRANCHING_D = """import torch.nn as nn


class BranchingD(nn.Module):  # a user's D whose forward pass branches on its data
    def __init__(self, sample_shape=(1, 8, 8), **dcgan_settings):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 1))

    def forward(self, x):
        return self.net(x) if x.sum() > 0 else -self.net(x)
"""


def test_runs_that_cannot_stack_train_one_a_process_saying_why(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from ganlab.training.stacked_runs import stack_groups

    (tmp_path / "branching_d.py").write_text(BRANCHING_D)
    monkeypatch.syspath_prepend(str(tmp_path))
    folders = []
    for seed in (1, 2, 3):  # three queued jobs of a sweep with trainer.stack=2: their folders hold their config
        folders.append(tmp_path / f"seed={seed}")
        (folders[-1] / ".hydra").mkdir(parents=True)
        cfg = make_cfg(*DIGITS, "trainer.stack=2", "+discriminator._target_=branching_d.BranchingD", f"seed={seed}")
        (folders[-1] / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    said = []
    assert stack_groups(folders, say=said.append) == [[f] for f in folders]
    assert len(said) == 1 and said[0].startswith(f"ganlab: 3 {cfg.name} jobs train one a process, not as stacks: the "
                                                 "discriminator BranchingD fails under torch.func.vmap (vmap: ")
    for f in folders[1:]:  # ganlab's own D, in bf16: stacks of 2
        (f / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(make_cfg(*DIGITS, "trainer.stack=2",
                                                                               "trainer.precision=bf16")))
    assert stack_groups(folders[1:], say=said.append) == [folders[1:]]
    from ganlab.training.job import run_job

    begun = [tmp_path / "alone" / f"seed-{seed}" for seed in (1, 2)]  # begun alone (trainer.stack=auto): not stacked
    for seed, folder in zip((1, 2), begun):
        run_job(make_cfg(*STACKED[:-1], "trainer.stack=auto", "trainer.steps=2", f"seed={seed}"), folder)
    assert stack_groups(begun, say=said.append) == []
    for f, rate in zip(folders, (0.0, 0.2, 0.4)):  # one without dropout, two with it at their own rates
        (f / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(make_cfg(*STACKED, f"discriminator.dropout={rate}")))
    assert stack_groups(folders, say=said.append) == [folders[:1], folders[1:]]


def test_a_sweeps_jobs_are_grouped_for_stacks_by_all_but_their_seed_and_shared_numbers():
    from ganlab.training.stacked_runs import group_key

    none = group_key(["seed=1", "discriminator.dropout=0.00", "optim.lr=1e-4"])
    assert none == group_key(["seed=2", "discriminator.dropout=0", "optim.lr=2e-4"])  # 0 however written: no layer
    dropping = group_key(["seed=1", "discriminator.dropout=0.3", "optim.lr=1e-4"])
    assert dropping != none and dropping == group_key(["seed=3", "discriminator.dropout=0.5", "optim.lr=1e-4"])
    assert group_key(["seed=1", "generator.width=32"]) != group_key(["seed=1", "generator.width=64"])
