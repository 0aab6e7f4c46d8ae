"""A small CNN trained once per dataset on its training split; its penultimate layer is the
feature space of the image scores, its predictions give the class scores.

Trained here, its weights depend on the processor and the number of threads (1,500 Adam steps in another
rounding order end elsewhere: Fashion-MNIST's trained with 2 threads scored the same generators 1-4% higher
than with 1, experiments/yardstick_spread/), so the datasets of ganlab's own studies ship their yardstick's
weights (SHIPPED): every machine scores Fashion-MNIST and the digits with the same network, and a run's
`scored_with.yardstick` names the weights as well as the data.

Datasets without labels (a folder of images) train it to predict which of four rotations was
applied to an image (Gidaris et al. 2018): a task that needs the shapes of the data itself, so the
features describe that data and not ImageNet's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ganlab.record.run_folder import atomic_write

log = logging.getLogger(__name__)
FEATURES = 128
VERSION = 1  # bump when the network or its training changes: old caches are not reused
SHIPPED = Path(__file__).with_name("yardsticks")  # <cache folder name>/classifier.{pt,json}, as the cache holds them


class Classifier(nn.Module):
    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(128 * 4, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (N, 128) and predicted classes (N,) of images in [-1, 1], on the CPU."""
        self.eval()
        device = next(self.parameters()).device
        feats = [self.body(part.to(device)).float() for part in x.split(batch)]
        f = torch.cat(feats)
        return f.cpu(), self.head(f).argmax(1).cpu()


def rotations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image in 4 rotations, labelled 0..3: the self-supervised task for unlabelled data."""
    images = torch.cat([torch.rot90(x, r, dims=(2, 3)) for r in range(4)])
    return images, torch.arange(4).repeat_interleave(len(x))


def data_hash(x: torch.Tensor, labels: Optional[torch.Tensor]) -> str:
    h = hashlib.sha256(f"v{VERSION}:{tuple(x.shape)}".encode())
    h.update(x.detach().cpu().contiguous().numpy().tobytes())
    if labels is not None:
        h.update(labels.cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def weights_hash(net: nn.Module) -> str:
    """A hash of the network's weights (their values: the bytes of a saved file also hold its name)."""
    h = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def sealed(payload: dict) -> str:
    """`payload` as JSON with the hash of its contents, checked by `unsealed` when read back."""
    return json.dumps({**payload, "sha256": _digest(payload)}, indent=2) + "\n"


def unsealed(path: Path) -> Optional[dict]:
    """The payload of a file written by `sealed`; None for a missing, truncated, altered or foreign file."""
    try:
        found = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or "sha256" not in found:
        return None
    payload = {k: v for k, v in found.items() if k != "sha256"}
    return payload if _digest(payload) == found["sha256"] else None


@dataclass
class TrainedClassifier:
    net: Classifier
    hash: str
    accuracy: float  # on the test split (or a held-out tenth for data without one)
    task: str  # "classes" or "rotation"
    folder: Path
    weights_sha256: str  # of classifier.pt: the floor files cached beside it are bound to it

    @property
    def meta(self) -> dict:
        return {"hash": self.hash, "weights": weights_hash(self.net), "test_accuracy": round(self.accuracy, 4),
                "task": self.task}


def _fit(net: Classifier, x: torch.Tensor, y: torch.Tensor, steps: int, seed: int, desc: str) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for _ in tqdm(range(steps), desc=desc, unit="step", leave=False, disable=None):  # None: only on a terminal
        idx = torch.randint(len(x), (min(128, len(x)),), generator=g)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@torch.no_grad()
