"""PyTorch optimizers and schedulers as torch runs them (review 31), on
``fixtures/torch_optimizers`` (``make_torch_optimizer_fixtures.py``; torch's
own answers in its manifest): RMSprop with momentum was read as SGD once it
had stepped, SGD's dampening was ignored (a false RL003 error), a cycling
scheduler's peak lr was judged with the momentum saved mid-cycle, CyclicLR's
peak was not read, a tensor lr was 'not saved', an optimizer pickled whole
sank the file, MultiheadAttention's in_proj_bias was no bias, and a dynamo
export's zero initial state counted as a parameter."""

from __future__ import annotations

import json

import pytest

from reglint.engine.analysis import Analysis, TrainingContext
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings
from reglint.model import Role
from reglint.readers import read_model

from helpers import FIXTURES

HERE = FIXTURES / "torch_optimizers"
TRUTH = json.loads((HERE / "manifest.json").read_text())["files"]


def findings(name: str, code: str) -> list:
    report = lint_file(str(HERE / name), Settings(context=TrainingContext()))
    assert report.error is None, report.error
    return [f for f in report.findings if f.code == code]


@pytest.mark.parametrize("name", ["rmsprop_momentum.pt", "adamax_step0.pt", "objects.pt", "sgd_dampening.pt"])
def test_the_class_is_torchs(name):
    assert read_model(HERE / name).optimizer.class_name == TRUTH[name]["class"]


def test_dampening_takes_the_shrink_torch_measures():
    """torch: 0.00525 per step (a heavy ball at lr*(1-d) = 0.05); reglint
    said 0.05 and erred. Under RL003's 0.01 warning level now."""
    dyn = Analysis(read_model(HERE / "sgd_dampening.pt")).dynamics
    assert dyn.contraction(0.0) == pytest.approx(TRUTH["sgd_dampening.pt"]["shrink_per_step"], rel=0.02)
    assert not findings("sgd_dampening.pt", "RL003")


@pytest.mark.parametrize("name", ["sgd_onecycle.pt", "sgd_cycliclr.pt"])
def test_a_cycling_schedule_is_judged_at_its_peak_with_the_momentum_torch_gives_it(name):
    """The largest lr*wd/(1-momentum) torch's schedule reaches: OneCycleLR
    0.00667 (reglint said 0.0131 with the momentum saved mid-cycle),
    CyclicLR 0.0125 (its peak, in the scheduler's state, was not read)."""
    dyn = Analysis(read_model(HERE / name)).dynamics
    assert dyn.total_shrink(0.0) == pytest.approx(TRUTH[name]["largest_slow_shrink"], rel=1e-3)


def test_cycliclr_is_named():
    lr = read_model(HERE / "sgd_cycliclr.pt").optimizer.learning_rate
    assert (lr.schedule, lr.peak) == ("CyclicLR", pytest.approx(0.5))


def test_a_tensor_learning_rate_is_read():
    opt = read_model(HERE / "sgd_tensor_lr.pt").optimizer
    assert opt.learning_rate.initial == pytest.approx(TRUTH["sgd_tensor_lr.pt"]["lr"])
    (rl003,) = findings("sgd_tensor_lr.pt", "RL003")  # 0.5*0.01/0.1 = 0.05 per step
    assert rl003.values["shrink_per_step"] == pytest.approx(0.05)


def test_a_model_and_optimizer_pickled_whole_are_read():
    model = read_model(HERE / "objects.pt")
    assert model.trainable_params == TRUTH["objects.pt"]["parameters"]
    assert model.optimizer.learning_rate.initial == pytest.approx(TRUTH["objects.pt"]["lr"])
    assert all(g.mapping == "exact" for g in model.optimizer.param_groups)


def test_one_dimensional_attention_parameters_are_biases_or_norms():
    roles = {f"{layer.path}.{var.name}": var.role for layer, var in read_model(HERE / "attention.pt").variables()}
    one_dim = TRUTH["attention.pt"]["one_dim"]
    assert {name for name in roles if name.endswith("in_proj_bias")} <= set(one_dim)
    assert all(roles[name] in (Role.BIAS, Role.BETA, Role.GAMMA) for name in one_dim), roles


def test_a_dynamo_exports_initial_state_is_not_a_parameter():
    assert read_model(HERE / "gru_dynamo.onnx").trainable_params == TRUTH["gru_dynamo.onnx"]["parameters"]


def test_sgd_without_momentum_is_not_said_to_be_saved_before_its_first_step():
    assert TRUTH["sgd_plain.pt"]["state_entries"] == 0  # torch keeps none, whatever the step
    notes = read_model(HERE / "sgd_plain.pt").notes
    assert any("SGD without momentum keeps none" in n for n in notes)
    assert not any("saved before its first step" in n for n in notes)


