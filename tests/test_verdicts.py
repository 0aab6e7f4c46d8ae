"""Verdicts you can trust: paired statistics with known answers, honest wording, one yardstick."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from ganlab.judging import stats
from ganlab.judging.compare import compare
from ganlab.judging.verdict import format_comparison
from ganlab.record.catalog import RunRecord


def run(score, se=0.01, status="completed", **settings) -> RunRecord:
    overrides = [f"{k.replace('__', '.')}={v}" for k, v in settings.items()]
    name = ",".join(overrides)
    best = {} if score is None else {"score": score, "epoch": 1,
                                     "scores": {"fd": score, "fd_se": se, "precision": 1 / (1 + score)}}
    return RunRecord(Path(f"/sweep/{name}"), "sweep", overrides,
                     {"status": status, "quality": {"metric": "fd", "best": best}})


def effect_of(comparison, key, value):
    return next(e for e in comparison.factors[key].effects if e.value == value)


# ------------------------------------------------------------------------------ statistics
def test_sign_flip_p_is_exact_and_cannot_go_below_two_over_two_to_the_n():
    assert stats.sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(2 / 8)
    assert stats.sign_flip_p([1.0, -1.0]) == 1.0
    assert stats.sign_flip_p([1.0] * 6) == pytest.approx(2 / 64)
    assert stats.min_pairs_for(0.05) == 6


def test_median_interval_holds_the_median_and_narrows_with_more_data():
    rng = random.Random(0)
    small, large = ([rng.gauss(0, 1) for _ in range(n)] for n in (10, 400))
    lo, hi = stats.median_interval(small)
    lo2, hi2 = stats.median_interval(large)
    assert lo < 0.5 and hi > -0.5 and lo2 < 0 < hi2 and hi2 - lo2 < hi - lo


def test_seeds_needed_is_the_paired_t_tests_sample_size_for_80_percent_power():
    # the textbook one-sample t-test sizes (two-sided 5%, power 0.8): d = 1 needs 10, d = 0.5 needs 34
    assert stats.seeds_needed(1.0, 1.0) == 10 and stats.power(1.0, 1.0, 10) >= 0.8 > stats.power(1.0, 1.0, 9)
    assert stats.seeds_needed(0.5, 1.0) == 34
    assert stats.seeds_needed(0.0, 1.0) is None
    assert stats.seeds_needed(0.001, 1.0) == stats.MAX_SEEDS_SAID + 1
    assert "too small to find" in stats.seeds_in_words(stats.MAX_SEEDS_SAID + 1, 0.001)


def test_power_is_a_number_where_a_look_settles_a_small_difference():
    """bf16 against float32 on Fashion-MNIST, 6 pairs at a look's level 0.00927, noise sd 0.142: scipy's noncentral t
    says nan for the far tail, and a power of nan left 'smaller than 0.5' open however small the differences."""
    assert stats.power(0.5, 0.142, 6, 0.00927) > 0.99
    assert all(0 <= stats.power(e, 1.0, n, level) <= 1 for e in (0.1, 1, 5, 50) for n in (2, 6, 40)
               for level in (0.05, 0.00927, 0.001))
    assert stats.rules_out([0.082, 0.021, -0.008, 0.052, 0.145, -0.111], 0.5, 0.00927, 0.142)


def test_the_paired_test_is_a_t_test_and_a_sign_flip_test_where_a_run_failed():
    assert stats.paired_test([1.0, 1.2, 0.9], 0.05).method == "t-test"
    assert stats.paired_test([1.0, 1.2, 0.9] * 4, 0.05).method == "t-test"
    assert stats.paired_test([1.0] * 6, 0.05).p == pytest.approx(2 / 64)  # no spread, no known noise: signs only
    failed = stats.paired_test([1.0, math.inf, 2.0], 0.05)  # a failure has no size: only signs count
    assert failed.method == "sign-flip" and not failed.reachable and not failed.significant
    assert stats.paired_test([1.0], 0.05).method == "none"
    assert stats.paired_test([0.2] * 8, 0.05, noise_sd=0.7).p > 0.05  # within the measurement noise


# -------------------------------------------------------------------------- paired verdicts
def test_a_clear_effect_over_three_seeds_is_beyond_noise_paired():
    runs = [run(1.0 + 0.1 * s, optim__lr="2e-4", seed=s) for s in range(3)]
    runs += [run(3.0 + 0.3 * s, optim__lr="2e-5", seed=s) for s in range(3)]
    c = compare(runs)
    e = effect_of(c, "optim.lr", "2e-5")
    assert c.factors["optim.lr"].values[0].value == "2e-4"
    assert e.test == "paired" and e.n_pairs == 3 and e.verdict == "worse"
    assert e.median_diff == pytest.approx(2.2) and e.interval[0] > 0
    assert "precision" in e.agree
    text = format_comparison(c)
    assert "spread over 3 seeds" in text and "WORSE" in text and "every other value is worse beyond noise" in text


def test_a_key_with_no_effect_is_within_noise_and_says_how_many_seeds_would_settle_it():
    rng = random.Random(1)
    runs = []
    for s in range(4):
        base = 1 + rng.gauss(0, 0.3)  # the seed moves both values alike (pairing removes it)
        runs += [run(base + rng.gauss(0, 0.1), discriminator__dropout="0.3", seed=s),
                 run(base + rng.gauss(0, 0.1), discriminator__dropout="0.5", seed=s)]
    c = compare(runs)
    [e] = c.factors["discriminator.dropout"].effects
    assert e.verdict == "within noise" and e.seeds_needed and e.seeds_needed > 4
    text = format_comparison(c)
    assert "seeds per value would" in text and "no difference is beyond noise" in text


def test_pairing_sees_an_effect_that_the_seed_to_seed_spread_hides():
    runs = []
    for s, base in enumerate([1.0, 5.0, 9.0]):  # seeds differ by far more than the effect
        runs += [run(base, lr="a", seed=s), run(base + 0.5, lr="b", seed=s)]
    e = effect_of(compare(runs), "lr", "b")
    assert e.verdict == "worse" and e.median_diff == pytest.approx(0.5)


def test_a_designed_interaction_is_named_with_the_table_by_cell():
    runs = []
    for s in range(3):
        for loss, low, high in (("bce", 1.0, 2.0), ("wgan", 2.0, 1.0)):
            runs += [run(low + 0.01 * s, loss=loss, lr="low", seed=s),
                     run(high + 0.01 * s, loss=loss, lr="high", seed=s)]
    c = compare(runs)
    [e] = c.factors["lr"].effects
    assert e.verdict == "interaction" and set(e.by_cell) == {"loss=bce", "loss=wgan"}
    text = format_comparison(c)
    assert "interacts with the other settings" in text and "loss=wgan" in text


def test_a_one_seed_sweep_never_speaks_of_seeds():
    runs = [run(1.0 + 0.1 * i, lr=lr, loss=loss) for i, (lr, loss) in
            enumerate([(a, b) for a in ("x", "y") for b in ("p", "q", "r")])]
    text = format_comparison(compare(runs))
    assert "seed" not in text and "spread over the other swept settings (3 cells of loss)" in text


def test_failed_runs_rank_worst_by_name_and_are_not_averaged():
    runs = [run(1.0, lr="a", seed=s) for s in range(3)]
    runs += [run(2.0, lr="b", seed=0), run(None, status="diverged", lr="b", seed=1),
             run(None, status="failed", lr="b", seed=2)]
    c = compare(runs)
    worst = c.factors["lr"].values[1]
    assert worst.value == "b" and sorted(worst.failed) == ["lr=b,seed=1", "lr=b,seed=2"]
    assert "failed or diverged (ranked worst): lr=b,seed=1" in format_comparison(c)
    payload = c.as_json()
    json.dumps(payload, allow_nan=False)  # plain JSON: no Infinity
    assert payload["keys"]["lr"]["values"][1]["median"] is None


def test_three_pairs_beyond_the_measurement_noise_of_their_mean_are_called_with_a_t_test():
    # three pairs 0.29-0.47 apart with se 0.2 each (the Fashion ACGAN study): the mean 0.39 is 2.4
    # times the measurement noise of a mean of three differences, and the t-test agrees (p = 0.018)
    runs = [run(0.9, se=0.2, lr="a", seed=s) for s in range(3)]
    runs += [run(0.9 + d, se=0.2, lr="b", seed=s) for s, d in enumerate((0.29, 0.42, 0.47))]
    e = effect_of(compare(runs), "lr", "b")
    assert e.verdict == "worse" and e.method == "t-test" and 0.015 < e.p_value < 0.02
    e = effect_of(compare(runs[:5]), "lr", "b")  # two pairs: the t-test cannot tell yet
    assert e.verdict == "within noise" and e.seeds_needed >= 3


def test_differences_within_the_measurement_noise_are_never_called_real():
    runs = [run(1.0, se=0.5, lr="a", seed=s) for s in range(8)] + [run(1.2, se=0.5, lr="b", seed=s) for s in range(8)]
    e = effect_of(compare(runs), "lr", "b")
    assert e.verdict == "within noise" and "measurement noise" in e.why


def test_keys_that_always_change_together_are_one_change_paired_by_seed():
    # ResNet against the DCGAN at equal wall time: +exp=resnet always comes with its own step count
    runs = [run(0.4 + 0.1 * s, seed=s) for s in range(3)]
    runs += [run(3.0 + 0.1 * s, exp="resnet", trainer__steps=692, seed=s) for s in range(3)]
    c = compare(runs)
    assert list(c.factors) == ["exp + trainer.steps"]
    e = effect_of(c, "exp + trainer.steps", "resnet, 692")
    assert e.test == "paired" and e.n_pairs == 3 and e.verdict == "worse"
    assert "exp + trainer.steps=(default), (default) is best" in format_comparison(c)
    crossed = [run(1.0, lr=lr, width=w, seed=s) for lr in "ab" for w in "xy" for s in range(2)]
    assert set(compare(crossed).factors) == {"lr", "width"}  # varied independently: two factors
    one_seed_each = [run(1.0, lr="a", seed=1), run(2.0, lr="b", seed=2)]
    assert set(compare(one_seed_each).factors) == {"lr"}  # a seed is never joined to a change


def test_the_curves_colour_runs_by_their_setting_wherever_the_seed_sits_in_the_overrides():
    from ganlab.judging.figures import _colours

    runs = [run(1.0, epochs=e, seed=s, exp=x) for e, x in (("10", "a"), ("3", "b"), ("10", "b")) for s in range(3)]
    colours = _colours(compare(runs))
    by_setting = {}
    for r in runs:
        by_setting.setdefault(tuple(o for o in r.overrides if not o.startswith("seed=")), set()).add(colours[r.path])
    assert all(len(c) == 1 for c in by_setting.values()) and len(set.union(*by_setting.values())) == 3


def test_one_number_spelt_two_ways_is_one_setting_not_a_factor():
    """A study's rounds run as Hydra sweeps wrote optim.lr=2e-4 as 0.0002, its resumed round as typed: compare
    tested "optim.lr=2e-4 vs 0.0002" beside the question asked."""
    runs = [run(1.0 + s + (mult == "0.5"), optim__lr="0.0002" if s < 3 else "2e-4", optim__d_lr_mult=mult, seed=s)
            for s in range(5) for mult in ("1", "0.5")]
    factors = compare(runs).factors
    assert list(factors) == ["optim.d_lr_mult"] and factors["optim.d_lr_mult"].effects[0].n_pairs == 5


def test_runs_scored_with_different_yardsticks_or_compute_are_warned_about():
    a, b = run(1.0, lr="a"), run(2.0, lr="b")
    a.summary["quality"]["scored_with"] = {"yardstick": "digits-1x8x8-aaaa"}
    b.summary["quality"]["scored_with"] = {"yardstick": "digits-1x8x8-bbbb"}
    assert any("different yardsticks" in w for w in compare([a, b]).warnings)
    # a study continued on another machine: each seed's pair scored with one yardstick, the seeds with two
    runs = [run(1.0 + s + (lr == "b"), lr=lr, seed=s) for s in range(4) for lr in "ab"]
    for r, yardstick in zip(runs, ["digits-1x8x8-aaaa"] * 4 + ["digits-1x8x8-bbbb"] * 4):
        r.summary["quality"]["scored_with"] = {"yardstick": yardstick}
    [note] = [w for w in compare(runs).warnings if "yardsticks" in w]
    assert note.startswith("note: the seeds were scored with 2 yardsticks") and "paired differences stand" in note
    runs[4].summary["quality"]["scored_with"] = {"yardstick": "digits-1x8x8-aaaa"}  # seed 2's pair: two yardsticks
    assert any(w.startswith("WARNING") and "different yardsticks" in w for w in compare(runs).warnings)


# ----------------------------------------------------------------------- one yardstick, copies
@pytest.fixture(scope="module")
def digits_evaluators():
    from ganlab.parts.data import load_dataset
    from ganlab.quality import build_evaluator
    from tests.conftest import make_cfg

    full, small = (make_cfg("metrics.classifier_steps=60", *extra) for extra in ([], ["data.limit=32"]))
    return (build_evaluator(full, load_dataset(full.data)), build_evaluator(small, load_dataset(small.data)),
            load_dataset(full.data), load_dataset(make_cfg("data.split=test").data))


def test_a_limited_data_run_is_scored_with_the_same_yardstick_as_the_full_run(digits_evaluators):
    full, small, train_data, _ = digits_evaluators
    assert small.info["yardstick"] == full.info["yardstick"] and small.floor == full.floor
    images = train_data.x[:400]
    assert small.score(images)["fd_classifier"] == full.score(images)["fd_classifier"]
    assert full.score(images)["fd_classifier_se"] > 0


def test_copy_rate_is_near_one_for_copied_training_images_and_near_005_for_fresh_real_ones(digits_evaluators):
    full, _, _, test_data = digits_evaluators
    copies = full.score(full.reference_images)["copy_rate"]
    fresh = full.score(test_data.x)["copy_rate"]
    assert copies > 0.95 and 0.0 <= fresh <= 0.12


def test_quality_that_worsens_late_is_diagnosed_with_the_best_epoch_and_how_much():
    from ganlab.training.diagnose import Diagnostician

    best = {"metric": "fd", "epoch": 10, "step": 100, "score": 1.0, "scores": {"fd_se": 0.02}}
    last = {"epoch": 30, "step": 300, "fd": 1.4, "fd_se": 0.02}
    [found] = Diagnostician(warmup_steps=0).degradation(best, last, epochs=30)
    assert found.kind == "late_degradation" and "best fd 1 at epoch 10; 40% worse since" in found.evidence
    assert Diagnostician(warmup_steps=0).degradation(best, {**last, "fd": 1.03}, epochs=30) == []  # within noise
    assert Diagnostician(warmup_steps=0).degradation({**best, "epoch": 25}, last, epochs=30) == []  # best came late


def test_a_copying_generator_is_diagnosed_as_memorising():
    from ganlab.training.diagnose import Diagnostician

    doctor = Diagnostician(warmup_steps=0)
    assert doctor.on_quality({"epoch": 1, "step": 10, "copy_rate": 0.06, "diversity_ratio": 1.0}) == []
    [found] = doctor.on_quality({"epoch": 2, "step": 20, "copy_rate": 0.9, "diversity_ratio": 1.0})
    assert found.kind == "memorisation" and "copy rate 0.90" in found.evidence


def test_closest_pairs_put_each_copied_sample_beside_its_training_image(digits_evaluators):
    import torch

    full = digits_evaluators[0]
    pairs = full.closest_pairs(full.reference_images[:50])
    assert pairs.shape == (16, *full.reference_images.shape[1:])
    assert all(torch.equal(pairs[i], pairs[i + 1]) for i in range(0, 16, 2))


def test_at_the_floor_only_when_every_score_is_within_its_noise_of_the_floor(digits_evaluators):
    from ganlab.quality import at_the_floor

    full, _, _, test_data = digits_evaluators
    real = test_data.x
    judged = at_the_floor(full.score(real), full.noise(real, draws=8), full.floor)
    assert judged["not"] == [] and "fd_classifier" in judged["at"]  # real data is its own floor
    blurred = real.clamp(-0.2, 0.2)  # washed-out images: far from the floor in most scores
    judged = at_the_floor(full.score(blurred), full.noise(blurred, draws=8), full.floor)
    assert "fd_classifier" in judged["not"] and "precision" in judged["not"]


# ------------------------------------------------------------------------- over training
def test_a_course_is_told_in_words_where_it_leads_lags_and_flips():
    from ganlab.judging.over_training import AHEAD, BEHIND, LEVEL, Course, describe, kind_of_effect

    steps = [100, 200, 300, 400]
    assert describe(steps, [LEVEL, LEVEL, AHEAD, AHEAD], "b", "a") == "b is ahead of a from step 300 to the end"
    assert describe(steps, [AHEAD] * 4, "b", "a") == "b is ahead of a at every evaluation"
    assert describe(steps, [LEVEL, LEVEL, LEVEL, BEHIND], "b", "a") == "b is behind a at the last evaluation only (step 400)"
    assert describe(steps, [AHEAD, AHEAD, LEVEL, LEVEL], "b", "a") == \
        "b is ahead of a early (steps 100-200), level at the end"
    assert "flips during training" in describe(steps, [AHEAD, LEVEL, BEHIND, BEHIND], "b", "a")
    assert describe(steps, [LEVEL] * 4, "b", "a").startswith("b is level with a at each of 4 evaluations")
    assert kind_of_effect(Course(states=[AHEAD, AHEAD, LEVEL, LEVEL])) == "learns faster and ends level"
    assert kind_of_effect(Course(states=[LEVEL, LEVEL, LEVEL, AHEAD])) == "ends better"
    assert kind_of_effect(Course(states=[BEHIND, AHEAD, LEVEL, BEHIND])) == "flips and ends worse"
    assert kind_of_effect(Course(states=[AHEAD, LEVEL, LEVEL, AHEAD])) == "learns faster and ends better"
    assert kind_of_effect(Course(states=[LEVEL] * 4)) == "no difference beyond noise"


def test_nan_scores_are_no_scores_compare_names_no_best_of_them():
    runs = [run(float("nan"), lr=lr, seed=s) for lr in "ab" for s in range(2)]
    with pytest.raises(ValueError, match="whose scores are NaN"):
        compare(runs)
    c = compare(runs[:2] + [run(1.0, lr="b", seed=s) for s in range(2)])
    assert [r.path.name for r in c.skipped] == ["lr=a,seed=0", "lr=a,seed=1"] and list(c.factors) == []


# ------------------------------------------------------------------------------ broken and unfinished runs
def run_in(folder: Path, loss: str, seed: int, curve=(9.0, 5.0, 2.0), status="completed", diagnoses=(),
           steps=(300, 300)) -> RunRecord:
    """A run folder of known state: its quality.csv course (fd at steps 100, 200, ...; se 0.1), its
    status, diagnoses and (steps done, planned steps)."""
    path = folder / f"loss={loss},seed={seed}"
    path.mkdir(parents=True)
    rows = ["step,epoch,fd,fd_se"] + [f"{100 * (i + 1)},{i + 1},{v},0.1" for i, v in enumerate(curve)]
    (path / "quality.csv").write_text("\n".join(rows) + "\n")
    best = min(curve)
    summary = {"status": status, "total_steps": steps[1], "steps_done": steps[0],
               "diagnoses": [{"kind": k} for k in diagnoses],
               "quality": {"metric": "fd", "best": {"score": best, "epoch": 1, "scores": {"fd": best, "fd_se": 0.1}}}}
    return RunRecord(path, "sweep", [f"loss={loss}", f"seed={seed}"], summary)


def test_run_states_are_read_from_their_records(tmp_path):
    from ganlab.judging.run_states import broken_state, unfinished

    assert broken_state(run_in(tmp_path, "a", 1)) is None  # improved from 9 to 2, se 0.1: healthy
    assert broken_state(run_in(tmp_path, "a", 2, diagnoses=("mode_collapse",))) == "collapsed"
    assert broken_state(run_in(tmp_path, "a", 3, diagnoses=("divergence",))) == "diverged"
    assert broken_state(run_in(tmp_path, "a", 4, status="failed")) == "failed"
    assert broken_state(run_in(tmp_path, "a", 5, curve=(9.0, 9.1, 8.9))) == "untrained"  # within 2 x its noise
    assert unfinished(run_in(tmp_path, "a", 6, status="stopped", steps=(123, 300))) == "stopped at step 123 of 300"
    assert unfinished(run_in(tmp_path, "a", 7)) is None


def test_a_verdict_among_collapsed_runs_says_it_compares_failed_settings(tmp_path):
    runs = [run_in(tmp_path, loss, seed, curve=(9.0, 5.0, score), diagnoses=("mode_collapse",))
            for loss, score in (("bce", 3.0), ("wgan", 2.0)) for seed in (1, 2, 3)]
    said = format_comparison(compare(runs))
    assert "verdict: loss=wgan (broken) is best; every other value is worse beyond noise; every run of both values " \
           "collapsed to a few modes: this compares failed settings" in said


def test_a_verdict_names_how_many_runs_of_a_value_are_broken(tmp_path):
    runs = [run_in(tmp_path, "bce", seed, curve=(9.0, 5.0, 2.0 + seed / 10)) for seed in (1, 2, 3)]
    runs += [run_in(tmp_path, "wgan", seed, curve=(9.0, 9.0, 9.0) if seed < 3 else (9.0, 5.0, 4.0)) for seed in (1, 2, 3)]
    said = format_comparison(compare(runs))
    assert "; 2 of 3 runs of loss=wgan never improved on their first evaluation" in said
    assert "(broken)" not in said  # bce, the best, is healthy


def test_an_unfinished_run_is_left_out_unless_every_run_is_compared_at_the_step_all_reached(tmp_path):
    runs = [run_in(tmp_path, "bce", seed, curve=(9.0, 5.0, 2.0)) for seed in (1, 2)]
    runs += [run_in(tmp_path, "wgan", 1, curve=(9.0, 6.0, 1.0)),
             run_in(tmp_path, "wgan", 2, curve=(9.0, 1.5), status="stopped", steps=(235, 300))]
    left_out = compare(runs)
    assert len(left_out.runs) == 3 and left_out.unfinished[runs[3].path] == "stopped at step 235 of 300"
    said = format_comparison(left_out)
    assert "left out (unfinished: stopped at step 235 of 300; ganlab compare --at-common-step" in said
    common = compare(runs, at_common_step=True)
    assert common.at_step == 200 and len(common.runs) == 4
    assert {r.path.name: r.best["score"] for r in common.runs}["loss=wgan,seed=1"] == 6.0  # its best up to step 200
    assert "up to step 200, the last evaluation every run reached (1 of them unfinished)" in format_comparison(common)


def test_real_runs_are_told_collapsed_or_healthy_by_their_end(run_copy):
    """Two real tiny runs: 2 epochs of width-8 networks end collapsed (their samples spread 0.06 of the
    data's); 8 epochs of width 32 are diagnosed with collapse on the way, but end spread 0.69 of it (AMD EPYC)."""
    from ganlab.judging.run_states import broken_state
    from ganlab.record.catalog import load_run
    from tests.conftest import TINY

    collapsed = load_run(run_copy(*TINY))
    recovered = load_run(run_copy(*TINY, "trainer.epochs=8", "generator.width=32", "discriminator.width=32",
                                  name="recovered"))
    assert broken_state(collapsed) == "collapsed" and "mode_collapse" in collapsed.summary.diagnoses
    assert broken_state(recovered) is None and recovered.summary.final_scores["diversity_ratio"] >= 0.5
