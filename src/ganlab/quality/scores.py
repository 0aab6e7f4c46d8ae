"""Distribution scores between real and generated samples in a feature space (pure functions).

Frechet distance (Heusel et al. 2017), KID (Binkowski et al. 2018), and precision, recall,
density, coverage (Naeem et al. 2020). Inputs are (N, D) feature tensors; everything runs in
float64 on the CPU.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

# The scores where a higher value is better; every other score is better lower. The one place that
# says so: the best checkpoint, compare's ranking and agreement, and every figure's title read it.
HIGHER_IS_BETTER = frozenset({"precision", "recall", "density", "coverage", "classes_covered", "hq_share",
                              "modes_covered", "accuracy", "is_inception"})


def better(name: str) -> str:
    """'lower is better' or 'higher is better', for titles and text."""
    return f"{'higher' if name in HIGHER_IS_BETTER else 'lower'} is better"


def as_loss(name: str, value: float) -> float:
    """The score oriented so that lower is better (ranking and differences use it)."""
    return -value if name in HIGHER_IS_BETTER else value


class FrechetReference:
    """The real side of the Frechet distance, fitted once: the mean, the trace of the covariance S_r and
    its square root as S_r^(1/2) = V^T diag(s) V (V: k orthonormal rows, k = min(n, d)). With fewer
    samples than dimensions (Inception's 2048), everything stays in the k- or n-dimensional span of the
    samples: exact, and a 2048 x 2048 eigendecomposition is never formed."""

    def __init__(self, real: torch.Tensor):
        real = real.double()
        self.mu = real.mean(0)
        centred = (real - self.mu) / math.sqrt(max(len(real) - 1, 1))  # S_r = centred^T centred
        self.trace = float(centred.pow(2).sum())
        if len(real) < real.shape[1]:
            _, singular, self.basis = torch.linalg.svd(centred, full_matrices=False)
            self.root_values = singular  # the square roots of S_r's eigenvalues
        else:
            values, vectors = torch.linalg.eigh(centred.T @ centred)
            self.basis, self.root_values = vectors.T, values.clamp(min=0).sqrt()

    def distance(self, fake: torch.Tensor) -> float:
        """||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) of Gaussians fitted to the features."""
        fake = fake.double()
        mu_f = fake.mean(0)
        centred = (fake - mu_f) / math.sqrt(max(len(fake) - 1, 1))  # S_f = centred^T centred
        # Tr((S_r S_f)^(1/2)) = Tr((S_r^(1/2) S_f S_r^(1/2))^(1/2)) = the sum of the singular values of
        # centred V^T diag(s): the nonzero eigenvalues of G^T G and G G^T are the same.
        g = (centred @ self.basis.T) * self.root_values
        if g.shape[0] > g.shape[1]:
            root_trace = torch.linalg.eigvalsh(g.T @ g).clamp(min=0).sqrt().sum()
        else:
            root_trace = torch.linalg.svdvals(g).sum()
        value = (self.mu - mu_f).pow(2).sum() + self.trace + centred.pow(2).sum() - 2 * root_trace
        return max(float(value), 0.0)


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    return FrechetReference(real).distance(fake)


def bootstrap_se(statistic: Callable[[torch.Tensor], float], samples: torch.Tensor, draws: int = 20,
                 seed: int = 0) -> float:
    """The standard error of statistic(samples) over the sampling of `samples`: the standard
    deviation of the statistic over `draws` resamples with replacement (Efron's bootstrap)."""
    g = torch.Generator().manual_seed(seed)
    values = [statistic(samples[torch.randint(len(samples), (len(samples),), generator=g)]) for _ in range(draws)]
    return float(torch.tensor(values, dtype=torch.float64).std())


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, subsets: int = 10,
                              subset_size: int = 1000, seed: int = 0) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (x.y/d + 1)^3, averaged over random subsets."""
    real, fake = real.double(), fake.double()
    m = min(subset_size, len(real), len(fake))
    g = torch.Generator().manual_seed(seed)
    dim, total = real.shape[1], 0.0
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=g)[:m]]
        y = fake[torch.randperm(len(fake), generator=g)[:m]]
        kxx, kyy, kxy = ((a @ b.T / dim + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        off = lambda k: (k.sum() - k.diagonal().sum()) / (m * (m - 1))  # noqa: E731
        total += float(off(kxx) + off(kyy) - 2 * kxy.mean())
    return total / subsets


def _kth_neighbour_distance(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row."""
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1: the row itself is at distance 0


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage with k-nearest-neighbour balls (Naeem et al. 2020)."""
    real, fake = real.double(), fake.double()
    real_radii, fake_radii = _kth_neighbour_distance(real, k), _kth_neighbour_distance(fake, k)
    d = torch.cdist(real, fake)  # (N_real, N_fake)
    inside_real = d <= real_radii[:, None]  # fake j inside the ball of real i
    return {
        "precision": float(inside_real.any(dim=0).double().mean()),
        "recall": float((d <= fake_radii[None, :]).any(dim=1).double().mean()),
        "density": float(inside_real.double().sum() / (k * fake.shape[0])),
        "coverage": float((d.min(dim=1).values <= real_radii).double().mean()),
    }


def diversity(features: torch.Tensor, max_n: int = 1000) -> float:
    """Mean pairwise distance between samples (of the first max_n): low when samples look alike."""
    x = features[:max_n].double()
    n = len(x)
    return float(torch.cdist(x, x).sum() / (n * (n - 1))) if n > 1 else 0.0


def class_scores(predicted: torch.Tensor, real_frequencies: torch.Tensor) -> dict[str, float]:
    """Classes covered (predicted at least a tenth as often as in the data) and KL(generated || real)."""
    n_classes = len(real_frequencies)
    gen = torch.bincount(predicted, minlength=n_classes).double() / len(predicted)
    real = real_frequencies.double()
    covered = int((gen >= 0.1 * real).sum())
    nonzero = gen > 0
    kl = float((gen[nonzero] * (gen[nonzero] / real[nonzero]).log()).sum())
    return {"classes_covered": covered, "class_kl": kl}


def mode_scores(points: torch.Tensor, modes: torch.Tensor, std: float) -> dict[str, float]:
    """VEEGAN / PacGAN mixture scores: a sample is high quality within 3 std of its nearest mode;
    modes covered = modes with at least one high-quality sample; KL of the high-quality samples'
    mode histogram to uniform (log K, its maximum, when there is no high-quality sample)."""
    dist = torch.cdist(points.double(), modes.double())
    nearest, which = dist.min(dim=1)
    good = nearest <= 3 * std
    k = len(modes)
    hist = torch.bincount(which[good], minlength=k).double()
    if good.any():
        p = hist / hist.sum()
        kl = float((p[p > 0] * (p[p > 0] * k).log()).sum())
    else:
        kl = math.log(k)
    return {"modes_covered": int((hist > 0).sum()), "hq_share": float(good.double().mean()), "mode_kl": kl}


class SlicedWasserstein:
    """Mean W1 over random 1-D projections (sliced Wasserstein distance) to a fixed reference, whose
    sorted projections are computed once; exact W1 for 1-D samples."""

    def __init__(self, reference: torch.Tensor, projections: int = 256, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.dirs = torch.randn(reference.shape[1], projections, generator=g, dtype=torch.float64)
        self.dirs /= self.dirs.norm(dim=0, keepdim=True)
        self.reference = reference.double() @ self.dirs

    def distance(self, samples: torch.Tensor) -> float:
        n = min(len(self.reference), len(samples))
        ref = self.reference[:n].sort(dim=0).values
        return float((ref - (samples[:n].double() @ self.dirs).sort(dim=0).values).abs().mean())


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 256, seed: int = 0) -> float:
    return SlicedWasserstein(a, projections, seed).distance(b)
