"""Pictures of a run: sample grids, point clouds against the data, the training history."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ganlab.record.plotting import log_scale, plt


def save_image_grid(images: torch.Tensor, path: Path, min_side: int = 32, fmt: str | None = None,
                    nrow: int | None = None) -> None:
    """Images in [-1, 1] as one square-ish grid (or `nrow` a row); small images are enlarged (nearest)."""
    from torchvision.utils import save_image  # imported when needed: torchvision takes 1.4 s to import

    images = images.detach().float().cpu()
    scale = max(1, math.ceil(min_side / images.shape[-1]))
    if scale > 1:
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
    nrow = nrow or math.ceil(math.sqrt(len(images)))
    save_image(images, path, nrow=nrow, padding=max(1, scale), normalize=True, value_range=(-1, 1), pad_value=0.5,
               format=fmt)


def save_points_plot(points: torch.Tensor, data: torch.Tensor, path: Path, title: str, fmt: str | None = None) -> None:
    """Generated points against the data: a scatter for 2-D, overlaid histograms for 1-D."""
    points, data = points.detach().float().cpu(), data.detach().float().cpu()
    fig, ax = plt.subplots(figsize=(5, 5) if points.shape[1] == 2 else (6, 3.5))
    if points.shape[1] == 2:
        ax.scatter(data[:, 0], data[:, 1], s=2, c="0.75", label="data")
        ax.scatter(points[:, 0], points[:, 1], s=3, c="tab:red", alpha=0.6, label="generated")
        lim = 1.25 * float(data.abs().max())
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
    else:
        lo, hi = float(data.min()) - 1, float(data.max()) + 1
        bins = torch.linspace(lo, hi, 81).tolist()
        ax.hist(data[:, 0].tolist(), bins=bins, density=True, color="0.75", label="data")
        ax.hist(points[:, 0].clamp(lo, hi).tolist(), bins=bins, density=True, histtype="step", lw=2,
                color="tab:red", label="generated")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format=fmt)
    plt.close(fig)


HISTORY_PANELS = [
    ("Losses", ["loss_d", "loss_g"]),
    ("D outputs (mean D(x), D(G(z)))", ["d_real", "d_fake"]),
    ("D accuracy", ["acc_real", "acc_fake"]),
    ("Gradient norms", ["grad_norm_d", "grad_norm_g"]),
    ("WGAN-GP", ["gp", "wasserstein"]),
    ("R1 / R2 penalties", ["r1", "r2"]),
]


def plot_history(metrics: dict[str, list[float]], path: Path, title: str = "", fmt: str | None = None,
                 quality: dict[str, list[float]] | None = None, primary: str | None = None,
                 floor: float | None = None, better: str = "") -> None:
    """One panel per family of measurements over G steps (panels without data are left out), and a
    first panel of the primary quality score per evaluation with its 90% noise band and the floor;
    `better` says which way is better ("lower is better")."""
    panels = [(name, [k for k in keys if k in metrics and any(math.isfinite(v) for v in metrics[k])])
              for name, keys in HISTORY_PANELS]
    panels = [(name, keys) for name, keys in panels if keys]
    scored = bool(quality and primary and quality.get(primary))
    if not panels or not metrics.get("step"):
        return
    rows = len(panels) + scored
    fig, axes = plt.subplots(rows, 1, figsize=(8, 2.3 * rows), sharex=True, squeeze=False)
    if scored:
        _quality_panel(axes[0, 0], quality, primary, floor, better)
    for ax, (name, keys) in zip(axes[int(scored):, 0], panels):
        for key in keys:
            ax.plot(metrics["step"], metrics[key], label=key, lw=1.2)
        if name == "D accuracy":
            ax.set_ylim(-0.05, 1.05)
        if name == "Gradient norms":
            log_scale(ax)
        ax.set_title(name, fontsize=10, loc="left")
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("G step")
    if title:
        fig.suptitle(title, fontsize=11)
    # Fixed margins: tight_layout measured every label of every panel, a third of a tiny run's time.
    inch = 1 / (2.3 * rows)  # of the figure's height
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.45 * inch, top=1 - (0.4 if title else 0.25) * inch,
                        hspace=0.32)
    fig.savefig(path, dpi=90, format=fmt)
    plt.close(fig)


def _quality_panel(ax, quality: dict[str, list[float]], primary: str, floor: float | None, better: str) -> None:
    steps, values = quality["step"], quality[primary]
    ax.plot(steps, values, "o-", color="tab:purple", lw=1.2, ms=3, label=f"{primary} ({better})" if better else primary)
    se = quality.get(f"{primary}_se")
    if se and all(math.isfinite(v) for v in se):
        lo = [v - 1.645 * e for v, e in zip(values, se)]
        hi = [v + 1.645 * e for v, e in zip(values, se)]
        ax.fill_between(steps, lo, hi, color="tab:purple", alpha=0.2, lw=0, label="90% measurement noise")
    if floor is not None:
        ax.axhline(floor, color="0.3", ls="--", lw=1, label=f"real vs real floor ({floor:.3g})")
    if all(v > 0 for v in values):
        log_scale(ax)  # the first evaluations are often 10x the rest
    ax.set_title("Quality", fontsize=10, loc="left")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
