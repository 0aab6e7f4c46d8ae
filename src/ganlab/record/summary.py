"""summary.json: what a run is and how it ended, as one type.

The training job fills a Summary as it goes and writes it (atomically) at its start and end; every
command that reads a run reads it through `Summary.read` and the accessors below, so the file's
shape is known here alone. A Summary is the JSON object itself (a dict), for the fields that only
the report shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ganlab.record.run_folder import SUMMARY_JSON, RunFolderError, atomic_write


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class Summary(dict):
    """status: running | completed | diverged | interrupted | failed (set by the run; "not started"
    before the file exists); quality: the primary metric, best and final scores, the floor."""

    @classmethod
    def read(cls, folder: Path, strict: bool = True) -> "Summary":
        """A run's summary ({} before it exists). `strict`: a file that is not a JSON object raises
        RunFolderError naming it; otherwise it reads as empty."""
        path = Path(folder) / SUMMARY_JSON
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as e:
            if not strict:
                return cls()
            reason = f"{e.__class__.__name__}: {str(e).splitlines()[0][:120]}"
            raise RunFolderError(f"{path} cannot be read ({reason})") from None
        if not isinstance(data, dict):
            if not strict:
                return cls()
            raise RunFolderError(f"{path} does not hold a JSON object (found {type(data).__name__})")
        return cls(data)

    def write(self, folder: Path) -> None:
        atomic_write(Path(folder) / SUMMARY_JSON, lambda tmp: tmp.write_text(json.dumps(self, indent=2) + "\n"))

    @classmethod
    def mark_failed(cls, folder: Path, error: BaseException) -> None:
        """Record a failure that happened before training could write its own summary."""
        if cls.read(folder, strict=False).get("status") in (None, "running"):
            cls(status="failed", error=f"{error.__class__.__name__}: {error}").write(folder)

    # ------------------------------------------------------------------------ written by the run
    def in_stack(self, members: list[str], index: int) -> None:
        """Trained in a stack (training/stack.py) with these run folders, its own at `index`."""
        self["stack"] = {"members": members, "index": index}

    def start(self, now: str, name: str, device: str, precision: str, total_steps: int,
              resumed_at: Optional[int] = None) -> "Summary":
        """A run (re)starting: running, with what it runs on; a resume (or restart, at 0) is listed."""
        self.setdefault("started", now)
        self.update(name=name, status="running", device=device, precision=precision, total_steps=total_steps)
        self.pop("error", None)
        if resumed_at is not None:
            self.setdefault("resumed", []).append({"at": now, "step": resumed_at})
        return self

    def end(self, status: str, error: Optional[str] = None) -> None:
        self["status"] = status
        if error is not None:
            self["error"] = error

    def progress(self, epochs_done: int, steps_done: int, duration_s: float, final: dict, last_samples: Optional[str],
                 checkpoint: Optional[str], params: dict[str, int], diagnoses: list[dict],
                 quality: Optional[dict] = None) -> None:
        """How far the run got (written at its end, however it ended); `quality`: from quality_record()."""
        self.update(epochs_done=epochs_done, steps_done=steps_done, duration_s=round(duration_s, 2), final=final,
                    last_samples=last_samples, checkpoint=checkpoint, params=params, diagnoses=diagnoses)
        if quality is not None:
            self["quality"] = quality

    @staticmethod
    def quality_record(metric: str, final: dict, best: dict, best_vs_last: Optional[dict], tied_with_best: list,
                       best_checkpoint: Optional[str], floor: dict, scored_with: dict, eval_seconds: float,
                       duration_s: float, weakest_class: Optional[dict] = None) -> dict[str, Any]:
        """summary.json's "quality": the primary metric, the last and best evaluations, the floor."""
        quality = {"metric": metric, "final": final, "best": best, "best_vs_last": best_vs_last,
                   "tied_with_best": tied_with_best, "best_checkpoint": best_checkpoint, "floor": floor,
                   "scored_with": scored_with, "eval_seconds": round(eval_seconds, 2),
                   "eval_share": round(eval_seconds / duration_s, 3) if duration_s > 0 else None}
        if weakest_class:
            quality["weakest_class"] = weakest_class
        return quality

    # ------------------------------------------------------------------------ how it ran
    @property
    def status(self) -> str:
        return self.get("status", "not started")

    @property
    def error(self) -> str:
        return self.get("error", "")

    @property
    def diagnoses(self) -> list[str]:
        return [d["kind"] for d in self.get("diagnoses", []) if isinstance(d, dict) and "kind" in d]

    # -------------------------------------------------------------------------- quality
    @property
    def quality(self) -> dict[str, Any]:
        return _object(self.get("quality"))

    @property
    def metric(self) -> Optional[str]:
        return self.quality.get("metric")

    @property
    def best(self) -> dict[str, Any]:
        """The best evaluation: epoch, score (the primary metric), scores (every score), samples."""
        return _object(self.quality.get("best"))

    @property
    def best_scores(self) -> dict[str, Any]:
        return _object(self.best.get("scores"))

    @property
    def final_scores(self) -> dict[str, Any]:
        return _object(self.quality.get("final"))

    @property
    def floor(self) -> dict[str, Any]:
        """Each score of real images against real images: the best a generator can do."""
        return _object(self.quality.get("floor"))

    @property
    def yardstick(self) -> Optional[str]:
        return _object(self.quality.get("scored_with")).get("yardstick")

    @property
    def at_the_floor(self) -> dict[str, Any]:
        return _object(self.get("at_the_floor"))
