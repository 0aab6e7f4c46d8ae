"""Images per second of ganlab's trainer against a plain hand-written PyTorch loop, measured side by
side in one run, with the same networks, loss, batch size and data; and against a loop in the
style of pytorch/examples' dcgan (a DataLoader over a dataset with per-image transforms).

    python benchmarks/throughput.py [--steps 120] [--batch-size 128] [--rounds 3] [--no-optins] [--compile]

ganlab runs with its default logging (a metrics.csv row every 10 steps), sampling (a grid every
epoch) and checkpointing (at the end) on; quality evaluation is measured separately. The opt-in
speed-ups (channels_last, bf16 autocast; torch.compile with --compile) are measured on top.

Every round runs every variant once, in the same order, and measures the float32 matmul peak, so a
busy machine slows a whole round rather than one variant: ratios are taken within each round and
reported as their median with the range over rounds. The FLOP rate of one default DCGAN step
(torch.utils.flop_counter) is set against the float32 matmul peak measured before and after the
same round (the higher, over 1024-3072 square matrices).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ganlab.config import compose_train
from ganlab.parts.data import load_dataset
from ganlab.training.job import build_gan, run_job

FASHION = Path("/usr/share/datasets/fashion-mnist")


def data_overrides(args) -> list[str]:
    """Fashion-MNIST at 28x28 when Debian's package is installed, else the bundled digits resized to 28."""
    n = args.batch_size * args.steps_per_epoch
    if FASHION.is_dir():
        return ["data=fashion_mnist", f"data.root={FASHION}", f"data.limit={n}"]
    return ["data=digits", "data.image_size=28"]


def plain_loop(cfg, x: torch.Tensor, steps: int, batch: int) -> float:
    """The loop a person writes by hand: no measurements, no logging, no files."""
    torch.manual_seed(0)
    gan = build_gan(cfg, tuple(x.shape[1:]), torch.device("cpu"))
    G, D, loss, opt_g, opt_d = gan.generator, gan.discriminator, gan.loss, gan.opt_g, gan.opt_d
    order, cursor = torch.randperm(len(x)), 0
    start = time.perf_counter()
    for _ in range(steps):
        if cursor + batch > len(order):
            order, cursor = torch.randperm(len(x)), 0
        real = x[order[cursor:cursor + batch]]
        cursor += batch
        fake = G(torch.randn(batch, G.z_dim))
        loss_d = loss.d_loss(D(real), D(fake.detach()))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        loss_g = loss.g_loss(D(fake))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)
    return time.perf_counter() - start


class PerImage(Dataset):
    """Like torchvision's MNIST: a PIL image per item, then per-image transforms."""

    def __init__(self, images: np.ndarray):
        self.images = images
        self.transform = transforms.Compose([transforms.Resize(28), transforms.ToTensor(),
                                             transforms.Normalize((0.5,), (0.5,))])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i], mode="L")), 0


def examples_loop(cfg, x: torch.Tensor, steps: int, batch: int) -> float:
    """pytorch/examples' dcgan: DataLoader with 2 workers, per-image transforms, .item() every step."""
    torch.manual_seed(0)
    images = ((x[:, 0] + 1) * 127.5).round().to(torch.uint8).numpy()
    loader = DataLoader(PerImage(images), batch_size=batch, shuffle=True, num_workers=2, drop_last=True)
    gan = build_gan(cfg, tuple(x.shape[1:]), torch.device("cpu"))
    G, D, loss, opt_g, opt_d = gan.generator, gan.discriminator, gan.loss, gan.opt_g, gan.opt_d
    done, start = 0, time.perf_counter()
    while done < steps:
        for real, _ in loader:
            fake = G(torch.randn(batch, G.z_dim))
            out_real, out_fake = D(real), D(fake.detach())
            err_d = loss.d_loss(out_real, out_fake)
            opt_d.zero_grad()
            err_d.backward()
            opt_d.step()
            err_g = loss.g_loss(D(fake))
            opt_g.zero_grad()
            err_g.backward()
            opt_g.step()
            _ = (err_d.item(), err_g.item(), out_real.sigmoid().mean().item(), out_fake.sigmoid().mean().item())
            done += 1
            if done >= steps:
                break
    return time.perf_counter() - start


def ganlab_loop(base: list[str], steps: int, extra: list[str]) -> float:
    """ganlab's trainer through run_job(): the seconds its training loop took (summary duration_s)."""
    with tempfile.TemporaryDirectory() as folder:
        summary = run_job(compose_train(*base, f"trainer.steps={steps}", "trainer.progress=false", *extra), Path(folder) / "r")
        assert summary["status"] == "completed", summary
        return summary["duration_s"]


