"""Plain-words diagnoses of a run from its measurements, each with the evidence and what to try.

Checked as rows arrive (metrics.csv rows and quality evaluations); each kind is reported once,
when it starts.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Optional

WINDOW = 10  # metrics rows a condition must hold over ("for a while")
COPY_RATE_ALARM = 0.2  # copy rate that diagnoses memorisation: 4x that of held-out real images (0.05)


@dataclass
class Diagnosis:
    kind: str  # d_overpowering | vanishing_g_gradients | oscillation | late_degradation | memorisation |
    # mode_collapse | divergence
    step: int
    epoch: float
    message: str
    evidence: str
    suggestion: str  # overrides to try

    def line(self) -> str:
        return f"{self.message} (step {self.step}: {self.evidence}). Try: {self.suggestion}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if v == v and abs(v) != float("inf")]


class Diagnostician:
    def __init__(self, warmup_steps: int = 0, window: int = WINDOW, critic: bool = False):
        self.warmup_steps, self.window = warmup_steps, window  # D wins easily in the first steps: normal
        # A Wasserstein critic is meant to separate real from fake as well as it can: that is no failure.
        self.critic = critic
        self.rows: list[dict] = []
        self.evals: list[dict] = []
        self.found: dict[str, Diagnosis] = {}

    def _new(self, diagnosis: Optional[Diagnosis]) -> list[Diagnosis]:
        if diagnosis is None or diagnosis.kind in self.found:
            return []
        self.found[diagnosis.kind] = diagnosis
        return [diagnosis]

    # ------------------------------------------------------------------ from metrics rows
    def on_metrics(self, row: dict) -> list[Diagnosis]:
        self.rows.append(row)
        return (self._new(self.d_overpowering()) + self._new(self.vanishing_g_gradients())
                + self._new(self.oscillation()))

    def _settled(self, n: int) -> bool:
        """At least n rows past the warm-up (the first steps, kept as the reference of 'early')."""
        return len(self.rows) >= n and self.rows[-n]["step"] > self.warmup_steps

    def _recent(self, key: str, n: int) -> list[float]:
        return [float(r[key]) for r in self.rows[-n:]]

    def d_overpowering(self) -> Optional[Diagnosis]:
        if self.critic or not self._settled(self.window):
            return None
        real, fake = self._recent("acc_real", self.window), self._recent("acc_fake", self.window)
        if min(real) > 0.95 and min(fake) > 0.95:
            first = self.rows[-self.window]
            return self._diagnosis(
                "d_overpowering", "D is overpowering G: it tells real from generated almost perfectly",
                f"acc_real >= {min(real):.2f} and acc_fake >= {min(fake):.2f} in every row since step {first['step']}",
                "optim.d_lr_mult=0.5 (or optim.g_lr_mult=2), loss=label_smoothing, discriminator.dropout=0.3")
        return None

    def vanishing_g_gradients(self) -> Optional[Diagnosis]:
        if len(self.rows) < 2 * self.window or not self._settled(self.window):
            return None
        early = statistics.median(_finite([float(r["grad_norm_g"]) for r in self.rows[:self.window]]) or [0])
        recent = statistics.median(_finite(self._recent("grad_norm_g", self.window)) or [0])
        if recent < 1e-6 or (early > 0 and recent < 0.01 * early):
            return self._diagnosis(
                "vanishing_g_gradients", "G's gradients have vanished: G has almost stopped learning",
                f"median grad_norm_g {recent:.2g} over the last {self.window} rows, {early:.2g} at the start",
                "loss=bce_logits (no saturating sigmoid), loss=wgan_gp discriminator.norm=layer, optim.d_lr_mult=0.5")
        return None

    def oscillation(self) -> Optional[Diagnosis]:
        if not self._settled(3 * self.window):
            return None
        regimes = [("D" if v > 0.8 else "G") for v in self._recent("acc_fake", 3 * self.window) if v > 0.8 or v < 0.2]
        swings = sum(a != b for a, b in zip(regimes, regimes[1:]))
        if swings >= 4:
            return self._diagnosis(
                "oscillation", "D and G take turns winning instead of converging: training oscillates",
                f"acc_fake swung between > 0.8 and < 0.2 {swings} times in the last {3 * self.window} rows",
                "a lower optim.lr (e.g. optim.lr=5e-5), optim.betas=[0.5,0.999], loss=wgan_gp discriminator.norm=layer")
        return None

    # ----------------------------------------------------------------- from quality scores
    def on_quality(self, row: dict) -> list[Diagnosis]:
        self.evals.append(row)
        return self._new(self.mode_collapse()) + self._new(self.memorisation())

    def degradation(self, best: dict, last: dict, epochs: int) -> list[Diagnosis]:
        """At the end: quality got worse, beyond its measurement noise, after a best in the first two
        thirds of training ("best at epoch 25; 40% worse since")."""
        metric = best.get("metric")
        if not metric or metric not in last or best["epoch"] > 2 * epochs / 3 or best["score"] <= 0:
            return []
        noise = 2 * math.hypot(best["scores"].get(f"{metric}_se", 0.0), last.get(f"{metric}_se", 0.0))
        if last[metric] - best["score"] <= noise:
            return []
        worse = last[metric] / best["score"] - 1
        return self._new(Diagnosis(
            "late_degradation", int(last["step"]), float(last["epoch"]),
            "Quality got worse late in training: the last samples are worse than the best ones",
            f"best {metric} {best['score']:.4g} at epoch {best['epoch']}; {worse:.0%} worse since "
            f"({last[metric]:.4g} at epoch {last['epoch']}, beyond the measurement noise {noise:.2g})",
            "use checkpoints/best.pt (ganlab sample RUN uses it), fewer epochs, a lower optim.lr"))

    def memorisation(self) -> Optional[Diagnosis]:
        last = self.evals[-1]
        if last.get("copy_rate", 0.0) < COPY_RATE_ALARM:
            return None
        return Diagnosis("memorisation", int(last["step"]), float(last["epoch"]),
                         "G copies training images: its samples lie nearer to training images than held-out real "
                         "images do", f"copy rate {last['copy_rate']:.2f} against 0.05 for held-out real images",
                         "more data (no data.limit), fewer epochs, a smaller D (discriminator.width)")

    def mode_collapse(self) -> Optional[Diagnosis]:
        if len(self.evals) < 2:
            return None
        last_two = self.evals[-2:]
        covered_key = "modes_covered" if "modes_covered" in last_two[-1] else "classes_covered"
        evidence = []
        if all(e.get("diversity_ratio", 1.0) < 0.5 for e in last_two):
            evidence.append(f"samples are too alike: their spread is {last_two[-1]['diversity_ratio']:.2f} "
                            f"of the data's in the last two evaluations")
        if covered_key in last_two[-1]:
            best = max(self.evals, key=lambda e: e[covered_key])
            if best[covered_key] > 0 and all(e[covered_key] <= 0.75 * best[covered_key] for e in last_two):
                evidence.append(f"{covered_key.replace('_', ' ')} fell to {last_two[-1][covered_key]:.0f} "
                                f"from {best[covered_key]:.0f} at epoch {best['epoch']}")
        if not evidence:
            return None
        return Diagnosis("mode_collapse", int(last_two[-1]["step"]), float(last_two[-1]["epoch"]),
                         "G has collapsed onto a few modes: it keeps producing the same few kinds of samples",
                         "; ".join(evidence),
                         "discriminator.pack=2 (PacGAN; experiments/mode_collapse_remedies), loss=wgan_gp "
                         "discriminator.norm=layer (or +exp=wgan_gp_ring on the ring), a lower optim.lr")

    # -------------------------------------------------------------------------- divergence
    def divergence(self, step: int, epoch: float, what: str, last_good: Optional[str]) -> Diagnosis:
        kept = f"last good checkpoint: {last_good}" if last_good else "no checkpoint had been written yet"
        diagnosis = Diagnosis("divergence", step, epoch,
                              "Training diverged: the numbers became non-finite and the run stopped",
                              f"{what}; {kept}", "a lower optim.lr (e.g. optim.lr=5e-5), loss=wgan_gp or loss=hinge")
        self.found.setdefault("divergence", diagnosis)
        return diagnosis

    def _diagnosis(self, kind: str, message: str, evidence: str, suggestion: str) -> Diagnosis:
        last = self.rows[-1]
        return Diagnosis(kind, int(last["step"]), float(last["epoch"]), message, evidence, suggestion)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "evals": self.evals, "found": self.as_list()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows, self.evals = list(state["rows"]), list(state["evals"])
        self.found = {d["kind"]: Diagnosis(**d) for d in state["found"]}

    def as_list(self) -> list[dict[str, Any]]:
        return [d.as_dict() for d in self.found.values()]
