"""ganlab from Python (a notebook, a script): compose a config, train, resume, read runs and compare
them, with parts of your own given as classes or factories.

    import ganlab
    run = ganlab.train("trainer.epochs=5", generator=MyG, discriminator=MyD, seed=1)
    run.metrics            # metrics.csv as a pandas DataFrame
    ganlab.compare("outputs/sweeps/...")   # or runs: the verdict, shown as a table in Jupyter

A run trained here writes the same folder as `ganlab train` (.hydra/ included), so `ganlab compare`,
`report`, `resume` and `sample` work on it; `import ganlab` loads none of this until it is used.
"""

from __future__ import annotations

import functools
import html
import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

from omegaconf import DictConfig, OmegaConf, open_dict

from ganlab.config import ConfigError
from ganlab.record.catalog import RunRecord, find_runs
from ganlab.record.catalog import load_run as _load_record
from ganlab.record.run_folder import HYDRA_DIR, RunFolder, claim_new

log = logging.getLogger("ganlab")
Part = Union[type, Callable[..., Any], functools.partial, dict, str]
PART_KEYS = ("data", "generator", "discriminator", "loss", "optim")


def compose(*overrides: str, config_dir: Optional[Union[str, Path]] = None) -> DictConfig:
    """The config `ganlab train OVERRIDES` would run (with `--config-dir config_dir`)."""
    from ganlab.config import compose_train
    from ganlab.config.advice import advice

    fix = advice(list(overrides), check_keys=not config_dir)
    if fix:
        raise ConfigError(fix)
    extra = [f"hydra.searchpath=[file://{Path(config_dir).expanduser().resolve()}]"] if config_dir else []
    return compose_train(*extra, *overrides)


def target_of(part: Part) -> dict[str, Any]:
    """A part given from Python as a config node: a class or function (its import path), a
    functools.partial (with its keyword arguments) or a dict (a node as is)."""
    if isinstance(part, dict):
        return dict(part)
    kwargs: dict[str, Any] = {}
    if isinstance(part, functools.partial):
        part, kwargs = part.func, dict(part.keywords)
    if not callable(part):
        raise TypeError(f"{part!r} is not a class, a function or a functools.partial of one; give the class "
                        f"(ganlab builds it, and rebuilds it on resume), not an instance")
    return {"_target_": f"{part.__module__}.{part.__qualname__}", **kwargs}


def config(*overrides: Union[str, DictConfig], config_dir=None, **parts: Part) -> DictConfig:
    """A composed config with `parts` (generator=, discriminator=, loss=, optim=, data=) put in: a
    registered name (loss="hinge") composes as the override loss=hinge would, anything else is yours."""
    unknown = set(parts) - {"seed", *PART_KEYS}
    if unknown:
        raise TypeError(f"{', '.join(sorted(unknown))}= is not a part; give data=, generator=, discriminator=, loss=, "
                        f"optim= or seed=")
    wrong = next((k for k, v in parts.items() if k != "seed" and isinstance(v, (int, float))), None)
    if wrong:
        raise TypeError(f"{wrong}={parts[wrong]!r}: give an option's name ({wrong}='...'), a class, a function, a "
                        f"functools.partial of one, or a dict")
    if "seed" in parts and (not isinstance(parts["seed"], int) or isinstance(parts["seed"], bool)):
        raise TypeError(f"seed={parts['seed']!r}: give a whole number")
    named = [f"{k}={v}" for k, v in parts.items() if isinstance(v, (str, int))]  # seed=1, loss="hinge"
    given = next((o for o in overrides if isinstance(o, DictConfig)), None)
    if given is not None and named:
        raise TypeError(f"{', '.join(named)}: with a composed config, set these in it (or pass overrides instead)")
    cfg = given.copy() if given is not None else compose(*[o for o in overrides if isinstance(o, str)], *named,
                                                         config_dir=config_dir)
    with open_dict(cfg):
        for key, part in parts.items():
            if not isinstance(part, (str, int)):
                cfg[key] = OmegaConf.create(target_of(part))
    return cfg


def train(*overrides: Union[str, DictConfig], run_dir: Optional[Union[str, Path]] = None, config_dir=None,
          **parts: Part) -> "Run":
    """Train like `ganlab train OVERRIDES` into a new folder (default outputs/runs/<date>_<time>_<name>)
    and return the Run. Parts of your own: generator=MyG, loss=functools.partial(MyLoss, margin=1), ..."""
    from ganlab.training.job import run_job

    cfg = config(*overrides, config_dir=config_dir, **parts)
    folder = Path(run_dir) if run_dir else Path("outputs/runs") / f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{cfg.name}"
    claim_new(folder)
    (folder / HYDRA_DIR).mkdir(parents=True, exist_ok=True)
    (folder / HYDRA_DIR / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    given = [o for o in overrides if isinstance(o, str)] + [f"{k}={_override_value(v)}" for k, v in parts.items()]
    (folder / HYDRA_DIR / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(given)))
    try:
        run_job(cfg, folder)
    except ConfigError:
        RunFolder(folder).abandon()
        raise
    return load_run(folder)


