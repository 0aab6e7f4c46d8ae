"""`ganlab eval RUN_DIR`: a checkpoint's generator scored again, as training's evaluations score it, into
eval_<which>.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ganlab.judging.sampling import generate, latents, load_generator
from ganlab.record.run_folder import atomic_write, eval_json


def evaluate_checkpoint(run_dir: Path, which: str = "best", seed: int = 0) -> dict[str, Any]:
    """Recompute the quality scores of a run's checkpoint; write them to eval_<which>.json."""
    from ganlab.parts.data import load_dataset
    from ganlab.quality import at_the_floor, build_evaluator, class_accuracy

    generator, cfg, checkpoint = load_generator(run_dir, which)
    data = load_dataset(cfg.data, cfg.seed)
    evaluator = build_evaluator(cfg, data)
    n, classes = cfg.metrics.n_samples, checkpoint.classes
    # a conditional G draws the classes in the data's frequencies, as in training's evaluations
    labels = data.labels[torch.randint(len(data), (n,), generator=torch.Generator().manual_seed(seed))] if classes else None
    samples = generate(generator, latents(generator.z_dim, n, seed), labels)
    scores, noise = evaluator.score(samples), evaluator.noise(samples)
    if classes:
        per_class = evaluator.per_class(samples, labels, classes)
        scores["class_accuracy"] = class_accuracy(per_class)
    result = {"checkpoint": f"checkpoints/{which}.pt", "epoch": checkpoint.epoch, "step": checkpoint.step,
              "metric": evaluator.primary, "scores": scores, "noise": noise, "floor": evaluator.floor,
              "at_the_floor": at_the_floor(scores, noise, evaluator.floor), "scored_with": evaluator.info}
    path = Path(run_dir) / eval_json(which)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(result, indent=2) + "\n"))
    return result
