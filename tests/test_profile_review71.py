"""Review 71's profile defects, on the arithmetic that decides them (the
runs themselves are in test_profile.py): the timescales at a warm-up
schedule's peak, Keras' float32 learning rate read as the number the user
wrote, the activity penalty in the first batch's penalty/data line, and a
measured fix that moves a harmful value by at least half a decade."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from reglint.model import LearningRate
from reglint.profile.result import LayerPenalty
from reglint.profile.run import current_lr
from reglint.profile.twin import angular_equilibrium, penalty_timescales
from reglint.reporters.text import activity_share_text
from reglint.rules.rl023_penalty_hurts_training import LEAST_STEP, PenaltyHurtsTraining


def test_the_timescales_are_taken_at_a_warm_up_schedules_peak():
    """Review 71, 4: AdamW with a CosineDecay warming up from 1e-4 to 5e-3
    and weight_decay 1e-4 had its decay timescale at the start's rate,
    1e8 steps, where the peak gives 2e6; the static rules judge the peak."""
    from reglint.profile.measure import schedule_peak

    info = {"learning_rate": 1e-4, "learning_rate_schedule": "CosineDecay", "weight_decay": 1e-4, "family": "adam"}
    analysis = SimpleNamespace(model=SimpleNamespace(optimizer=SimpleNamespace(
        learning_rate=LearningRate(1e-4, peak=5e-3, schedule="CosineDecay"))))
    assert penalty_timescales(info, [])["weight_decay"].steps == pytest.approx(1e8)
    info["schedule_peak"] = schedule_peak(analysis, info)
    scale = penalty_timescales(info, [])["weight_decay"]
    assert scale.steps == pytest.approx(2e6) and "at the schedule's peak lr 0.005" in scale.formula
    assert angular_equilibrium(info, []) == pytest.approx(math.sqrt(2 * 5e-3 * 1e-4))
    # another schedule than the one Keras compiled, or none: the start's rate
    assert schedule_peak(analysis, {**info, "learning_rate_schedule": "ExponentialDecay"}) is None
    assert schedule_peak(analysis, {**info, "learning_rate_schedule": None}) is None


def test_keras_float32_learning_rate_reads_as_written():
    """1e-4 in a float32 variable is 9.99999974e-05: the timescale 1/(lr*wd)
    read 100,000,002 steps and "3 x ... = 300,000,008" (review 71, 4)."""
    assert current_lr(SimpleNamespace(learning_rate=np.float32(1e-4))) == 1e-4
    assert current_lr(SimpleNamespace(learning_rate=np.float32(0.0123456789))) == pytest.approx(0.01234568, abs=0)
    assert current_lr(SimpleNamespace(learning_rate="not a rate")) is None


def test_an_activity_penalty_is_in_the_first_batch_ratio_line():
    """Review 71, 2: an activity L2 alone printed "penalty/data 0" (the
    weights' ratio) where the penalty was 1.57x the data loss."""
    initial = {"data_loss": 1.55, "penalty": 2.43, "weight_penalty": 0.0, "other_penalty": 2.43,
               "penalty_ratio": 0.0, "penalty_ratio_all": 2.43 / 1.55}
    assert activity_share_text(initial, lambda v: f"{v:.3g}") == "; counting the activity penalty 2.43 too: 1.57"
    assert activity_share_text({**initial, "other_penalty": 0.0}, str) == ""
    from reglint.reporters.html.profile_section import _with_activity

    analysis = {"penalty_ratio": 0.0, "penalty_estimates": [{"ratio": 1.42}]}  # the HTML's, from the JSON
    assert _with_activity(initial, analysis) == "; counting the activity penalty 2.43 too: 1.57 (static estimate 1.42)"
    assert _with_activity({**initial, "other_penalty": 0.0}, analysis) == ""


def test_a_measured_fix_moves_a_harmful_value_by_at_least_half_a_decade():
    """Review 71, 5: RL010's aim (1.5x the data loss) moved an activity L2
    of 0.3 measured at 1.57x, which the twin showed hurting, to 0.286: a
    trial that could only repeat the damage. It is taken to 0.3/sqrt(10)."""
    result = SimpleNamespace(variables=[], optimizer={}, data_loss=1.55,
                             layer_penalties=[LayerPenalty("d2", "activity", {"class": "L2", "l2": 0.3}, 2.43)])
    fix = PenaltyHurtsTraining().fix(result)
    [change] = fix.changes
    assert change.suggested == pytest.approx(0.3 / math.sqrt(10)) == 0.3 * LEAST_STEP
    assert "at least 3.2x below the value measured to hurt" in fix.aim
    # a formula asking for more than half a decade keeps its own value
    result.layer_penalties = [LayerPenalty("d2", "activity", {"class": "L2", "l2": 0.3}, 155.0)]
    [change] = PenaltyHurtsTraining().fix(result).changes
    assert change.suggested == pytest.approx(0.3 * 1.5 / 100)


def test_the_profiles_optimizer_line_says_ema_and_clipping_as_check_does(capsys):
    """Review 73, 3: check's optimizer line said "global_clipnorm 1, EMA of
    the weights 0.95 (use_ema)", profile's only the clipping."""
    from reglint.cli.app import main

    from helpers import FIXTURES

    path = FIXTURES / "keras_optimizers" / "ema_adamw.keras"
    assert main(["profile", str(path), "--steps", "2", "--device", "cpu"]) in (0, 1)
    line = next(x for x in capsys.readouterr().out.splitlines() if "optimizer:" in x)
    assert line.endswith("global_clipnorm 1, EMA of the weights 0.95 (use_ema)"), line
