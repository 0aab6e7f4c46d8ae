"""The real configs compose, and bad input fails before training with a message naming the key."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from ganlab import CONF_DIR
from ganlab.config import ConfigError, validate
from tests.conftest import ganlab, make_cfg

GROUPS = ["data", "generator", "discriminator", "loss", "optim", "trainer"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_of_every_group_composes(group):
    for option in options(group):
        cfg = make_cfg(f"{group}={option}")
        assert OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
        if group != "trainer":
            assert cfg[group].name == option


def test_default_config_is_valid_and_documented_defaults_hold():
    cfg = make_cfg()
    validate(cfg)
    assert (cfg.data.name, cfg.generator.name, cfg.discriminator.name, cfg.loss.name, cfg.optim.name) == (
        "digits", "dcgan", "dcgan", "bce_logits", "adam")
    assert cfg.name == "digits_bce_logits"


@pytest.mark.parametrize("data,net", [("digits", "dcgan"), ("ring8", "mlp"), ("grid25", "mlp"),
                                      ("gauss1d", "mlp"), ("mnist", "dcgan"), ("cifar10", "mlp")])
@pytest.mark.parametrize("loss", options("loss"))
def test_every_loss_is_valid_with_every_kind_of_data(data, net, loss):
    extra = ["discriminator.norm=layer"] if loss == "wgan_gp" else []
    validate(make_cfg(f"data={data}", f"generator={net}", f"discriminator={net}", f"loss={loss}", *extra))


def test_label_smoothing_targets_are_one_override_away():
    assert (make_cfg("loss=label_smoothing").loss.real_target, make_cfg("loss=label_smoothing").loss.fake_target) == (0.9, 0.0)
    assert make_cfg("loss=label_smoothing", "loss.real_target=0.8").loss.real_target == 0.8
    two_sided = make_cfg("loss=label_smoothing", "loss.real_target=0.98", "loss.fake_target=0.02").loss
    assert (two_sided.real_target, two_sided.fake_target) == (0.98, 0.02)


def test_lr_ratios_are_two_overrides_and_n_critic_follows_the_loss():
    cfg = make_cfg("optim.d_lr_mult=0.5", "optim.g_lr_mult=2")
    assert (cfg.optim.d_lr_mult, cfg.optim.g_lr_mult) == (0.5, 2.0)
    assert make_cfg("loss=wgan_gp").trainer.n_critic == 5
    assert make_cfg("loss=wgan_gp", "trainer.n_critic=3").trainer.n_critic == 3
    assert make_cfg().trainer.n_critic == 1


BAD_VALUES = [
    (["optim.lr=-0.001"], "optim.lr=-0.001 must be > 0"),
    (["optim.d_lr_mult=0"], "optim.d_lr_mult=0.0 must be > 0"),
    (["discriminator.dropout=1.0"], "discriminator.dropout=1.0 is out of range; it must be in [0.0, 1.0)"),
    (["generator.dropout=-0.1"], "generator.dropout=-0.1 is out of range"),
    (["loss=label_smoothing", "loss.real_target=1.5"], "loss.real_target=1.5 is out of range; it must be in [0.0, 1.0]"),
    (["loss=label_smoothing", "loss.fake_target=-0.1"], "loss.fake_target=-0.1 is out of range"),
    (["loss=label_smoothing", "loss.real_target=0.1", "loss.fake_target=0.2"], "must be above loss.fake_target"),
    (["generator.activation=rellu"], "generator.activation='rellu' is not valid; choose one of: relu, leaky_relu"),
    (["discriminator.norm=group"], "discriminator.norm='group' is not valid; choose one of: batch, layer, spectral, none"),
    (["data.image_size=12"], "data.image_size=12 is not valid; choose one of: 8, 16, 28, 32, 64"),
    (["data.channels=2"], "data.channels=2 is not valid; choose one of: 1, 3"),
    (["trainer.device=tpu"], "trainer.device='tpu' is not valid; choose one of: auto, cpu, cuda"),
    (["trainer.batch_size=0"], "trainer.batch_size=0 must be >= 1"),
    (["optim.betas=[0.5,1.2]"], "optim.betas[1]=1.2 is out of range"),
    (["loss=wgan_gp"], "loss=wgan_gp with discriminator.norm=batch"),
    (["data=ring8"], "data=ring8 holds 2-D points, not images, so dcgan cannot model it; add generator=mlp discriminator=mlp"),
    (["data=gauss1d", "generator=mlp"], "data=gauss1d holds 1-D points, not images, so dcgan cannot model it; add discriminator=mlp"),
    (["data=folder"], "data=folder needs the folder of your images: add data.root="),
]


@pytest.mark.parametrize("overrides,message", BAD_VALUES, ids=[" ".join(o) for o, _ in BAD_VALUES])
def test_out_of_range_values_and_bad_combinations_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=None) as err:
        validate(make_cfg(*overrides))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_cli_prints_the_composed_config_without_training(tmp_path):
    out = ganlab("train", "--cfg", "job", "loss=wgan_gp", "optim.lr=1e-4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    cfg = OmegaConf.create(out.stdout)
    assert cfg.loss.name == "wgan_gp" and cfg.optim.lr == 1e-4 and cfg.loss.gp_weight == 10.0
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("args,expected", [
    (["optim.lrr=1"], ["optim.lrr: no such setting; did you mean optim.lr?"]),
    (["trainer.epochz=3"], ["trainer.epochz: no such setting; did you mean trainer.epochs?"]),
    (["optim.lr=abc"], ["Value 'abc' of type 'str' could not be converted to Float", "full_key: optim.lr"]),
    (["loss=foo"], ["Could not find 'loss/foo'", "Available options in 'loss'", "wgan_gp"]),
])
def test_cli_rejects_unknown_keys_types_and_choices_before_training(tmp_path, args, expected):
    out = ganlab("train", *args, cwd=tmp_path)
    assert out.returncode != 0
    for text in expected:
        assert text in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "outputs").exists()


def test_cli_value_error_is_one_line_and_leaves_no_run_folder(tmp_path):
    out = ganlab("train", "optim.lr=-1", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == "ganlab: error: optim.lr=-1.0 must be > 0"
    assert "Traceback" not in out.stderr
    runs = tmp_path / "outputs" / "runs"
    assert not runs.exists() or not any(runs.iterdir())


def test_the_cpu_preset_sizes_any_image_run_and_command_line_values_still_win():
    cfg = make_cfg("data=fashion_mnist", "preset=cpu")
    validate(cfg)
    assert (cfg.generator.depth, cfg.discriminator.depth, cfg.trainer.epochs) == (1, 1, 3)
    assert (cfg.trainer.precision, cfg.metrics.every) == ("auto", 1)
    assert make_cfg("preset=cpu", "trainer.epochs=10").trainer.epochs == 10
    assert make_cfg().trainer.precision == "32" and make_cfg().generator.depth == 2


ADDED_SINCE = {"discriminator": {"pack": 1, "minibatch_std": False},  # issue 24
               "metrics": {"inception_weights": None, "primary": None},
               "trainer": {"stack": "auto"}}  # issue 33 (auto: the default since dropout stacks)


def test_every_option_and_study_composes_as_before_the_package_was_regrouped(monkeypatch):
    """tests/fixtures/composed_configs.json was written by the code before the move into folders
    (issue 22): the same overrides compose to the same config, key for key, every interpolation
    resolved (the run's name and trainer.n_critic are now written so that a user's own parts have them)."""
    import json
    from pathlib import Path

    before = json.loads((Path(__file__).parent / "fixtures" / "composed_configs.json").read_text())
    cases = [""] + [f"+exp={o}" if g == "exp" else f"{g}={o}" for g in sorted(p.name for p in CONF_DIR.iterdir()
                                                                            if p.is_dir() and p.name != "hydra")
                    for o in options(g)]
    assert set(before) <= set(cases)  # no option was lost
    for overrides, expected in before.items():
        monkeypatch.delenv("GANLAB_CACHE", raising=False)  # the fixture has the default cache folder
        cfg = OmegaConf.to_container(make_cfg(*overrides.split()), resolve=True)  # resolved without the env
        cfg.pop("hydra", None)
        for group, keys in ADDED_SINCE.items():  # keys added after the fixture, at their defaults
            for key, default in keys.items():
                assert cfg[group].pop(key) == default, (overrides, key)
        assert cfg == expected, overrides
