"""What a run will cost, said before the work: its G steps and evaluations, on which processor and in
which precision, then an estimate in minutes from its first timed steps and its first evaluation."""

from __future__ import annotations

import functools
import platform
import time

import torch

TIMED_STEPS = 20  # G steps timed before the estimate is said


@functools.lru_cache(maxsize=None)
def processor(device_type: str = "cpu") -> str:
    """The processor's name, as figures beside it must say (an AMD EPYC without bf16, an Intel Xeon with AMX)."""
    if device_type == "cuda":
        return torch.cuda.get_device_name()
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        info = ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    bf16 = "AMX-BF16" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags else "no bf16 instructions"
    return f"{name or platform.processor() or 'an unknown CPU'} ({bf16})"


def evaluations(total_steps: int, steps_per_epoch: int, every_epochs: int) -> int:
    """How many quality evaluations a run of `total_steps` makes: one at each end of an epoch that every_epochs
    divides, before the last, and one at the end (the trainer's end_of_epoch)."""
    full, partial = divmod(total_steps, max(1, steps_per_epoch))
    return (full if partial else full - 1) // every_epochs + 1


def plan(total_steps: int, steps_per_epoch: int, n_critic: int, n_evaluations: int, device: torch.device,
         threads: int, precision: str) -> str:
    epoch = f"an epoch is {steps_per_epoch:,} G steps" + (f" of {n_critic} D steps each" if n_critic > 1 else "")
    return (f"the work: {total_steps:,} G steps ({epoch}), {n_evaluations} quality evaluation"
            f"{'s' if n_evaluations != 1 else ''}, on {processor(device.type)}, {threads} torch threads, "
            f"precision {precision}")


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def estimate(seconds_per_step: float, steps_left: int, n_evaluations: int, seconds_per_evaluation: float | None) -> str:
    """The time left, in words: G steps at the measured pace, and the evaluations once one has been timed."""
    training = seconds_per_step * steps_left
    if seconds_per_evaluation is None:
        return (f"about {duration(training)} of G steps left ({1000 * seconds_per_step:.3g} ms each), plus "
                f"{n_evaluations} evaluation{'s' if n_evaluations != 1 else ''} (timed at the first)")
    total = training + seconds_per_evaluation * n_evaluations
    return (f"about {duration(total)} left: G steps at {1000 * seconds_per_step:.3g} ms each, {n_evaluations} "
            f"evaluation{'s' if n_evaluations != 1 else ''} at {seconds_per_evaluation:.2g} s each")


class Pace:
    """A run's pace measured as it goes, said twice: after TIMED_STEPS G steps (less the time evaluations
    took), and after its first evaluation, with the time left."""

    def __init__(self, step: int, evaluation_seconds: float, total_steps: int, n_evaluations: int):
        self.start, self.clock, self.evaluation_seconds = step, time.perf_counter(), evaluation_seconds
        self.total_steps, self.n_evaluations, self.evaluated = total_steps, n_evaluations, 0
        self.step_seconds: float | None = None

    def after_step(self, step: int, evaluation_seconds: float) -> str | None:
        if self.step_seconds is not None or step - self.start != TIMED_STEPS:
            return None
        spent = time.perf_counter() - self.clock - (evaluation_seconds - self.evaluation_seconds)
        self.step_seconds = spent / TIMED_STEPS
        return estimate(self.step_seconds, self.total_steps - step, self.n_evaluations, None)

    def after_evaluation(self, step: int, seconds: float) -> str | None:
        self.evaluated += 1
        left = self.n_evaluations - self.evaluated
        if self.evaluated != 1 or self.step_seconds is None or left < 1:
            return None
        return estimate(self.step_seconds, self.total_steps - step, left, seconds)
