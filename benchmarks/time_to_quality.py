"""Training seconds until the primary score first reaches a fixed threshold on Fashion-MNIST, for
ganlab's default DCGAN, ganlab's CPU preset (`preset=cpu`) and a plain hand-written loop with
pytorch/examples dcgan's settings (nz 100, 64 filters, batch 64, Adam 2e-4 / 0.5, sigmoid + BCE, a
DataLoader with per-image transforms), its networks shaped for 28x28.

    python benchmarks/time_to_quality.py [--threshold 3.0] [--every 250] [--max-minutes 15] [--seed 0]

Every variant is scored with the same yardstick (ganlab's Fashion-MNIST classifier and reference,
2,000 samples from fixed noise) every `--every` G steps; the clock stops while it scores, so the
seconds are training only. ganlab's variants run its own batch stream and D/G step
(ganlab.training), built from the composed configs; writing files is left out of all three.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ganlab.config import compose_train
from ganlab.parts.data import load_dataset
from ganlab.quality import build_evaluator
from ganlab.training.batches import BatchStream
from ganlab.training.job import build_gan, seed_everything
from ganlab.training.step import GANStep

FASHION = Path("/usr/share/datasets/fashion-mnist")


def config(*overrides: str):
    return compose_train("data=fashion_mnist", *overrides)


def until_threshold(step: Callable[[], None], sample: Callable[[torch.Tensor], torch.Tensor], evaluator,
                    noise: torch.Tensor, threshold: float, every: int, max_seconds: float) -> dict:
    """Train with `step` until the score of `sample(noise)` is at or below `threshold`."""
    trained, steps, scores = 0.0, 0, []
    while trained < max_seconds:
        start = time.perf_counter()
        for _ in range(every):
            step()
        trained += time.perf_counter() - start
        steps += every
        with torch.no_grad():
            score = evaluator.score(sample(noise))[evaluator.primary]
        scores.append((steps, round(trained, 1), round(score, 3)))
        print(f"    {steps:6d} steps  {trained:7.1f} s  {evaluator.primary} {score:.3f}", flush=True)
        if score <= threshold:
            return {"seconds": round(trained, 1), "steps": steps, "scores": scores}
    return {"seconds": None, "steps": steps, "scores": scores}


def ganlab_variant(cfg):
    """ganlab's own batch stream and D/G step for a composed config; (step, sample)."""
    seed_everything(cfg.seed)
    data = load_dataset(cfg.data, cfg.seed)
    gan = build_gan(cfg, data.sample_shape, torch.device("cpu"))
    stream = BatchStream(data, cfg.trainer.batch_size, cfg.trainer.n_critic, cfg.seed)
    gan_step, count = GANStep(gan, torch.device("cpu"), cfg.trainer.precision), [0]  # no R1/R2, no augmentation

    def step() -> None:
        reals = stream.next() or stream.next()  # None ends an epoch: the next call starts one
        gan_step(reals, count[0])
        count[0] += 1

    def sample(noise: torch.Tensor) -> torch.Tensor:
        G = gan.generator.eval()
        out = torch.cat([G(part) for part in noise.split(500)])
        G.train()
        return out

    return step, sample, gan.generator.z_dim


# ----------------------------------------------------------------- pytorch/examples dcgan, for 28x28
NZ, NGF, NDF, BATCH = 100, 64, 64, 64


class ExamplesGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(NZ, NGF * 4, 7, 1, 0, bias=False), nn.BatchNorm2d(NGF * 4), nn.ReLU(True),  # 7x7
            nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF * 2), nn.ReLU(True),  # 14
            nn.ConvTranspose2d(NGF * 2, 1, 4, 2, 1, bias=False), nn.Tanh())  # 28x28

    def forward(self, z):
        return self.main(z.view(-1, NZ, 1, 1))


class ExamplesDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),  # 14
            nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(NDF * 2, 1, 7, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1)


def weights_init(m: nn.Module) -> None:
    if "Conv" in type(m).__name__:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in type(m).__name__:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class PerImage(Dataset):
    def __init__(self, images: np.ndarray):
        self.images = images
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i], mode="L")), 0


def examples_variant(images: np.ndarray, seed: int):
    torch.manual_seed(seed)
    G, D = ExamplesGenerator(), ExamplesDiscriminator()
    G.apply(weights_init)
    D.apply(weights_init)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loader = DataLoader(PerImage(images), batch_size=BATCH, shuffle=True, num_workers=2, drop_last=True,
                        persistent_workers=True)
    batches = iter(loader)

    def step() -> None:
        nonlocal batches
        try:
            real, _ = next(batches)
        except StopIteration:
            batches = iter(loader)
            real, _ = next(batches)
        fake = G(torch.randn(BATCH, NZ))
        D.zero_grad()
        err_real = F.binary_cross_entropy(D(real), torch.ones(BATCH))
        err_fake = F.binary_cross_entropy(D(fake.detach()), torch.zeros(BATCH))
        (err_real + err_fake).backward()
        opt_d.step()
        G.zero_grad()
        F.binary_cross_entropy(D(fake), torch.ones(BATCH)).backward()
        opt_g.step()

    def sample(noise: torch.Tensor) -> torch.Tensor:
        G.eval()
        out = torch.cat([G(part) for part in noise.split(500)])
        G.train()
        return out

    return step, sample, NZ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=3.0, help="fd_classifier to reach (default 3.0)")
    parser.add_argument("--every", type=int, default=250, help="G steps between scorings (default 250)")
    parser.add_argument("--max-minutes", type=float, default=15.0, help="training minutes per variant at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", help="variants to run (default all)")
    args = parser.parse_args()
    if not FASHION.is_dir():
        raise SystemExit(f"Fashion-MNIST is not in {FASHION}: apt-get install dataset-fashion-mnist")

    base = config(f"seed={args.seed}")
    data = load_dataset(base.data)
    evaluator = build_evaluator(base, data)
    images = ((data.x[:, 0] + 1) * 127.5).round().to(torch.uint8).numpy()
    variants = {
        "ganlab default": lambda: ganlab_variant(base),
        "ganlab preset=cpu": lambda: ganlab_variant(config(f"seed={args.seed}", "preset=cpu")),
        "pytorch/examples dcgan settings": lambda: examples_variant(images, args.seed),
    }
    print(f"Fashion-MNIST 28x28, {torch.get_num_threads()} threads; time until {evaluator.primary} <= "
          f"{args.threshold} (floor {evaluator.floor.get(evaluator.primary)}), scored every {args.every} G steps")
    results = {}
    for name, build in variants.items():
        if args.only and name not in args.only:
            continue
        print(f"  {name}", flush=True)
        step, sample, z_dim = build()
        noise = torch.randn(base.metrics.n_samples, z_dim, generator=torch.Generator().manual_seed(1))
        results[name] = until_threshold(step, sample, evaluator, noise, args.threshold, args.every,
                                        60 * args.max_minutes)
    print("\ntraining seconds to reach the threshold (None: not within --max-minutes):")
    for name, r in results.items():
        print(f"  {name:<34} {r['seconds']!s:>8} s  ({r['steps']} G steps)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
