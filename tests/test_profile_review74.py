"""Review 74: `reglint profile` on realistic models on a 2-core CPU. The
time budget cut ResNet50 and a transformer to one step of 150 (its 2 x 25
held-out records took the whole budget), then RL023 said the twin "did not
learn either"; BatchNorm CNNs fit their batches at chance on the held-back
slice and read the same; a fix trial not run for time read "every value
tried". No TensorFlow here: the budget's and the verdict's arithmetic."""

from __future__ import annotations

from types import SimpleNamespace

from reglint.engine.finding import Change
from reglint.profile.result import Budget, FixTrial, Start, Twin, TwinRun
from reglint.profile.twin import MIN_RECORDS, POINTS, Timescale, choose_budget, records_for
from reglint.rules.rl023_penalty_hurts_training import PenaltyHurtsTraining

MID = {"sgd_penalty": Timescale(50.0, "d/kernel", "(1-mu)*|w|/(lr*|g_pen|)")}


def test_a_costly_evaluation_takes_fewer_records_not_the_steps():
    """ResNet50: 0.59 s a step, 1.5 s per held-out record, 50 s left: 25
    records a run left one step; 7 records leave 26."""
    budget = choose_budget(MID, steps_override=None, per_step=0.5, eval_seconds=1.5, remaining=50.0,
                           time_budget=60.0, invariant=False)
    assert budget.records == 7 == records_for(50.0, 1.5) and budget.steps == 26
    assert budget.asked == 150  # the timescales' 3 x 50, cut: the verdict can say so
    cheap = choose_budget(MID, steps_override=None, per_step=1e-3, eval_seconds=0.01, remaining=50.0,
                          time_budget=60.0, invariant=False)
    assert cheap.records == POINTS and cheap.asked is None
    assert records_for(1.0, 5.0) == MIN_RECORDS


def _twin(ref_loss: list[float], asked: int | None, stats: dict | None) -> SimpleNamespace:
    def run(acc, loss):
        return TwinRun(step=[0, 1], data_loss=list(loss), val_loss=[2.3, 2.3], val_accuracy=list(acc),
                       kernel_norm=[1.0, 1.0])

    twin = Twin(budget=Budget(steps=1, reason="test", seconds_per_step=0.6, time_budget=60.0, asked=asked),
                penalized=run([0.1, 0.1], [2.3, 2.3]), unregularized=run([0.1, 0.1], ref_loss),
                removed=["d/kernel L2"], held_out={"chance": 0.1, "samples": 320, "trivial_loss": 2.3},
                synthetic=False, moving_statistics=stats)
    return SimpleNamespace(twin=twin, data={"path": "d.npz", "held_out": 320}, variables=[], optimizer={},
                           outcome=SimpleNamespace(trivial_loss=None, label="learning"), layer_penalties=[],
                           data_loss=2.3, weight_penalty_ratio=lambda include_invariant=False: 0.0, start=Start())


def test_an_unlearned_twin_says_when_the_time_budget_cut_it():
    judged = PenaltyHurtsTraining().judge(_twin([2.3, 2.2], asked=150, stats=None))
    assert judged.label == "twin-did-not-learn" and judged.values["twin_unlearned_reason"] == "time-budget"
    assert "after 1 steps of the 150 asked for, cut to fit --time-budget 60 s" in judged.message
    assert "both runs need about 180 s for their steps and records, loading besides: raise it" in judged.message


def test_an_unlearned_twin_that_fit_its_batches_names_batchnorms_statistics():
    stats = {"layers": ["bn"], "momentum": 0.99}
    judged = PenaltyHurtsTraining().judge(_twin([2.3, 0.4], asked=None, stats=stats))
    assert judged.values["twin_unlearned_reason"] == "stale-moving-statistics"
    assert "yet it fit its training batches (loss 0.4" in judged.message and "about 100 steps" in judged.message
    plain = PenaltyHurtsTraining().judge(_twin([2.3, 2.2], asked=None, stats=stats))
    assert "twin_unlearned_reason" not in plain.values  # it did not fit them either: no excuse


def test_a_fix_trial_cut_for_time_is_not_every_value_tried():
    """Review 74, 5: one trial ran, the next (a decade lower) did not fit
    the time budget; the remedy said "every value tried still trails"."""
    result = _twin([2.3, 0.4], asked=None, stats=None)
    twin = result.twin
    twin.unregularized.val_accuracy = [0.1, 0.9]
    twin.penalized.val_accuracy = [0.1, 0.1]
    rule = PenaltyHurtsTraining()
    trailing = TwinRun(step=[0, 1], data_loss=[2.3, 2.0], val_loss=[2.3, 2.0], val_accuracy=[0.1, 0.2],
                       kernel_norm=[1.0, 1.0])
    twin.trials.append(FixTrial([Change("lambda", 0.5, 0.05, "d", "kernel")], trailing))
    twin.trials_note = "the next fix, a decade lower, was not measured: it needs about 30 s more than --time-budget"
    [finding] = rule.check_measured(result, None)
    assert "the next fix, a decade lower, was not measured" in finding.message
    assert finding.remedy.startswith("the value tried still trails the twin")


def test_both_diverged_after_a_cut_says_the_steps_were_cut():
    """Review 75, 3: after 14 of 150 steps ResNet50's loss spiked in both
    runs, which a longer run recovered from: the verdict said "both runs
    diverged" and nothing of the cut."""
    result = _twin([2.3, 2.2], asked=150, stats=None)
    result.twin.penalized.diverged_at = result.twin.unregularized.diverged_at = 1
    judged = PenaltyHurtsTraining().judge(result)
    assert judged.label == "both-diverged" and "after 1 steps of the 150 asked for, cut to fit" in judged.message


def test_the_runs_stop_at_the_record_past_the_deadline(monkeypatch):
    """Review 75, 2: the plan's step time was measured on an idle machine;
    under load ResNet50 ran 88.7 s of a 60 s budget, nothing watching the
    clock during the runs. They now stop at the first record past it."""
    import time

    import reglint.profile.twin as twin_module

    advanced: list[int] = []
    monkeypatch.setattr(twin_module, "restore", lambda variables, state: None)
    monkeypatch.setattr(twin_module, "snapshot", lambda backend, variables: None)

    def advance(backend, lane, first, last, inputs, evaluator):
        advanced.append(last)
        time.sleep(0.02)

    monkeypatch.setattr(twin_module, "_advance", advance)
    lane = twin_module._Lane(step_fn=None, opt=None, run=TwinRun(step=[0], data_loss=[1.0], kernel_norm=[1.0]),
                             state=None)
    model = SimpleNamespace(variables=[])
    taken, stopped = twin_module._lockstep(None, model, [lane], None, None, 100, None, records=10,
                                           deadline=time.perf_counter() + 0.05)
    assert not stopped and 10 <= taken < 100 and advanced[-1] == taken
    advanced.clear()
    assert twin_module._lockstep(None, model, [lane], None, None, 100, None, records=10) == (100, False)
    assert len(advanced) == 10
