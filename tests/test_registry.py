"""One registry per part: every YAML option is a registered name, a wrong name lists the registered
ones, and a new loss is one registered class and one YAML file."""

from __future__ import annotations

import json

import pytest
import torch
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


WGAN_LP = """\
defaults:
  - /schema/loss@_here_: wgan_lp
  - _self_
name: wgan_lp
n_critic: 2
"""


@pytest.fixture
def wgan_lp():
    """A critic loss with its own penalty, from outside the package (Petzka et al. 2018's one-sided
    Lipschitz penalty): it says what it is, and ganlab takes its word."""
    @LOSSES.register("wgan_lp", LossConfig)
    class WGANLPLoss(GANLoss):
        threshold = None
        critic, columns, gradient_penalty = True, ("gp", "wasserstein"), True

        def d_loss(self, real, fake):
            return fake.mean() - real.mean()

        def g_loss(self, fake):
            return -fake.mean()

        def penalty(self, d, real, fake):
            x = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
            return 10 * (grad.flatten(1).norm(dim=1) - 1.0).clamp(min=0).pow(2).mean()

    yield WGANLPLoss
    del LOSSES._options["wgan_lp"]


def test_a_critic_loss_from_outside_logs_its_columns_and_is_diagnosed_as_a_critic(tmp_path, wgan_lp, monkeypatch):
    import csv

    import ganlab.training.job as job_module  # where the loop's parts are built

    critics = []
    real_doctor = job_module.Diagnostician
    monkeypatch.setattr(job_module, "Diagnostician",
                        lambda **kw: critics.append(kw["critic"]) or real_doctor(**kw))
    conf = tmp_path / "myconf"
    (conf / "loss").mkdir(parents=True)
    (conf / "loss" / "wgan_lp.yaml").write_text(WGAN_LP)
    out = ganlab("train", "-cd", str(conf), "loss=wgan_lp", "discriminator.norm=layer", *TINY, "trainer.steps=6",
                 "trainer.log_every=2", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert rows and all(r["gp"] != "" and r["wasserstein"] != "" for r in rows)  # its own columns, filled
    assert critics == [True]  # no "D is overpowering G" for a critic
    for bad, message in ((["discriminator.norm=batch"], "loss=wgan_lp with discriminator.norm=batch"),
                         (["discriminator.norm=layer", "loss.r1_gamma=1"], "wgan_lp has its own gradient penalty")):
        refused = ganlab("train", "-cd", str(conf), "loss=wgan_lp", *bad, *TINY, f"hydra.run.dir={tmp_path / 'x'}",
                         cwd=tmp_path)
        assert refused.returncode == 2 and message in refused.stderr
        assert not (tmp_path / "x").exists()