def test_a_penalty_gradient_under_eps_is_a_plain_l2_not_a_normalised_drift():
    """timm's RMSpropTF recipe (eps 1e-3): torch shrinks a weight the data
    does not hold ~0.0016 per step; RL007 said it drifts 0.16 per step."""
    (rl007,) = findings("rmsprop_tf_eps.pt", "RL007")
    assert "is below 0.001 (the optimizer's eps)" in rl007.message
    shown = float(rl007.message.rsplit("by about ", 1)[1].split(" ")[0])
    assert shown == pytest.approx(TRUTH["rmsprop_tf_eps.pt"]["shrink_per_step"], rel=0.05)


def test_explain_layer_on_a_checkpoint_shows_the_decay_that_acts_on_it():
    """Review 31, D13: --layer always ended 'no regularized layer matches'
    on a PyTorch checkpoint, whose layers carry no regularizer of their own."""
    import subprocess
    import sys

    def explain(layer):
        return subprocess.run([sys.executable, "-m", "reglint", "explain", str(HERE / "sgd_dampening.pt"),
                               "--layer", layer], capture_output=True, text=True, timeout=120)

    done = explain("2")
    assert done.returncode == 0, done.stderr
    assert "optimizer's decay above is what acts on them" in done.stdout and "weight_decay" in done.stdout
    missing = explain("nothere")
    assert missing.returncode == 2 and "no layer matches 'nothere'; the layers are" in missing.stderr


def test_a_parameter_stored_as_another_through_identity_is_named():
    """Review 31, D4: a trained ResNet's two equal BatchNorm biases are
    stored once by the legacy exporter, the second an Identity of the first;
    reglint counted 8 values short of torch with no word why."""
    truth = TRUTH["residual_legacy.onnx"]
    assert truth["equal_biases"]
    model = read_model(HERE / "residual_legacy.onnx")
    (note,) = [n for n in model.notes if "through an Identity node" in n]
    assert "downsample.1.bias = bn2.bias" in note
    held = int(note.rsplit("may hold ", 1)[1].split(" ")[0])
    assert model.trainable_params + held == truth["parameters"]


def test_adagrads_drift_slows_as_its_accumulator_grows():
    """Review 31, D12: 'about lr per step' holds for Adagrad's first step
    only; torch moves a steadily pulled weight ~2*lr*sqrt(T) in T steps."""
    dyn = Analysis(read_model(HERE / "adagrad.pt")).dynamics
    moved = TRUTH["adagrad.pt"]["distance_in_100_steps"]
    assert dyn.steps_to_drift(moved) == pytest.approx(100, rel=0.15)
    (rl007,) = findings("adagrad.pt", "RL007")
    assert "lr/sqrt(t) at step t" in rl007.message


def test_the_lead_group_is_the_one_torch_shrinks_fastest_with_dampening():
    """Review 32, D10: the ranking of groups ignored dampening, so the note
    named the dampened group (0.00525 per step in torch) as the fastest
    beside an undampened one (0.0446); RL003 errs on the undampened one."""
    truth = TRUTH["sgd_dampening_groups.pt"]["shrink_per_step"]
    model = read_model(HERE / "sgd_dampening_groups.pt")
    assert model.optimizer.lead_group == max(range(2), key=lambda i: truth[i]) == 1
    (rl003,) = findings("sgd_dampening_groups.pt", "RL003")
    assert "param group 1" in rl003.message


def test_explain_says_what_rl007_says_of_an_adaptive_optimizers_decay():
    """Review 33, D1: explain said an unsupported weight 'moves ~lr per
    step' where RL007, on the same file, says the decay is a plain L2 under
    the optimizer's eps, shrinking 0.0016 per step."""
    import subprocess
    import sys

    (rl007,) = findings("rmsprop_tf_eps.pt", "RL007")
    done = subprocess.run([sys.executable, "-m", "reglint", "explain", str(HERE / "rmsprop_tf_eps.pt"), "-f", "json"],
                          capture_output=True, text=True, timeout=120)
    motion = json.loads(done.stdout)["optimizer_decay"]["adaptive_motion"]
    assert motion and rl007.message.endswith(motion)
    assert "0.0016 per step" in motion


