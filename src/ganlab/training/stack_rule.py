"""Whether runs of one config can share a stack, and (trainer.stack=auto) what stack size pays for them on this
processor: members built as the runs build them, checked (training/stack.py's why_not_stackable) and timed,
solo against stacked G steps, interleaved."""

from __future__ import annotations

import statistics
import time
from typing import Optional

import torch
from omegaconf import DictConfig

from ganlab.config import is_conditional
from ganlab.record.checkpoints import sample_shape
from ganlab.training.cost import processor
from ganlab.training.job import build_gan, build_gan_step, resolve_device
from ganlab.training.stack import StackedStep, why_not_stackable
from ganlab.training.step import GANStep

AUTO_LARGEST = 8  # the largest stack trainer.stack=auto measures
PAYS = 1.15  # auto stacks when a stack trains a seed at least this much faster per G step than a solo run
COMPUTE_BOUND = 0.5  # seconds: a solo G step this long is all arithmetic (benchmarks/stacked.py: stacks pay only
# where a step's overhead counts; the Fashion-MNIST DCGAN's 0.12 s step at 86% of the matmul peak gains nothing)


def cannot_stack(cfg: DictConfig) -> Optional[str]:
    """Why runs of `cfg` cannot share a stack (None: they can), from two members built as the runs build them."""
    try:
        with torch.random.fork_rng(devices=[]):
            _, steps = _members(cfg, 2)
        return why_not_stackable([step.gan for step in steps], steps)
    except Exception as e:  # a user's part that cannot be built here: each job alone, as before
        return f"not checked: {e.__class__.__name__}: {str(e).splitlines()[0][:120]}"


STAND_IN_CLASSES = 10  # a conditional config's class count, for the check and the timing (the data's is unread)


def _members(cfg: DictConfig, k: int) -> tuple[torch.device, list[GANStep]]:
    """K GAN steps of `cfg` as its runs build them (noise streams of their own)."""
    device, shape = resolve_device(cfg.trainer.device), sample_shape(cfg)
    n_classes = STAND_IN_CLASSES if is_conditional(cfg) else 0
    return device, [build_gan_step(cfg, build_gan(cfg, shape, device, n_classes), device, torch.Generator().manual_seed(i))
                    for i in range(k)]


def measured_stack(cfg: DictConfig, n_jobs: int, threads: Optional[int] = None) -> tuple[int, str]:
    """trainer.stack=auto: the stack size for `n_jobs` runs of `cfg` (at most AUTO_LARGEST; 1 when a stack
    cannot be built or does not train a seed PAYS times as fast), and why: solo and stacked G steps on
    random batches of the data's shape, timed interleaved on this processor with `threads` threads."""
    k = min(n_jobs, AUTO_LARGEST)
    if k < 2:
        return 1, "a single job"
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(threads or saved)
        with torch.random.fork_rng(devices=[]):
            return _measured(cfg, k)
    except Exception as e:  # a user's part that cannot be built here, say: each job alone, as before
        return 1, f"not measured: {e.__class__.__name__}: {str(e).splitlines()[0][:120]}"
    finally:
        torch.set_num_threads(saved)


def _measured(cfg: DictConfig, k: int) -> tuple[int, str]:
    device, steps = _members(cfg, k + 1)
    reason = why_not_stackable([step.gan for step in steps[1:]], steps[1:])
    if reason:
        return 1, reason
    t = cfg.trainer
    stack = StackedStep([step.gan for step in steps[1:]], [step.rng for step in steps[1:]], device, t.precision,
                        regularisers=[step.regulariser for step in steps[1:]])
    real = torch.rand(t.n_critic, t.batch_size, *sample_shape(cfg), device=device) * 2 - 1
    classes = torch.randint(STAND_IN_CLASSES, (t.n_critic, t.batch_size), device=device) if is_conditional(cfg) else \
        [None] * t.n_critic
    batches = list(zip(real, classes))

    def seconds(work, repeats: int = 1) -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            work()
        return (time.perf_counter() - start) / repeats

    solo_step, stacked_step = (lambda: steps[0](batches, 0)), (lambda: stack([batches] * k, 0))
    solo_step()  # warm-up
    if (solo := seconds(solo_step)) > COMPUTE_BOUND:
        return 1, f"a solo G step takes {solo:.2f} s on {processor(device.type)}: compute-bound, no stack pays"
    stacked_step()
    rounds = [(seconds(solo_step), seconds(stacked_step) / k) for _ in range(5)]
    speedup = statistics.median(s for s, _ in rounds) / statistics.median(m for _, m in rounds)
    if speedup < PAYS:
        return 1, f"a stack of {k} measured {speedup:.2f}x per seed on {processor(device.type)}, under {PAYS}x"
    return k, f"measured {speedup:.2f}x per seed on {processor(device.type)}"
