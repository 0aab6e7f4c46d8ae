"""One registry per part: every YAML option is a registered name, a wrong name lists the registered
ones, and a new loss is one registered class and one YAML file."""

from __future__ import annotations

import json

import pytest
import torch.nn.functional as F

from ganlab import CONF_DIR
from ganlab.config import ConfigError, validate
from ganlab.parts.losses import GANLoss, LossConfig
from ganlab.parts.registry import LOSSES, PARTS
from tests.conftest import TINY, ganlab, make_cfg


@pytest.mark.parametrize("registry", PARTS, ids=lambda r: r.part)
def test_each_yaml_option_picks_a_registered_name_and_each_name_has_a_yaml_file(registry):
    files = sorted((CONF_DIR / registry.part).glob("*.yaml"))
    picked = {make_cfg(f"{registry.part}={f.stem}")[registry.part].name for f in files}
    assert picked == set(registry.names())


def test_a_name_no_registry_holds_is_refused_with_the_registered_names():
    cfg = make_cfg()
    cfg.loss.name = "softmax"
    with pytest.raises(ConfigError, match="loss.name='softmax' is not valid; choose one of: bce, bce_logits"):
        validate(cfg)


SOFTPLUS_HINGE = """\
# A smooth hinge: softplus(1 - D(x)) + softplus(1 + D(G(z))).
defaults:
  - /schema/loss@_here_: softplus_hinge
  - _self_
name: softplus_hinge
"""


@pytest.fixture
def softplus_hinge():
    @LOSSES.register("softplus_hinge", LossConfig)
    class SoftplusHingeLoss(GANLoss):
        def d_loss(self, real, fake):
            return F.softplus(1.0 - real).mean() + F.softplus(1.0 + fake).mean()

        def g_loss(self, fake):
            return -fake.mean()

    yield SoftplusHingeLoss
    del LOSSES._options["softplus_hinge"]


def test_a_new_loss_is_one_registered_class_and_one_yaml_file(tmp_path, softplus_hinge):
    conf = tmp_path / "myconf"
    (conf / "loss").mkdir(parents=True)
    (conf / "loss" / "softplus_hinge.yaml").write_text(SOFTPLUS_HINGE)
    out = ganlab("train", "-cd", str(conf), "loss=softplus_hinge", *TINY, "trainer.steps=4",
                 f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["final"]["loss_d"] > 0
    assert "name: softplus_hinge" in (tmp_path / "run" / ".hydra" / "config.yaml").read_text()
