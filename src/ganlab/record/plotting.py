"""What every picture ganlab draws shares: matplotlib without a screen, and log axes that are cheap."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before pyplot: the pictures are files, never windows
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

__all__ = ["log_scale", "plt"]


def log_scale(ax) -> None:
    """A log y axis labelled in plain numbers (0.1, 1, 10): the default 10^k labels go through
    matplotlib's mathtext parser, which cost more than the rest of a run's history picture."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
