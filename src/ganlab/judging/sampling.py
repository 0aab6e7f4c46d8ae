"""`ganlab sample` and `ganlab eval`: a trained run's generator, used after training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ganlab.parts.networks.build import build_generator
from ganlab.record.checkpoints import Checkpoint, CheckpointError, checkpoint_path, sample_shape
from ganlab.record.pictures import save_image_grid, save_points_plot
from ganlab.record.run_folder import atomic_write
from ganlab.config.memory import require, sample_values

FORMATS = (".png", ".npz")


def load_generator(run_dir: Path, which: str = "best") -> tuple[torch.nn.Module, DictConfig, Checkpoint]:
    """The generator of a run's `which` checkpoint (best or last), in eval mode on the CPU: the EMA generator
    where the run kept one."""
    path = checkpoint_path(run_dir, which)
    checkpoint = Checkpoint.read(path)
    cfg = OmegaConf.create(checkpoint.config)
    generator = build_generator(cfg.generator, sample_shape(cfg, checkpoint), len(checkpoint.classes or []))
    try:
        generator.load_state_dict(checkpoint.generator_weights)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: its generator weights do not fit its config ({str(e).splitlines()[0]})") from None
    return generator.eval(), cfg, checkpoint


@torch.no_grad()
def generate(generator: torch.nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """The images of the latents `z` (of the classes `labels`, for a conditional G)."""
    if labels is None:
        return torch.cat([generator(part) for part in z.split(500)])
    return torch.cat([generator(part, y) for part, y in zip(z.split(500), labels.split(500))])


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


def chosen_class(classes: list[str] | None, choice: str | None, run_dir: Path) -> int | None:
    """The class index `--class` names (by index or name); None for every class (`all`, or no --class)."""
    if classes is None:
        if choice is not None:
            raise ValueError(f"--class {choice}: {run_dir} is not class-conditional (discriminator.conditioning=none); "
                             f"train one with +exp=conditional, or sample without --class")
        return None
    if choice is None or choice == "all":
        return None
    if choice in classes:
        return classes.index(choice)
    if choice.isdigit() and int(choice) < len(classes):
        return int(choice)
    raise ValueError(f"--class {choice}: not a class of {run_dir}; give 0-{len(classes) - 1}, all, or a name: "
                     f"{', '.join(classes)}")


def layout(n: int, classes: list[str] | None, k: int | None, interpolate: int | None,
           ) -> tuple[int, int | None, torch.Tensor | None]:
    """How many samples to draw, the grid's row length, and each sample's class (None: unconditional).
    A conditional run draws one class per row (every class, or class k), or strips of one class."""
    if interpolate is not None:
        rows = max(1, n // interpolate)
        if not classes:
            return rows * interpolate, interpolate, None
        row_classes = torch.full((rows,), k) if k is not None else torch.arange(rows) % len(classes)
        return rows * interpolate, interpolate, row_classes.repeat_interleave(interpolate)
    if not classes:
        return n, None, None
    if k is not None:
        return n, None, torch.full((n,), k)
    per_row = max(1, n // len(classes))
    return per_row * len(classes), per_row, torch.arange(len(classes)).repeat_interleave(per_row)


def write_samples(run_dir: Path, out: Path, n: int, which: str = "best", seed: int = 0,
                  interpolate: int | None = None, truncation: float = 1.0, choice: str | None = None) -> Path:
    """n samples of a run's checkpoint as a PNG grid (a plot for points) or an .npz array in data
    space: images as uint8 (N, H, W, C) like the datasets' files, points as float32 (N, D). With
    `interpolate` steps, the grid's rows are strips between random latents (see `latents`). A
    conditional run draws one class per row, or only the class `choice`; its .npz adds `labels`."""
    out = Path(out)
    check_latent_options(interpolate, truncation)
    if out.suffix not in FORMATS:
        raise ValueError(f"--out {out}: the file must end in .png (a picture) or .npz (arrays)")
    if out.parent.exists() and not out.parent.is_dir():
        raise ValueError(f"--out {out}: {out.parent} is a file, not a folder")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: the folder {out.parent} does not exist")
    generator, cfg, checkpoint = load_generator(run_dir, which)
    if interpolate is not None and len(sample_shape(cfg, checkpoint)) != 3:
        raise ValueError(f"--interpolate draws strips of images, but {run_dir} models points; "
                         f"sample without --interpolate")
    classes = checkpoint.classes
    count, per_row, labels = layout(n, classes, chosen_class(classes, choice, run_dir), interpolate)
    require(2 * sample_values(count, sample_shape(cfg, checkpoint)) + count * generator.z_dim, f"--n {n}", "ask for fewer samples")
    samples = generate(generator, latents(generator.z_dim, count, seed, interpolate, truncation), labels)
    if out.suffix == ".png":
        if samples.dim() == 4:
            atomic_write(out, lambda tmp: save_image_grid(samples, tmp, fmt="png", nrow=per_row))
        else:
            from ganlab.parts.data import load_dataset

            data = load_dataset(cfg.data, cfg.seed)
            atomic_write(out, lambda tmp: save_points_plot(samples, data.x, tmp, f"{cfg.name}: {n} samples ({which})",
                                                           fmt="png"))
    else:
        arrays = ({"images": ((samples.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()}
                  if samples.dim() == 4 else {"points": samples.float().numpy()})
        if labels is not None:
            arrays["labels"] = labels.numpy()
        atomic_write(out, lambda tmp: np.savez_compressed(open(tmp, "wb"), **arrays))
    return out
