"""Time per member's G step: K GANs stacked into one computation (training/stack.py: hand-stacked layers
where they are known, else vmap; and always vmap, for comparison) against the same K GANs stepped one after
another, on one thread, interleaved round by round in one run; each figure's share of the processor's
single-thread matmul peak in its precision (float32, or bf16 where the row says), measured in the same run.

    python benchmarks/stacked.py [--rounds 5] [--ks 1,2,4,8,16]

One thread each way, so the ratio is what a stack gains per core: K separate processes on K cores
each take one solo step's time per member (when the cores are not shared), as the sequential solo
steps here do. Networks: the ring MLP (ganlab's default mlp on ring8, batch 64), PacGAN's (a 4 x 400
MLP G, a 3 x 200 maxout D of 5 pieces, batch 100), the default digits DCGAN (batch norm, batch 64) and the
Fashion-MNIST DCGAN of preset=cpu (28 x 28, batch 64, bf16 where the CPU has bf16 instructions; `apt-get
install -y dataset-fashion-mnist`), each in its trainer.precision, solo and stacked alike (a stack runs
autocast's casts inside vmap too: training/precision.py).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ganlab.parts.data import DatasetNotFoundError, load_dataset
from ganlab.config.schema import compose_train
from ganlab.training.batches import BatchStream
from ganlab.training.cost import processor
from ganlab.training.job import build_gan
from ganlab.training.precision import resolve_precision
from ganlab.training.stack import StackedStep
from ganlab.training.step import GANStep


CPU = torch.device("cpu")
NETWORKS = {
    "ring MLP": ["data=ring8", "data.n_samples=20000", "generator=mlp", "discriminator=mlp", "trainer.batch_size=64"],
    "PacGAN's": ["data=ring8", "data.n_samples=20000", "generator=mlp", "generator.width=400", "generator.depth=4",
                 "discriminator=maxout", "trainer.batch_size=100"],
    "PacGAN's, bf16": ["data=ring8", "data.n_samples=20000", "generator=mlp", "generator.width=400",
                       "generator.depth=4", "discriminator=maxout", "trainer.batch_size=100", "trainer.precision=bf16"],
    "digits DCGAN": ["trainer.batch_size=64"],
    "digits DCGAN, bf16": ["trainer.batch_size=64", "trainer.precision=bf16"],
    "Fashion-MNIST DCGAN": ["data=fashion_mnist", "data.limit=2000", "preset=cpu"],  # skipped without the data
}


def matmul_peak(dtype: torch.dtype = torch.float32, seconds: float = 1.0) -> float:
    """Single-thread matmul FLOP/s (1024 x 1024) in `dtype`."""
    a, b = torch.randn(1024, 1024, dtype=dtype), torch.randn(1024, 1024, dtype=dtype)
    a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 1024 ** 3 * n / (time.perf_counter() - start)


def precision(overrides: list[str]) -> str:
    """The networks' trainer.precision on this CPU (32 or bf16)."""
    return resolve_precision(compose_train(*overrides).trainer.precision, CPU)


def build(overrides: list[str], k: int):
    cfg = compose_train(*overrides)
    data = load_dataset(cfg.data, 0)
    gans, streams, rngs = [], [], []
    for seed in range(k):
        torch.manual_seed(seed)
        gans.append(build_gan(cfg, data.sample_shape, CPU))
        streams.append(BatchStream(data, cfg.trainer.batch_size, 1, seed))
        rngs.append(torch.Generator().manual_seed(seed))
    return gans, streams, rngs


def reals(stream: BatchStream) -> list[tuple[torch.Tensor, None]]:
    if stream.steps_left() == 0:
        stream.end_epoch()
    return stream.next()


def timed(step, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        step(i)
    return (time.perf_counter() - start) / n


def flops_of_one_step(overrides: list[str]) -> float:
    gans, streams, rngs = build(overrides, 1)
    solo = GANStep(gans[0], CPU, precision(overrides), rng=rngs[0])
    with FlopCounterMode(display=False) as counter:
        solo(reals(streams[0]), 0)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ks", default="1,2,4,8,16")
    parser.add_argument("--steps", type=int, default=5, help="G steps timed per round and way")
    args = parser.parse_args()
    torch.set_num_threads(1)
    peaks = {"32": matmul_peak(), "bf16": matmul_peak(torch.bfloat16)}
    print(f"processor: {processor()}; torch {torch.__version__}, 1 thread; matmul peak: float32 "
          f"{peaks['32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")
    print(f"{'networks':25} {'K':>3} {'solo ms':>8} {'stacked ms':>10} {'ratio':>6} {'solo peak':>9} "
          f"{'stack peak':>10} {'vmap ms':>8} {'ratio':>6}   (per member's G step, medians of {args.rounds} "
          f"interleaved rounds)")
    for name, overrides in NETWORKS.items():
        try:
            flops = flops_of_one_step(overrides)
        except DatasetNotFoundError as e:
            print(f"{name}: skipped ({str(e).splitlines()[0][:100]})")
            continue
        mode = precision(overrides)
        peak = peaks[mode]
        if mode not in name.split(", ") and mode != "32":
            name += f", {mode}"
        for k in map(int, args.ks.split(",")):
            gans, streams, rngs = build(overrides, k)
            solos = [GANStep(g, CPU, mode, rng=r) for g, r in zip(gans, rngs)]
            gans2, streams2, rngs2 = build(overrides, k)
            stack = StackedStep(gans2, rngs2, CPU, mode)
            gans3, streams3, rngs3 = build(overrides, k)
            vmapped = StackedStep(gans3, rngs3, CPU, mode, fast=False)
            ways = {"solo": lambda i: [s(reals(b), i) for s, b in zip(solos, streams)],
                    "stack": lambda i: stack([reals(b) for b in streams2], i),
                    "vmap": lambda i: vmapped([reals(b) for b in streams3], i)}
            times = {way: [] for way in ways}
            for way, step in ways.items():
                step(0)  # warm-up
            for _ in range(args.rounds):
                for way, step in ways.items():
                    times[way].append(timed(step, args.steps) / k)
            s, t, v = (statistics.median(times[way]) for way in ways)
            print(f"{name:25} {k:>3} {1e3 * s:>8.2f} {1e3 * t:>10.2f} {s / t:>5.2f}x {flops / s / peak:>8.0%} "
                  f"{flops / t / peak:>9.0%} {1e3 * v:>8.2f} {s / v:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()
