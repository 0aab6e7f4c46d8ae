"""Offline quality scores, computed at every evaluation without any download.

Images: scores in the feature space of a small classifier trained once per dataset (see
classifier.py), with the real-vs-real floor (training vs test split) beside them. Mixtures: the
exact mode scores of VEEGAN / PacGAN and a sliced Wasserstein distance to the data.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Optional

import torch
from omegaconf import DictConfig, open_dict

from ganlab.config import ConfigError
from ganlab.parts.data import Dataset, DatasetNotFoundError, data_schema, load_dataset
from ganlab.parts.data.mixtures import sample_mixture
from ganlab.parts.registry import is_users_part
from ganlab.quality import scores
from ganlab.quality.classifier import TrainedClassifier, load_or_train, sealed, unsealed
from ganlab.quality.inception import SCORES as INCEPTION_SCORES
from ganlab.quality.inception import WEIGHTS_FILE, InceptionScores, find_weights
from ganlab.record.run_folder import atomic_write

log = logging.getLogger(__name__)


class Evaluator(ABC):
    primary: str  # the score to minimise: best.pt and the "quality" of a run
    floor: dict[str, float]  # the same scores between two real samples
    info: dict  # recorded with every result (how the scores were made)

    n_scored: int  # how many of the samples given to score() it uses

    @abstractmethod
    def score(self, samples: torch.Tensor) -> dict[str, float]:
        """Scores of generated samples (N, ...) in the data's space."""

    def noise(self, samples: torch.Tensor, draws: int = 20, seed: int = 0) -> dict[str, float]:
        """Every score's standard error over the sampling of the generated samples (bootstrap)."""
        return bootstrap(self.score, samples[: self.n_scored], draws, seed)


def bootstrap(score, used: torch.Tensor, draws: int, seed: int) -> dict[str, float]:
    """The standard deviation of each of score()'s values over `draws` resamples of `used`."""
    g = torch.Generator().manual_seed(seed)
    scored = [score(used[torch.randint(len(used), (len(used),), generator=g)]) for _ in range(draws)]
    return {k: float(torch.tensor([s[k] for s in scored], dtype=torch.float64).std()) for k in scored[0]}


def at_the_floor(scores: dict[str, float], noise: dict[str, float], floor: dict[str, float]) -> dict[str, list[str]]:
    """Which scores lie within their noise (2 standard errors) of the real-vs-real floor, and which do not:
    a run is "at the floor" only when every score is."""
    out: dict[str, list[str]] = {"at": [], "not": []}
    for key, value in scores.items():
        if key in floor and not key.endswith("_se") and key != "copy_rate":
            out["at" if abs(value - floor[key]) <= 2 * noise.get(key, 0.0) else "not"].append(key)
    return out