def _override_value(part: Part) -> str:
    """How a part given from Python is named in overrides.yaml (what compare tells runs apart by)."""
    if isinstance(part, (str, int)):
        return str(part)
    node = target_of(part)
    if "_target_" not in node:
        return str(node.get("name"))
    args = ",".join(f"{k}:{v}" for k, v in node.items() if k != "_target_")
    return node["_target_"].rsplit(".", 1)[-1] + (f"({args})" if args else "")


def resume(run_dir: Union[str, Path], *overrides: str) -> "Run":
    """Continue a run from its last checkpoint, bit for bit (`ganlab resume RUN_DIR OVERRIDES`)."""
    from ganlab.training.resume import resume_run

    resume_run(Path(run_dir), list(overrides))
    return load_run(run_dir)


def load_run(path: Union[str, Path]) -> "Run":
    """The run in the folder `path`; FileNotFoundError or ValueError when there is none."""
    from ganlab.record.run_folder import is_run

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such run folder")
    if not is_run(path):
        raise ValueError(f"{path} is not a ganlab run folder (no summary.json, checkpoints/ or .hydra/)")
    return Run(_load_record(path))


def runs(folder: Union[str, Path] = "outputs") -> list["Run"]:
    """Every run under `folder`, newest first (`ganlab runs`)."""
    return [Run(r) for r in find_runs(Path(folder))]


def compare(*runs_or_folders: Union["Run", str, Path, Iterable["Run"]]) -> "Comparison":
    """Which change helped among these runs (or the runs under these folders): `ganlab compare`."""
    from ganlab.judging.compare import compare as compare_runs

    records: list[RunRecord] = []
    for item in runs_or_folders:
        if isinstance(item, Run):
            records.append(item.record)
        elif isinstance(item, (str, Path)):
            records += find_runs(Path(item))
        else:
            records += [r.record for r in item]
    return Comparison(compare_runs(records))


class Run:
    """One run folder: its config, summary, metrics and quality rows, grids and generator."""

    def __init__(self, record: RunRecord):
        self.record = record

    @property
    def path(self) -> Path:
        return self.record.path

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def summary(self) -> dict[str, Any]:
        return self.record.summary

    @property
    def config(self) -> DictConfig:
        return OmegaConf.load(self.path / HYDRA_DIR / "config.yaml")

    @property
    def metrics(self):
        """metrics.csv as a pandas DataFrame."""
        return _table(RunFolder(self.path).metrics_csv)

    @property
    def quality(self):
        """quality.csv, one row per evaluation, as a pandas DataFrame."""
        return _table(RunFolder(self.path).quality_csv)

    @property
    def grids(self) -> list[Path]:
        return sorted(RunFolder(self.path).samples.glob("*.png"))

    def generator(self, which: str = "best"):
        """The trained generator (checkpoints/best.pt, or "last"), in eval mode."""
        from ganlab.judging.sampling import load_generator

        return load_generator(self.path, which)[0]

    def headline(self) -> str:
        return self.record.headline()

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, {self.status}: {self.headline()})"

    def _repr_html_(self) -> str:
        from ganlab.judging.report import img_file

        shown = [self.path / "history.png", *self.grids[-1:]]
        return (f"<p><b>{html.escape(self.path.name)}</b> ({html.escape(self.status)}): "
                f"{html.escape(self.headline())}</p>" + "".join(img_file(p, p.stem) for p in shown if p.is_file()))


class Comparison:
    """compare's result: `.verdicts` in words, `.text` the table, `.as_json()`; a table in Jupyter."""

    def __init__(self, comparison):
        self.comparison = comparison

    @property
    def verdicts(self) -> list[str]:
        from ganlab.judging.verdict import verdicts

        return verdicts(self.comparison)

    @property
    def text(self) -> str:
        from ganlab.judging.verdict import format_comparison

        return format_comparison(self.comparison)

    def as_json(self) -> dict[str, Any]:
        return self.comparison.as_json()

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return (f"<div><b>{'<br>'.join(map(html.escape, self.verdicts))}</b></div>"
                f"<pre>{html.escape(self.text)}</pre>")


def _table(path: Path):
    import pandas

    return pandas.DataFrame(RunFolder(path.parent).read_columns(path) if path.is_file() else {})


__all__ = ["Comparison", "Run", "compare", "compose", "config", "load_run", "resume", "runs", "train"]
