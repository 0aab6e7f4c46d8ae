"""Generator EMA: the average is what it should be, it is what the run samples and scores, and a
resumed run continues it bit for bit."""

from __future__ import annotations

import json

import pytest
import torch

from ganlab.config import ConfigError, validate
from ganlab.parts.registry import GENERATORS
from ganlab.judging.sampling import load_generator
from ganlab.training.ema import GeneratorEMA
from ganlab.training.job import run_job
from tests.conftest import TINY, make_cfg, whole_and_resumed

EMA = ["trainer.ema_decay=0.9", "trainer.ema_start=2"]


def test_the_average_follows_its_formula_and_copies_before_it_starts():
    cfg = make_cfg("generator.width=8")
    g = GENERATORS.build(cfg.generator, (1, 8, 8))
    ema = GeneratorEMA(g, decay=0.9, start=1)
    first = [p.detach().clone() for p in g.parameters()]
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    ema.update(g, step=1)  # before the start: a copy
    assert all(torch.equal(e, p) for e, p in zip(ema.model.parameters(), g.parameters()))
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    ema.update(g, step=2)  # 0.9 * (first + 1) + 0.1 * (first + 2)
    assert all(torch.allclose(e, f + 1.1) for e, f in zip(ema.model.parameters(), first))


def test_ema_decay_must_be_below_one():
    with pytest.raises(ConfigError, match=r"trainer.ema_decay=1.0 is out of range"):
        validate(make_cfg("trainer.ema_decay=1.0"))


def test_a_run_with_ema_samples_scores_and_keeps_the_ema_generator(tmp_path):
    run = tmp_path / "run"
    summary = run_job(make_cfg(*TINY, *EMA), run)
    assert summary["status"] == "completed" and summary["quality"]["scored_with"]["generator"] == "ema"
    state = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    generator, _, _ = load_generator(run, "best")
    assert all(torch.equal(v, state["generator_ema"][k]) for k, v in generator.state_dict().items())
    assert not all(torch.equal(state["generator"][k], v) for k, v in state["generator_ema"].items())
    plain = run_job(make_cfg(*TINY), tmp_path / "plain")
    assert plain["quality"]["scored_with"]["generator"] == "raw"


def test_a_resumed_run_continues_the_average_bit_for_bit(tmp_path):
    a, b = whole_and_resumed(tmp_path, [*TINY, *EMA], steps=12)
    for part in ("generator", "generator_ema"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert json.loads((tmp_path / "halves" / "summary.json").read_text())["status"] == "completed"