def matmul_peak(sizes: tuple[int, ...] = (1024, 2048, 3072), reps: int = 3) -> float:
    """This machine's float32 matmul rate now: the best over a few sizes (one size can miss the peak)."""
    rates = []
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        rates.append(2 * n**3 / min(_timed(lambda: torch.mm(a, b)) for _ in range(reps)))
    return max(rates)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def step_flops(cfg, x: torch.Tensor, batch: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    gan = build_gan(cfg, tuple(x.shape[1:]), torch.device("cpu"))
    G, D, loss = gan.generator, gan.discriminator, gan.loss
    with FlopCounterMode(display=False) as counter:
        fake = G(torch.randn(batch, G.z_dim))
        loss.d_loss(D(x[:batch]), D(fake.detach())).backward()
        loss.g_loss(D(fake)).backward()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120, help="G steps per variant (default 120)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps-per-epoch", type=int, default=60, help="sets the data size (default 60)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every variant (default 3)")
    parser.add_argument("--no-optins", action="store_true", help="skip channels_last and bf16")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (about 35 s to compile)")
    args = parser.parse_args()

    base = [*data_overrides(args), f"trainer.batch_size={args.batch_size}"]
    cfg = compose_train(*base)
    x = load_dataset(cfg.data).x
    images = args.steps * args.batch_size
    print(f"DCGAN {cfg.data.name} {'x'.join(map(str, x.shape[1:]))}, batch {args.batch_size}, {args.steps} G steps "
          f"per variant, {len(x)} images ({len(x) // args.batch_size} steps an epoch), "
          f"{torch.get_num_threads()} threads", flush=True)

    no_eval = ["metrics.enabled=false"]
    variants = {
        "plain PyTorch loop": lambda: plain_loop(cfg, x, args.steps, args.batch_size),
        "ganlab (logging, sampling, checkpointing)": lambda: ganlab_loop(base, args.steps, no_eval),
        "ganlab + quality evaluation every epoch": lambda: ganlab_loop(base, args.steps, ["metrics.every=1"]),
        "pytorch/examples dcgan style (DataLoader)": lambda: examples_loop(cfg, x, args.steps, args.batch_size),
    }
    if not args.no_optins:
        variants["ganlab trainer.channels_last=true"] = lambda: ganlab_loop(
            base, args.steps, [*no_eval, "trainer.channels_last=true"])
        variants["ganlab trainer.precision=bf16"] = lambda: ganlab_loop(
            base, args.steps, [*no_eval, "trainer.precision=bf16"])
    if args.compile:
        variants["ganlab trainer.compile=true (incl. compiling)"] = lambda: ganlab_loop(
            base, args.steps, [*no_eval, "trainer.compile=true"])

    seconds: dict[str, list[float]] = {name: [] for name in variants}
    peaks: list[float] = []
    for r in range(args.rounds):
        print(f"round {r + 1} of {args.rounds}", flush=True)
        before = matmul_peak()  # measured on both sides of the round, the higher kept
        for name, run in variants.items():
            seconds[name].append(run())
            print(f"  {name:<46} {seconds[name][-1]:7.1f} s  {images / seconds[name][-1]:7.1f} images/s", flush=True)
        peaks.append(max(before, matmul_peak()))
        print(f"  {'float32 matmul peak (torch.mm, best size)':<46} {peaks[-1] / 1e9:7.1f} GFLOP/s", flush=True)

    plain = seconds["plain PyTorch loop"]
    print(f"\nmedians over {args.rounds} interleaved rounds [min, max]; ratios within each round:")
    print(f"  {'variant':<46} {'images/s':>22}   {'vs the plain loop (higher is better)':>24}")
    for name, times in seconds.items():
        rate = [images / t for t in times]
        ratio = [p / t for p, t in zip(plain, times)]
        print(f"  {name:<46} {median(rate):7.1f} [{min(rate):6.1f}, {max(rate):6.1f}]   "
              f"{median(ratio):6.3f} [{min(ratio):.3f}, {max(ratio):.3f}]")

    flops = step_flops(cfg, x, args.batch_size)
    ganlab = seconds["ganlab (logging, sampling, checkpointing)"]
    share = [flops * args.steps / t / peak for t, peak in zip(ganlab, peaks)]
    print(f"\nFLOPs of one DCGAN step (G and D, forward and backward): {flops / 1e9:.2f} GFLOP")
    print(f"achieved by ganlab: {median([flops * args.steps / t for t in ganlab]) / 1e9:.1f} GFLOP/s; float32 "
          f"matmul peak {median(peaks) / 1e9:.1f} GFLOP/s [{min(peaks) / 1e9:.1f}, {max(peaks) / 1e9:.1f}]; "
          f"share of the same round's peak {median(share):.2f} [{min(share):.2f}, {max(share):.2f}]")
    print(json.dumps({"seconds": {k: [round(t, 2) for t in v] for k, v in seconds.items()},
                      "matmul_peak_gflops": [round(p / 1e9, 1) for p in peaks]}))


if __name__ == "__main__":
    main()