def test_explain_lists_a_dampened_groups_own_lr():
    """Review 33, D11: explain showed 'lr 0.05' for a group check lists at
    lr 0.5 (the 0.05 is lr*(1-dampening))."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "reglint", "explain", str(HERE / "sgd_dampening_groups.pt")],
                          capture_output=True, text=True, timeout=120)
    assert "param group 0        lr 0.5 (0.05 after dampening), momentum 0.9" in done.stdout


@pytest.mark.parametrize("folder", ["hf_cyclic", "accelerate_cyclic"])
def test_a_folders_scheduler_file_gives_the_cyclic_peak(folder):
    """Review 33, D4: the CyclicLR peak was read from a single .pt only; a
    Trainer folder's scheduler.pt and accelerate's scheduler.bin gave the
    lr when saved as the peak."""
    path = HERE / folder / "checkpoint-10" if folder == "hf_cyclic" else HERE / folder
    lr = read_model(path).optimizer.learning_rate
    assert (lr.schedule, lr.peak) == ("CyclicLR", pytest.approx(TRUTH[folder]["peak_lr"]))


def test_rl007_names_each_groups_coupled_decay():
    """Review 33, D8: torch Adam's coupled weight_decay in two groups was
    named for the lead group only; each group's is normalised by its own
    steps."""
    truth = TRUTH["adam_coupled_groups.pt"]["groups"]
    found = {f.target: f for f in findings("adam_coupled_groups.pt", "RL007")}
    assert set(found) == {"optimizer.param_groups[0].weight_decay", "optimizer.param_groups[1].weight_decay"}
    for index, group in enumerate(truth):
        finding = found[f"optimizer.param_groups[{index}].weight_decay"]
        assert finding.values["learning_rate"] == pytest.approx(group["lr"])
        assert finding.values["coupled_l2"] == pytest.approx(group["weight_decay"] / 2)


def test_a_second_optimizers_parameters_are_not_frozen():
    """Review 33, D5: in a Lightning checkpoint with two optimizers, the
    parameters only the second updates were counted as frozen."""
    model = read_model(HERE / "lightning_two_optimizers.ckpt")
    assert model.trainable_params == TRUTH["lightning_two_optimizers.ckpt"]["trainable"]


def test_the_check_report_shows_a_groups_dampening():
    """Review 35, D5: check listed the two groups alike (lr 0.5, momentum
    0.9, weight_decay 0.01) and erred on one; torch shrank them 0.0052 and
    0.045 per step (manifest): group 0's steps are dampened 0.9. Its line
    now says the rate the rules use, as explain does."""
    import subprocess
    import sys

    truth = TRUTH["sgd_dampening_groups.pt"]["shrink_per_step"]
    assert truth[1] / truth[0] > 5
    out = subprocess.run([sys.executable, "-m", "reglint", "check", str(HERE / "sgd_dampening_groups.pt"),
                          "--no-cache"], capture_output=True, text=True, timeout=120).stdout
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if line.strip().startswith("group ")}
    assert "lr 0.5 (0.05 after dampening 0.9)" in lines["group 0"]
    assert "dampening" not in lines["group 1"]


def test_param_groups_that_differ_only_in_eps_are_judged_each_at_its_own():
    """Review 36, D1: two Adam groups with weight_decay 2e-4 and eps 1e-2 /
    1e-8 were one finding at group 0's eps ('plain L2, 2e-5 per step');
    torch shrinks group 0 by 2e-5 and group 1 by 1e-3 per step (manifest)."""
    truth = TRUTH["adam_group_eps.pt"]["shrink_per_step"]
    assert truth[1] / truth[0] > 20
    by_group = {("param group 0" in f.message, "param group 1" in f.message): f
                for f in findings("adam_group_eps.pt", "RL007")}
    assert set(by_group) == {(True, False), (False, True)}
    first, second = by_group[True, False].message, by_group[False, True].message
    assert "below 0.01" in first
    assert float(first.rsplit("by about ", 1)[1].split(" ")[0]) == pytest.approx(truth[0], rel=0.05)
    assert "drifts to zero at about lr 0.001 per step" in second and truth[1] == pytest.approx(1e-3, rel=0.1)


def test_lbfgs_iterations_are_its_steps():
    """Review 41, 5: LBFGS keeps one state entry for all parameters, its
    iterations in ``n_iter``; a trained file read as 'saved before its first
    step', with no steps."""
    model = read_model(HERE / "lbfgs.pt")
    assert model.optimizer.class_name == "LBFGS"
    assert model.optimizer.iterations == TRUTH["lbfgs.pt"]["n_iter"] > 0
    assert not any("saved before its first step" in note for note in model.notes)
    assert any("LBFGS keeps flat vectors" in note for note in model.notes)


def test_reduce_lr_on_plateau_says_the_saved_rate_is_after_its_cuts():
    """Review 41, 6: ReduceLROnPlateau keeps no starting rate; the saved lr
    (0.001 after two cuts from 0.1) was judged with no word that the run
    trained faster before."""
    truth = TRUTH["sgd_plateau.pt"]
    model = read_model(HERE / "sgd_plateau.pt")
    assert truth["saved_lr"] < truth["start_lr"]
    assert model.optimizer.learning_rate.initial == pytest.approx(truth["saved_lr"])
    [note] = [n for n in model.notes if n.startswith("ReduceLROnPlateau")]
    assert f"by {truth['factor']:g}" in note and "--learning-rate" in note
