"""A small CNN trained once per dataset on its training split; its penultimate layer is the
feature space of the image scores, its predictions give the class scores.

Datasets without labels (a folder of images) train it to predict which of four rotations was
applied to an image (Gidaris et al. 2018): a task that needs the shapes of the data itself, so the
features describe that data and not ImageNet's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from ganlab.run_folder import atomic_write

log = logging.getLogger(__name__)
FEATURES = 128
VERSION = 1  # bump when the network or its training changes: old caches are not reused


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


@dataclass
class TrainedClassifier:
    net: Classifier
    hash: str
    accuracy: float  # on the test split (or a held-out tenth for data without one)
    task: str  # "classes" or "rotation"
    folder: Path

    @property
    def meta(self) -> dict:
        return {"hash": self.hash, "test_accuracy": round(self.accuracy, 4), "task": self.task}


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
    if meta_path.exists() and weights.exists():
        try:
            net.load_state_dict(torch.load(weights, weights_only=True))
            meta = json.loads(meta_path.read_text())
            return TrainedClassifier(net, key, meta["test_accuracy"], task, folder)
        except (RuntimeError, ValueError, KeyError, OSError) as e:
            log.warning("classifier cache %s unreadable (%s); training it again", folder, e)

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
            "train_seconds": round(time.perf_counter() - start, 1)}
    atomic_write(meta_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=2) + "\n"))
    return TrainedClassifier(net, key, accuracy, task, folder)
