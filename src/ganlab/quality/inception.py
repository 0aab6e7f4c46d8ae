"""Inception FID, KID and IS, the scores papers report, through torch-fidelity, when the user has the
Inception weights on disk: `metrics.inception_weights=PATH`, or the file where torch-fidelity keeps it
(the torch hub cache). Without the file nothing changes and nothing is downloaded.

Generated and real images pass through torch-fidelity's own Inception (its TF-1 compatible resize to
299 x 299) as uint8 RGB; KID (its unbiased polynomial-kernel estimator over subsets) and IS come from
its functions; FID is ganlab's Frechet distance on those features (quality/scores.py: symmetric
eigenvalues, seconds where torch-fidelity's general ones take half a minute on a CPU), equal to
torch-fidelity's within 1e-4 (tests/test_inception.py). The real features, and the real-vs-real floor,
are cached once per dataset and weights file.
"""

from __future__ import annotations

import io
import logging
import pickle
import zipfile
from pathlib import Path
from typing import Optional

import torch

from ganlab.parts.registry import ConfigError
from ganlab.quality.classifier import file_sha256
from ganlab.quality.scores import FrechetReference
from ganlab.record.checkpoints import refused_global
from ganlab.record.run_folder import atomic_write

log = logging.getLogger(__name__)

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's Inception (pt_inception-2015-12-05)
SCORES = ("fid_inception", "kid_inception", "is_inception")
NOISE_DRAWS = 5  # bootstrap draws for the standard errors (each FID costs a 2048 x 2048 eigendecomposition)
KID_SUBSETS = 10  # torch-fidelity's default is 100; the same estimate, a tenth of the time (2048-D kernels)
BATCH = 50


def find_weights(configured: Optional[str]) -> Optional[Path]:
    """The Inception weights file: the one configured (which must exist), else torch-fidelity's copy in the
    torch hub cache if it is there, else None."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ConfigError(f"metrics.inception_weights={configured}: no such file; give the path of {WEIGHTS_FILE} "
                              f"(torch-fidelity's Inception weights), or leave it null for no Inception scores")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    return cached if cached.is_file() else None


def load_weights(path: Path) -> io.BytesIO:
    """The weights file read as plain tensors (torch.load weights_only=True: a file crafted to run code is
    refused), handed on as a buffer of those tensors alone; ConfigError in one line for anything else."""
    where = f"metrics.inception_weights={path}"
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise ConfigError(f"{where}: not a file of plain tensors, refused (not a complete torch.save archive); give "
                          f"torch-fidelity's {WEIGHTS_FILE}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickled objects, random bytes, a cut file
        reason = (isinstance(e, pickle.UnpicklingError) and refused_global(e)) or str(e).strip()[:160].split("\n")[0]
        raise ConfigError(f"{where}: not a file of plain tensors, refused ({type(e).__name__}: {reason}); give "
                          f"torch-fidelity's {WEIGHTS_FILE}") from None
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ConfigError(f"{where}: holds a {type(state).__name__}, not a network's state dict (names -> tensors); "
                          f"give torch-fidelity's {WEIGHTS_FILE}")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def inception_extractor(path: Path):
    """torch-fidelity's Inception with the weights at `path`, checked as data first (load_weights) and
    then by the network itself (every key and shape)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    weights = load_weights(path)
    try:
        return FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                           feature_extractor_weights_path=weights)
    except RuntimeError as e:  # load_state_dict: missing or unexpected keys, or shapes that differ
        detail = " ".join(line.strip() for line in str(e).splitlines()[1:])[:200]
        raise ConfigError(f"metrics.inception_weights={path}: not the weights of torch-fidelity's Inception "
                          f"({detail}); give {WEIGHTS_FILE}") from None


def as_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1], (N, 1 or 3, H, W), as the uint8 RGB torch-fidelity's extractor takes."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class InceptionScores:
    def __init__(self, weights: Path, reference: torch.Tensor, other: torch.Tensor, cache_dir: Path, yardstick: str):
        """`reference`: the real images generated ones are scored against; `other`: as many real images
        the run did not train on (or the reference's second half), for the floor."""
        sha = file_sha256(weights)
        self.extractor = inception_extractor(weights)
        self.info = {"inception_weights": str(weights), "inception_sha256": sha[:12]}
        path = Path(cache_dir).expanduser() / "inception" / f"{yardstick}-n{len(reference)}-{sha[:12]}.pt"
        cached = self._load(path, sha)
        if cached is None:
            log.info("Inception features of %d real images (once per dataset and weights file; cached in %s)",
                     len(reference), path)
            self.real = self.features(reference)[0]
            self.frechet = FrechetReference(self.real)
            floor = {k: round(v, 6) for k, v in self.score(other).items()}
            cached = {"weights_sha256": sha, "real": self.real, "floor": floor}
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda tmp: torch.save(cached, tmp))
        else:
            self.real = cached["real"]
            self.frechet = FrechetReference(self.real)
        self.floor = cached["floor"]

    @staticmethod
    def _load(path: Path, sha: str) -> Optional[dict]:
        if not path.exists():
            return None
        try:
            cached = torch.load(path, weights_only=True)
            if cached["weights_sha256"] == sha and cached["real"].dim() == 2:
                return cached
        except Exception:  # truncated or altered: measured again
            pass
        log.warning("Inception cache %s not used (damaged or of other weights); measuring it again", path)
        return None

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool features (N, 2048) and unbiased logits (N, 1008) of images in [-1, 1]."""
        pool, logits = [], []
        with torch.no_grad():
            for batch in as_uint8_rgb(images).split(BATCH):
                f, l = self.extractor(batch)
                pool.append(f)
                logits.append(l)
        return torch.cat(pool), torch.cat(logits)

    def score(self, images: torch.Tensor) -> dict[str, float]:
        return self._scores(*self.features(images))

    def noise(self, images: torch.Tensor, seed: int = 0) -> dict[str, float]:
        """Each score's standard error over the sampling of the generated images (bootstrap on features)."""
        pool, logits = self.features(images)
        g = torch.Generator().manual_seed(seed)
        draws = []
        for _ in range(NOISE_DRAWS):
            index = torch.randint(len(pool), (len(pool),), generator=g)
            draws.append(self._scores(pool[index], logits[index]))
        return {k: float(torch.tensor([d[k] for d in draws], dtype=torch.float64).std()) for k in SCORES}

    def _scores(self, pool: torch.Tensor, logits: torch.Tensor) -> dict[str, float]:
        from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, isc_features_to_metric
        from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

        # generated first, real second, as torch-fidelity's input1 and input2 (KID's subsets depend on the order)
        kid = kid_features_to_metric(pool, self.real, kid_subsets=KID_SUBSETS, verbose=False,
                                     kid_subset_size=min(1000, len(pool), len(self.real)))[KEY_METRIC_KID_MEAN]
        return {"fid_inception": self.frechet.distance(pool), "kid_inception": kid,
                "is_inception": isc_features_to_metric(logits)[KEY_METRIC_ISC_MEAN]}