def _accuracy(net: Classifier, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((net.embed(x)[1] == y).double().mean())


def load_or_train(name: str, train_x: torch.Tensor, train_y: Optional[torch.Tensor],
                  test_x: Optional[torch.Tensor], test_y: Optional[torch.Tensor],
                  cache_dir: Path, steps: int) -> TrainedClassifier:
    """The classifier of this dataset from the cache, trained and cached first if it is not there."""
    key = data_hash(train_x, train_y)
    folder = Path(cache_dir).expanduser() / f"{name}-{'x'.join(map(str, train_x.shape[1:]))}-{key}-s{steps}"
    task = "classes" if train_y is not None else "rotation"
    n_classes = int(train_y.max()) + 1 if train_y is not None else 4
    net = Classifier(train_x.shape[1], n_classes)
    meta_path, weights = folder / "classifier.json", folder / "classifier.pt"
    _use_shipped(folder, meta_path, weights)
    if meta_path.exists() or weights.exists():
        cached = _load_cached(net, meta_path, weights)
        if cached is not None:
            return TrainedClassifier(net, key, cached["test_accuracy"], task, folder, cached["weights_sha256"])

    if train_y is None:  # hold out a tenth of the images to measure the rotation task
        cut = max(1, len(train_x) // 10)
        test_x, train_x = train_x[:cut], train_x[cut:]
        train_x, train_y = rotations(train_x)
        test_x, test_y = rotations(test_x)
    elif test_x is None:
        cut = max(1, len(train_x) // 10)
        test_x, test_y, train_x, train_y = train_x[:cut], train_y[:cut], train_x[cut:], train_y[cut:]
    start = time.perf_counter()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = Classifier(train_x.shape[1], n_classes)
        _fit(net, train_x, train_y, steps, seed=0, desc=f"classifier for {name}")
    accuracy = _accuracy(net, test_x, test_y)
    log.info("trained the %s classifier for %s in %.1f s: test accuracy %.4f (cached in %s)",
             task, name, time.perf_counter() - start, accuracy, folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(weights, lambda tmp: torch.save(net.state_dict(), tmp))
    meta = {"dataset": name, "hash": key, "task": task, "test_accuracy": round(accuracy, 4), "steps": steps,
            "train_seconds": round(time.perf_counter() - start, 1), "weights_sha256": file_sha256(weights)}
    atomic_write(meta_path, lambda tmp: tmp.write_text(sealed(meta)))
    return TrainedClassifier(net, key, accuracy, task, folder, meta["weights_sha256"])


def _use_shipped(folder: Path, meta_path: Path, weights: Path) -> None:
    """Put the shipped yardstick of this dataset (when ganlab has one, whole) in its cache folder, in place of
    a classifier trained on this machine (the floors measured with that one go with it)."""
    shipped = unsealed(SHIPPED / folder.name / meta_path.name)
    if shipped is None or shipped.get("weights_sha256") == (unsealed(meta_path) or {}).get("weights_sha256"):
        return
    if meta_path.exists():
        log.info("classifier cache %s: replaced by the yardstick ganlab ships for this dataset (the same weights "
                 "on every machine)", folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("floor-*.json"):
        stale.unlink()
    atomic_write(weights, lambda tmp: shutil.copyfile(SHIPPED / folder.name / weights.name, tmp))
    atomic_write(meta_path, lambda tmp: shutil.copyfile(SHIPPED / folder.name / meta_path.name, tmp))


def _load_cached(net: Classifier, meta_path: Path, weights: Path) -> Optional[dict]:
    """The cached classifier's metadata, its weights loaded into `net`, when both files are whole and
    the weights are the ones the metadata recorded; else None (with one line saying why), and the
    classifier is trained again: a cache that changed is never used."""
    meta = unsealed(meta_path)
    try:
        if meta is None or not weights.is_file() or meta.get("weights_sha256") != file_sha256(weights):
            raise ValueError("its files do not match the hashes recorded when they were written: corrupted, "
                             "truncated, from another ganlab, or not ganlab's")
        net.load_state_dict(torch.load(weights, weights_only=True))
        return meta
    except Exception as e:  # any unreadable or foreign file (a crafted pickle too: weights_only refuses code)
        log.warning("classifier cache %s not used (%s); training it again", meta_path.parent, e)
        return None