class ImageEvaluator(Evaluator):
    primary = "fd_classifier"

    def __init__(self, classifier: TrainedClassifier, data: Dataset, other: Optional[Dataset], n: int, k: int,
                 inception_weights: Optional[Path] = None, cache_dir: Path = Path(".")):
        self.classifier, self.k = classifier, k
        index = _subset_index(len(data.x), n, seed=0)
        reference = self.reference_images = data.x[index].cpu()  # training images, the real side
        self.reference_labels = None if data.labels is None else data.labels[index].cpu()
        features, _ = classifier.net.embed(reference)
        # Scale the space so the reference has unit RMS per dimension: kernels and distances stay O(1).
        self.scale = float(features.pow(2).mean().rsqrt())
        self.real_features = features * self.scale
        self.frechet = scores.FrechetReference(self.real_features)
        self.real_diversity = scores.diversity(self.real_features)
        # Generated samples are scored in the number the floor can be measured with: Frechet
        # distance is biased by the sample size, so a floor at another size would mislead.
        self.n_fake = self.n_scored = min(n, len(other)) if other is not None else min(n, len(reference) // 2)
        self.class_freq = None
        if classifier.task == "classes" and data.labels is not None:
            self.class_freq = torch.bincount(data.labels).double() / len(data.labels)
        self.copy_threshold = self._copy_threshold(other)
        self.info = {"feature_space": f"{classifier.task} classifier", **classifier.meta, "n_real": len(reference),
                     "n_generated": self.n_fake, "nearest_k": k,
                     "yardstick": f"{data.name}-{'x'.join(map(str, data.sample_shape))}-{classifier.hash[:12]}"
                                  f"-w{classifier.meta['weights'][:8]}"}  # the data and the weights
        self.floor = self._floor(other, n)
        self.inception = None
        if inception_weights is not None:  # the floor's real images: the other split, else another draw of these
            held_out = _subset(other.x if other is not None else data.x, self.n_fake, seed=1)
            self.inception = InceptionScores(inception_weights, reference, held_out, cache_dir, self.info["yardstick"])
            self.floor = {**self.floor, **self.inception.floor}
            self.info.update(self.inception.info)

    def score(self, samples: torch.Tensor) -> dict[str, float]:
        result = self.classifier_scores(samples)
        if self.inception is not None:
            result.update(self.inception.score(samples[: self.n_fake]))
        return result

    def noise(self, samples: torch.Tensor, draws: int = 20, seed: int = 0) -> dict[str, float]:
        """As Evaluator.noise; the Inception scores' from their features, computed once."""
        noise = bootstrap(self.classifier_scores, samples[: self.n_scored], draws, seed)
        if self.inception is not None:
            noise.update(self.inception.noise(samples[: self.n_fake], seed))
        return noise

    def classifier_scores(self, samples: torch.Tensor) -> dict[str, float]:
        features, predicted = self._embed(samples[: self.n_fake])
        result = {**self._scores(self.real_features, features, predicted),
                  "fd_classifier_se": scores.bootstrap_se(self.frechet.distance, features)}
        if self.copy_threshold is not None:
            result["copy_rate"] = float((self.nearest_training(features)[0] < self.copy_threshold).double().mean())
        return result

    def per_class(self, samples: torch.Tensor, labels: torch.Tensor, names: list[str]) -> list[dict]:
        """For a conditional G's samples of the classes `labels`: per class, how often the yardstick
        classifier sees the class asked for (accuracy) and the Frechet distance to the reference
        images of that class (fd). Needs a classifier trained on the classes."""
        features, predicted = self._embed(samples[: self.n_fake])
        labels = labels[: self.n_fake].cpu()
        rows = []
        for k, name in enumerate(names):
            mine, real = labels == k, self.real_features[self.reference_labels == k]
            n = int(mine.sum())
            fd = scores.frechet_distance(real, features[mine]) if n > 1 and len(real) > 1 else float("nan")
            accuracy = float((predicted[mine] == k).double().mean()) if n else float("nan")
            rows.append({"class": k, "name": name, "n": n, "accuracy": round(accuracy, 4), "fd": round(fd, 4)})
        return rows

    def closest_pairs(self, samples: torch.Tensor, k: int = 8) -> torch.Tensor:
        """The k generated samples nearest to a training image, each followed by that image (2k images)."""
        features, _ = self._embed(samples[: self.n_fake])
        nearest, which = self.nearest_training(features)
        order = nearest.argsort()[:k]
        pairs = [(samples[i].detach().float().cpu(), self.reference_images[which[i]]) for i in order.tolist()]
        return torch.stack([image for pair in pairs for image in pair])

    def nearest_training(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each sample's distance to its nearest training image (in the reference, drawn from the
        training split), and which image that is."""
        return torch.cdist(features.double(), self.real_features.double()).min(1)

    def _copy_threshold(self, other: Optional[Dataset]) -> Optional[float]:
        """The 5th percentile of held-out real images' distance to their nearest training image: real data
        not trained on lies nearer only 5% of the time, so a copy rate well above 0.05 means memorised images."""
        if other is None:
            return None
        held_out, _ = self._embed(_subset(other.x, self.n_fake, seed=2))
        return float(torch.quantile(self.nearest_training(held_out)[0], 0.05))

    def _embed(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, predicted = self.classifier.net.embed(images.detach().float().cpu())
        return features * self.scale, predicted

    def _scores(self, real: torch.Tensor, features: torch.Tensor, predicted: torch.Tensor) -> dict[str, float]:
        frechet = self.frechet if real is self.real_features else scores.FrechetReference(real)
        result = {"fd_classifier": frechet.distance(features),
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
        cached = unsealed(path)
        if cached is not None and cached.get("weights_sha256") == self.classifier.weights_sha256:
            return cached["floor"]
        if path.exists():
            log.warning("floor cache %s not used (altered, truncated or of other weights); measuring it again", path)
        if other is not None:
            floor = self._scores(self.real_features, *self._embed(_subset(other.x, self.n_fake, seed=1)))
        else:
            half = len(self.real_features) // 2
            with torch.no_grad():
                predicted = self.classifier.net.head(self.real_features[half:] / self.scale).argmax(1)
            floor = self._scores(self.real_features[:half], self.real_features[half:], predicted)
        floor = {key: round(float(value), 6) for key, value in floor.items()}
        payload = {"floor": floor, "weights_sha256": self.classifier.weights_sha256}
        atomic_write(path, lambda tmp: tmp.write_text(sealed(payload)))
        return floor


def class_accuracy(per_class: list[dict]) -> float:
    """The share of all samples the yardstick classifier sees as the class asked for."""
    return sum(c["n"] * c["accuracy"] for c in per_class) / max(1, sum(c["n"] for c in per_class))


def _subset_index(size: int, n: int, seed: int) -> torch.Tensor:
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:n]


def _subset(x: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n samples of x in a seeded random order, on the CPU."""
    return x[_subset_index(len(x), n, seed)].cpu()


class MixtureEvaluator(Evaluator):
    primary = "swd"

    def __init__(self, data: Dataset, n: int):
        self.modes, self.std = data.modes, data.std
        # The reference is drawn from the mixture itself with a fixed seed: the same for every run.
        self.reference = sample_mixture(self.modes, self.std, n, torch.Generator().manual_seed(0))
        self.n_scored = n
        self.swd = scores.SlicedWasserstein(self.reference)
        self.real_diversity = scores.diversity(self.reference)
        self.info = {"feature_space": "data space", "n_real": len(self.reference), "n_modes": len(self.modes),
                     "std": self.std, "yardstick": f"{data.name}-{len(self.modes)}modes-std{self.std}-n{n}"}
        fresh = sample_mixture(self.modes, self.std, len(self.reference), torch.Generator().manual_seed(1))
        self.floor = {key: round(value, 6) for key, value in self.score(fresh).items()}

    def score(self, samples: torch.Tensor) -> dict[str, float]:
        points = samples.detach().float().cpu()
        return {**scores.mode_scores(points, self.modes, self.std),
                "swd": self.swd.distance(points), "swd_se": scores.bootstrap_se(self.swd.distance, points),
                "diversity_ratio": scores.diversity(points) / max(self.real_diversity, 1e-12)}


def other_split(data_cfg: DictConfig) -> Optional[Dataset]:
    """The split the run does not train on (the test split, usually), when it can be read."""
    if is_users_part(data_cfg) or not data_schema(data_cfg).has_splits:
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


def yardstick_config(data_cfg: DictConfig) -> DictConfig:
    """The data the scores of every run on this dataset are measured against: its full training split
    at the run's image size and channels, whatever the run's subset (data.limit) or split. A user's
    data is its own yardstick."""
    if is_users_part(data_cfg):
        return data_cfg
    full = data_cfg.copy()
    with open_dict(full):
        full.limit = None
        if "split" in full:
            full.split = "train"
    return full


def build_evaluator(cfg: DictConfig, data: Dataset) -> Evaluator:
    """The evaluator for the run's data: mixture scores for points, classifier scores for images, in
    one yardstick per dataset (never the run's own subset, seed or settings)."""
    m = cfg.metrics
    if not data.is_image:
        if data.modes is None:
            raise ConfigError(f"data {data.name} holds points without known modes, which the point scores count; "
                              f"return a ganlab.parts.data.Dataset with modes and std, or set metrics.enabled=false")
        return with_primary(MixtureEvaluator(data, m.n_samples), m.primary)
    full = yardstick_config(cfg.data)
    if full != cfg.data:  # a subset (data.limit) or the test split: score against the full training split
        data = load_dataset(full)
    other = other_split(full)
    cpu = Dataset(data.name, data.x.cpu(), data.labels, data.classes)
    classifier = load_or_train(data.name, cpu.x, cpu.labels, None if other is None else other.x,
                               None if other is None else other.labels, Path(m.cache_dir), m.classifier_steps)
    return with_primary(ImageEvaluator(classifier, cpu, other, m.n_samples, m.nearest_k,
                                       find_weights(m.inception_weights), Path(m.cache_dir)), m.primary)


def yardstick_of(cfg: DictConfig) -> Optional[str]:
    """The yardstick a run of `cfg` is scored with on this machine (its summary's scored_with.yardstick), or
    None when it is not scored."""
    return build_evaluator(cfg, load_dataset(cfg.data, cfg.seed)).info["yardstick"] if cfg.metrics.enabled else None


def with_primary(evaluator: Evaluator, primary: Optional[str]) -> Evaluator:
    """The evaluator ranking by `primary` (metrics.primary) when given: one of its scores."""
    if primary:
        if primary not in evaluator.floor:
            hint = (f"; the Inception scores need the weights file: metrics.inception_weights=PATH ({WEIGHTS_FILE})"
                    if primary in INCEPTION_SCORES else "")
            raise ConfigError(f"metrics.primary={primary} is not a score of this run; its scores: "
                              f"{', '.join(sorted(evaluator.floor))}{hint}")
        evaluator.primary = primary
    return evaluator
