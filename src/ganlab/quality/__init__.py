"""Offline quality scores, computed at every evaluation without any download.

Images: scores in the feature space of a small classifier trained once per dataset (see
classifier.py), with the real-vs-real floor (training vs test split) beside them. Mixtures: the
exact mode scores of VEEGAN / PacGAN and a sliced Wasserstein distance to the data.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Optional

import torch
from omegaconf import DictConfig, open_dict

from ganlab.data import Dataset, DatasetNotFoundError, load_dataset
from ganlab.data.mixtures import sample_mixture
from ganlab.quality import scores
from ganlab.quality.classifier import TrainedClassifier, load_or_train
from ganlab.run_folder import atomic_write

log = logging.getLogger(__name__)


class Evaluator(ABC):
    primary: str  # the score to minimise: best.pt and the "quality" of a run
    floor: dict[str, float]  # the same scores between two real samples
    info: dict  # recorded with every result (how the scores were made)

    @abstractmethod
    def score(self, samples: torch.Tensor) -> dict[str, float]:
        """Scores of generated samples (N, ...) in the data's space."""


class ImageEvaluator(Evaluator):
    primary = "fd_classifier"

    def __init__(self, classifier: TrainedClassifier, data: Dataset, other: Optional[Dataset], n: int, k: int):
        self.classifier, self.k = classifier, k
        reference = _subset(data.x, n, seed=0)
        features, _ = classifier.net.embed(reference)
        # Scale the space so the reference has unit RMS per dimension: kernels and distances stay O(1).
        self.scale = float(features.pow(2).mean().rsqrt())
        self.real_features = features * self.scale
        self.real_diversity = scores.diversity(self.real_features)
        # Generated samples are scored in the number the floor can be measured with: Frechet
        # distance is biased by the sample size, so a floor at another size would mislead.
        self.n_fake = min(n, len(other)) if other is not None else min(n, len(reference) // 2)
        self.class_freq = None
        if classifier.task == "classes" and data.labels is not None:
            self.class_freq = torch.bincount(data.labels).double() / len(data.labels)
        self.info = {"feature_space": f"{classifier.task} classifier", **classifier.meta, "n_real": len(reference),
                     "n_generated": self.n_fake, "nearest_k": k}
        self.floor = self._floor(other, n)

    def score(self, samples: torch.Tensor) -> dict[str, float]:
        return self._scores(self.real_features, *self._embed(samples[: self.n_fake]))

    def _embed(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, predicted = self.classifier.net.embed(images.detach().float().cpu())
        return features * self.scale, predicted

    def _scores(self, real: torch.Tensor, features: torch.Tensor, predicted: torch.Tensor) -> dict[str, float]:
        result = {"fd_classifier": scores.frechet_distance(real, features),
                  "kid": scores.kernel_inception_distance(real, features),
                  **scores.prdc(real, features, self.k),
                  "diversity_ratio": scores.diversity(features) / max(self.real_diversity, 1e-12)}
        if self.class_freq is not None:
            result.update(scores.class_scores(predicted, self.class_freq))
        return result

    def _floor(self, other: Optional[Dataset], n: int) -> dict[str, float]:
        """Real-vs-real scores: the reference sample against the other split (or, without one, one
        half of the reference against the other), cached beside the classifier."""
        path = self.classifier.folder / f"floor-n{n}-k{self.k}.json"
        if path.exists():
            return json.loads(path.read_text())
        if other is not None:
            floor = self._scores(self.real_features, *self._embed(_subset(other.x, self.n_fake, seed=1)))
        else:
            half = len(self.real_features) // 2
            with torch.no_grad():
                predicted = self.classifier.net.head(self.real_features[half:] / self.scale).argmax(1)
            floor = self._scores(self.real_features[:half], self.real_features[half:], predicted)
        floor = {key: round(float(value), 6) for key, value in floor.items()}
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(floor, indent=2) + "\n"))
        return floor


def _subset(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n samples of x in a seeded random order, on the CPU."""
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]].cpu()


class MixtureEvaluator(Evaluator):
    primary = "swd"

    def __init__(self, data: Dataset, n: int):
        self.modes, self.std = data.modes, data.std
        self.reference = _subset(data.x, n, seed=0)
        self.real_diversity = scores.diversity(self.reference)
        self.info = {"feature_space": "data space", "n_real": len(self.reference), "n_modes": len(self.modes),
                     "std": self.std}
        fresh = sample_mixture(self.modes, self.std, len(self.reference), torch.Generator().manual_seed(1))
        self.floor = {key: round(value, 6) for key, value in self.score(fresh).items()}

    def score(self, samples: torch.Tensor) -> dict[str, float]:
        points = samples.detach().float().cpu()
        return {**scores.mode_scores(points, self.modes, self.std),
                "swd": scores.sliced_wasserstein(self.reference, points),
                "diversity_ratio": scores.diversity(points) / max(self.real_diversity, 1e-12)}


def other_split(data_cfg: DictConfig) -> Optional[Dataset]:
    """The split the run does not train on (the test split, usually), when it can be read."""
    if "split" not in data_cfg or data_cfg.name == "folder":
        return None
    other = data_cfg.copy()
    with open_dict(other):
        other.split = "test" if data_cfg.split == "train" else "train"
        other.limit = None
        other.download = False
    try:
        return load_dataset(other)
    except (DatasetNotFoundError, ValueError, RuntimeError) as e:
        log.warning("no %s split of %s (%s): the classifier holds out a tenth of the data instead",
                    other.split, data_cfg.name, e)
        return None


def build_evaluator(cfg: DictConfig, data: Dataset) -> Evaluator:
    """The evaluator for the run's data: mixture scores for points, classifier scores for images."""
    m = cfg.metrics
    if not data.is_image:
        return MixtureEvaluator(data, m.n_samples)
    other = other_split(cfg.data)
    cpu = Dataset(data.name, data.x.cpu(), data.labels)
    classifier = load_or_train(data.name, cpu.x, cpu.labels, None if other is None else other.x,
                               None if other is None else other.labels, Path(m.cache_dir), m.classifier_steps)
    return ImageEvaluator(classifier, cpu, other, m.n_samples, m.nearest_k)
