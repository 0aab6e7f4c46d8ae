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
def generate(generator: torch.nn.Module, n: int, seed: int) -> torch.Tensor:
    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([generator(part) for part in z.split(500)])


def write_samples(run_dir: Path, out: Path, n: int, which: str = "best", seed: int = 0) -> Path:
    """n samples of a run's checkpoint as a PNG grid (a plot for points) or an .npz array in data
    space: images as uint8 (N, H, W, C) like the datasets' files, points as float32 (N, D)."""
    out = Path(out)
    if out.suffix not in FORMATS:
        raise ValueError(f"--out {out}: the file must end in .png (a picture) or .npz (arrays)")
    if out.parent.exists() and not out.parent.is_dir():
        raise ValueError(f"--out {out}: {out.parent} is a file, not a folder")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: the folder {out.parent} does not exist")
    generator, cfg, _ = load_generator(run_dir, which)
    require(2 * sample_values(n, sample_shape(cfg)) + n * generator.z_dim, f"--n {n}", "ask for fewer samples")
    samples = generate(generator, n, seed)
    if out.suffix == ".png":
        if samples.dim() == 4:
            atomic_write(out, lambda tmp: save_image_grid(samples, tmp, fmt="png"))
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
    samples = generate(generator, cfg.metrics.n_samples, seed)
    scores, noise = evaluator.score(samples), evaluator.noise(samples)
    result = {"checkpoint": f"checkpoints/{which}.pt", "epoch": state.get("epoch"), "step": state.get("step"),
              "metric": evaluator.primary, "scores": scores, "noise": noise, "floor": evaluator.floor,
              "at_the_floor": at_the_floor(scores, noise, evaluator.floor), "scored_with": evaluator.info}
    path = Path(run_dir) / f"eval_{which}.json"
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(result, indent=2) + "\n"))
    return result
