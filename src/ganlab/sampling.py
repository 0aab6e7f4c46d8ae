"""`ganlab sample` and `ganlab eval`: a trained run's generator, used after training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganlab.checkpoints import load_generator, sample_shape
from ganlab.memory import require, sample_values
from ganlab.plots import save_image_grid, save_points_plot
from ganlab.run_folder import atomic_write

FORMATS = (".png", ".npz")


@torch.no_grad()
def generate(generator: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    return torch.cat([generator(part) for part in z.split(500)])


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation from rows of `a` to rows of `b` at fractions `t` (one per column):
    it keeps the norm a Gaussian latent typically has, where a straight line passes near the mean."""
    cos = (a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True))
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7)).unsqueeze(1)  # (strips, 1, 1)
    t = t.view(1, -1, 1)
    return (torch.sin((1 - t) * omega) * a.unsqueeze(1) + torch.sin(t * omega) * b.unsqueeze(1)) / torch.sin(omega)


def latents(z_dim: int, n: int, seed: int, interpolate: int | None = None, truncation: float = 1.0) -> torch.Tensor:
    """n seeded Gaussian latents; with `interpolate` steps, n // steps strips (rows) from one random
    latent to another. `truncation` psi scales them towards the mean latent (0): psi 1 is the usual
    sampling, smaller trades variety for typical samples (Karras et al. 2019's truncation trick)."""
    rng = torch.Generator().manual_seed(seed)
    if interpolate is None:
        z = torch.randn(n, z_dim, generator=rng)
    else:
        ends = torch.randn(2, max(1, n // interpolate), z_dim, generator=rng)
        z = slerp(ends[0], ends[1], torch.linspace(0, 1, interpolate)).reshape(-1, z_dim)
    return truncation * z


def check_latent_options(interpolate: int | None, truncation: float) -> None:
    if interpolate is not None and interpolate < 2:
        raise ValueError(f"--interpolate {interpolate}: a strip needs at least 2 steps (default 8)")
    if not 0.0 <= truncation <= 1.0:
        raise ValueError(f"--truncation {truncation}: psi must be in [0, 1] (1: no truncation, 0: the mean latent)")


def write_samples(run_dir: Path, out: Path, n: int, which: str = "best", seed: int = 0,
                  interpolate: int | None = None, truncation: float = 1.0) -> Path:
    """n samples of a run's checkpoint as a PNG grid (a plot for points) or an .npz array in data
    space: images as uint8 (N, H, W, C) like the datasets' files, points as float32 (N, D). With
    `interpolate` steps, the grid's rows are strips between random latents (see `latents`)."""
    out = Path(out)
    check_latent_options(interpolate, truncation)
    if out.suffix not in FORMATS:
        raise ValueError(f"--out {out}: the file must end in .png (a picture) or .npz (arrays)")
    if out.parent.exists() and not out.parent.is_dir():
        raise ValueError(f"--out {out}: {out.parent} is a file, not a folder")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: the folder {out.parent} does not exist")
    generator, cfg, _ = load_generator(run_dir, which)
    if interpolate is not None and len(sample_shape(cfg)) != 3:
        raise ValueError(f"--interpolate draws strips of images, but {run_dir} models {cfg.data.name} points; "
                         f"sample without --interpolate")
    require(2 * sample_values(n, sample_shape(cfg)) + n * generator.z_dim, f"--n {n}", "ask for fewer samples")
    samples = generate(generator, latents(generator.z_dim, n, seed, interpolate, truncation))
    if out.suffix == ".png":
        if samples.dim() == 4:
            atomic_write(out, lambda tmp: save_image_grid(samples, tmp, fmt="png", nrow=interpolate))
        else:
            from ganlab.data import load_dataset

            data = load_dataset(cfg.data, cfg.seed)
            atomic_write(out, lambda tmp: save_points_plot(samples, data.x, tmp, f"{cfg.name}: {n} samples ({which})",
                                                           fmt="png"))
    else:
        arrays = ({"images": ((samples.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()}
                  if samples.dim() == 4 else {"points": samples.float().numpy()})
        atomic_write(out, lambda tmp: np.savez_compressed(open(tmp, "wb"), **arrays))
    return out


def evaluate_checkpoint(run_dir: Path, which: str = "best", seed: int = 0) -> dict[str, Any]:
    """Recompute the quality scores of a run's checkpoint; write them to eval_<which>.json."""
    from ganlab.data import load_dataset
    from ganlab.quality import at_the_floor, build_evaluator

    generator, cfg, state = load_generator(run_dir, which)
    data = load_dataset(cfg.data, cfg.seed)
    evaluator = build_evaluator(cfg, data)
    samples = generate(generator, latents(generator.z_dim, cfg.metrics.n_samples, seed))
    scores, noise = evaluator.score(samples), evaluator.noise(samples)
    result = {"checkpoint": f"checkpoints/{which}.pt", "epoch": state.get("epoch"), "step": state.get("step"),
              "metric": evaluator.primary, "scores": scores, "noise": noise, "floor": evaluator.floor,
              "at_the_floor": at_the_floor(scores, noise, evaluator.floor), "scored_with": evaluator.info}
    path = Path(run_dir) / f"eval_{which}.json"
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(result, indent=2) + "\n"))
    return result
