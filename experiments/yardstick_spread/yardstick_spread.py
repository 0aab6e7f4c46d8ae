"""How far a yardstick classifier trained on another machine moves the scores: the dataset's classifier trained
again here in other rounding orders (as another processor or thread count rounds), each run's best checkpoint
scored with each. What made ganlab ship Fashion-MNIST's and the digits' yardsticks.

    python experiments/yardstick_spread/yardstick_spread.py RUN_DIR...   # runs of one dataset

The classifiers are trained as ganlab trains them (the dataset's default steps, seed 0), the shipped weights
set aside, each cached under $GANLAB_CACHE/yardstick_spread/<variant>."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

import ganlab.quality.classifier as classifier
from ganlab.judging.sampling import generate, latents, load_generator
from ganlab.parts.data import load_dataset
from ganlab.quality import build_evaluator

VARIANTS = {  # name: (torch threads, oneDNN convolutions)
    "1 thread": (1, True),
    "2 threads": (2, True),
    "1 thread, no oneDNN": (1, False),
}


def evaluators(cfg) -> dict:
    """The dataset's evaluator for each variant's classifier, trained here (never the shipped weights)."""
    shipped, classifier.SHIPPED = classifier.SHIPPED, Path("/nonexistent")
    root = Path(os.environ.get("GANLAB_CACHE", "~/.cache/ganlab")).expanduser() / "yardstick_spread"
    out = {}
    try:
        for name, (threads, onednn) in VARIANTS.items():
            torch.set_num_threads(threads)
            torch.backends.mkldnn.enabled = onednn
            cfg.metrics.cache_dir = str(root / name.replace(" ", "_").replace(",", ""))
            out[name] = build_evaluator(cfg, load_dataset(cfg.data, cfg.seed))
    finally:
        classifier.SHIPPED, torch.backends.mkldnn.enabled = shipped, True
    torch.set_num_threads(1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    runs = parser.parse_args().runs
    _, cfg, _ = load_generator(runs[0], "best")
    scoring = evaluators(cfg)
    base = next(iter(VARIANTS))
    print("| run | epoch | " + " | ".join(f"{n} (test acc. {e.info['test_accuracy']}, {e.info['weights']})"
                                        for n, e in scoring.items()) + " |")
    print("|" + " --- |" * (len(VARIANTS) + 2))
    for run in runs:
        generator, cfg, checkpoint = load_generator(run, "best")
        samples = generate(generator, latents(generator.z_dim, cfg.metrics.n_samples, 0), None)
        fd = {name: e.score(samples)[e.primary] for name, e in scoring.items()}
        cells = [f"{fd[base]:.3f}"] + [f"{fd[n]:.3f} ({fd[n] - fd[base]:+.3f}, {100 * (fd[n] / fd[base] - 1):+.1f}%)"
                                       for n in list(VARIANTS)[1:]]
        print(f"| {run.name} | {checkpoint.epoch} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
