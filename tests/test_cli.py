"""The command line: exit codes, the JSON contract, rules and explain."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reglint.engine.identity import display_path

from helpers import FIXTURES, KERAS_FIXTURES

BAD = str(KERAS_FIXTURES / "scenario_penalty_dominates.keras")
GOOD = str(KERAS_FIXTURES / "scenario_healthy_sgd.keras")
WARN = str(KERAS_FIXTURES / "scenario_decayed_twice.keras")  # warnings only


def reglint(*args):
    return subprocess.run([sys.executable, "-m", "reglint", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "code"), [
    ((GOOD,), 0),
    ((BAD,), 1),
    (("check", BAD), 1),
    ((BAD, "--exit-zero"), 0),
    ((WARN,), 0),
    ((WARN, "--fail-on", "warning"), 1),
    ((BAD, "--fail-on", "none"), 0),
    ((BAD, "--ignore", "RL001"), 0),
    ((BAD, "--select", "RL002"), 0),
    ((GOOD, "no_such_model.keras"), 2),
    ((GOOD, "--format", "nope"), 2),
    ((GOOD, "--fail-on", "sometimes"), 2),
    ((GOOD, "--no-such-option"), 2),
])
def test_exit_codes(args, code):
    result = reglint(*args, "--no-cache")
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr


CNN_ONNX = str(FIXTURES / "onnx" / "cnn.onnx")
HEALTHY_ADAM = str(KERAS_FIXTURES / "scenario_healthy.keras")


def one_usage_error(result) -> str:
    """The run refused its input: exit 2, nothing on stdout, one stderr line (returned)."""
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


@pytest.mark.parametrize(("args", "expected"), [
    (("--lr", "inf"), "invalid value for '--learning-rate' / '--lr': inf is not a finite number"),
    (("--lr", "nan"), "invalid value for '--learning-rate' / '--lr': nan is not a finite number"),
    (("--weight-decay", "nan"), "invalid value for '--weight-decay': nan is not a finite number"),
    (("--weight-decay", "inf"), "invalid value for '--weight-decay': inf is not a finite number"),
    (("--momentum", "nan"), "invalid value for '--momentum': nan is not a finite number"),
    (("--target-var", "inf"), "invalid value for '--target-var': inf is not a finite number"),
    (("--samples", "-5"), "invalid value for '--samples'"),
    (("--epochs", "0"), "invalid value for '--epochs'"),
    (("--steps", "nan"), "invalid value for '--steps'"),
])
def test_non_finite_or_out_of_range_context_values_are_usage_errors(args, expected):
    """Not an RL012 finding against the file ("optimizer learning_rate is inf"), not exit 1."""
    line = one_usage_error(reglint(str(KERAS_FIXTURES / "dense_l2.keras"), *args, "--no-cache"))
    assert line.startswith("reglint: error: " + expected), line


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "x", "1_0", "1e999", "0x1", ""])
@pytest.mark.parametrize("flag", ["--l2", "--l1"])
def test_bad_pattern_factors_are_usage_errors(flag, value):
    """LAMBDA is a plain decimal or scientific number: Python's float() would
    read '1_0' as 10 and lint with a lambda the user never typed."""
    line = one_usage_error(reglint(CNN_ONNX, flag, f"conv1={value}", "--no-cache"))
    assert flag in line and f"conv1={value}" in line and "RL012" not in line, line


@pytest.mark.parametrize("item", ["=0.1", " =0.1"])
def test_an_empty_pattern_is_a_usage_error(item):
    """'=0.1' reaching every layer while 'conv1=' is refused was a trap: '*' says every layer."""
    line = one_usage_error(reglint(CNN_ONNX, "--l2", item, "--no-cache"))
    assert line == f"reglint: error: --l2 '{item}' has an empty PATTERN: use '*=0.1' for every layer"


@pytest.mark.parametrize("value", ["1e-4", ".5", "3.", "2E+1"])
def test_plain_pattern_factors_are_read(value):
    data = json.loads(reglint(CNN_ONNX, "-f", "json", "--no-cache", "--l2", f"conv1={value}").stdout)
    regs = [r for layer in data["files"][0]["model"]["layers"] if layer["name"] == "conv1"
            for r in layer["regularizers"]]
    assert [r["l2"] for r in regs] == [float(value)]


def test_optimizer_must_be_a_known_class():
    line = one_usage_error(reglint("-f", "concise", HEALTHY_ADAM, "--optimizer", "Bogus", "--no-cache"))
    assert line.startswith("reglint: error: invalid value for '--optimizer': unknown optimizer 'Bogus'; known: ")
    assert all(name in line for name in ("AdamW", "SGD", "RMSprop", "Lion", "RAdam")), line
    # the names the readers know, in any case or with torch's module path, mean that class: Adam's
    # RL007 is reported as for the file's own (Adam) optimizer, not lost to an unknown class
    for name in ("adam", "ADAM", "torch.optim.Adam", "keras.optimizers.Adam"):
        result = reglint("-f", "json", HEALTHY_ADAM, "--optimizer", name, "--no-cache")
        data = json.loads(result.stdout)["files"][0]
        assert data["model"]["optimizer"]["class"] == "Adam", name
        assert "RL007" in {f["code"] for f in data["findings"]}, name
    result = reglint("-f", "json", HEALTHY_ADAM, "--optimizer", "torch.optim.adamw", "--no-cache")
    assert json.loads(result.stdout)["files"][0]["model"]["optimizer"]["class"] == "AdamW"


@pytest.mark.parametrize(("name", "weight_decay", "coupled_l2", "code"), [
    ("torch.optim.Adam", None, 1.0, "RL007"),  # torch's Adam: wd*w in the gradient = Keras L2(wd/2)
    ("torch.optim.SGD", None, 1.0, None),
    ("torch.optim.AdamW", 2.0, None, None),  # decoupled, as torch's AdamW
    ("Adam", 2.0, None, None),  # Keras' Adam: decoupled weight_decay
])
def test_a_torch_spelled_optimizer_gets_torch_decay_semantics(name, weight_decay, coupled_l2, code):
    """--optimizer torch.optim.Adam on an ONNX file is read as the same optimizer saved in a .pt is."""
    result = reglint(str(FIXTURES / "onnx" / "mlp.onnx"), "-f", "json", "--no-cache", "--optimizer", name,
                     "--lr", "0.1", "--weight-decay", "2")
    data = json.loads(result.stdout)["files"][0]
    opt = data["model"]["optimizer"]
    assert (opt["class"], opt["weight_decay"], opt["coupled_l2"]) == (name.split(".")[-1], weight_decay, coupled_l2)
    if code:
        assert code in {f["code"] for f in data["findings"]}


def test_weight_decay_replaces_a_torch_checkpoints_decay():
    """adam_coupled_wd.pt saved Adam weight_decay 1e-4 (coupled): --weight-decay 0.5 is the one decay,
    read as torch's Adam reads it (L2 0.25), in the optimizer and its param group, with a note."""
    result = reglint(str(FIXTURES / "torch" / "adam_coupled_wd.pt"), "-f", "json", "--no-cache",
                     "--weight-decay", "0.5")
    model = json.loads(result.stdout)["files"][0]["model"]
    opt = model["optimizer"]
    assert (opt["weight_decay"], opt["coupled_l2"]) == (None, 0.25)
    [group] = opt["param_groups"]
    assert (group["weight_decay"], group["coupled_l2"], group["hyperparameters"]["weight_decay"]) == (None, 0.25, 0.5)
    assert "weight_decay 0.5 (--weight-decay) replaces the file's 0.0001" in model["notes"]
    full = reglint(str(FIXTURES / "torch" / "adam_coupled_wd.pt"), "--no-cache", "--weight-decay", "0.5").stdout
    assert "1.00e-4" not in full.split("data-loss scale")[1].split("warning")[0]


def test_explain_shrink_labels_name_the_numbers_they_show():
    """L2(0.5) + weight_decay 2 at lr 0.1 (SGD): the L2 part 2*lr*lambda = 0.1 and the decay's lr*wd = 0.2
    are shown as two terms adding to 0.3; an L1-only tensor shows the decay alone, its L1 pull apart."""
    onnx = str(FIXTURES / "onnx" / "mlp.onnx")
    flags = ("--optimizer", "SGD", "--lr", "0.1", "--weight-decay", "2", "--layer", "fc1")
    both = reglint("explain", onnx, "--l2", "fc1=0.5", *flags).stdout
    assert "per-step shrink      2*lr*lambda/(1-momentum) + lr*weight_decay = 0.1 + 0.2 = 0.3 ->" in both
    l1_only = reglint("explain", onnx, "--l1", "fc1=0.5", *flags).stdout
    shrink_lines = [line.strip() for line in l1_only.splitlines() if line.strip().startswith("per-step shrink")]
    assert shrink_lines and all("lambda" not in line for line in shrink_lines), shrink_lines
    assert "per-step shrink      lr*weight_decay = 0.2 -> timescale 5 steps\n" in l1_only
    assert "per-step L1 pull     lr*l1/(1-momentum) = 0.05" in l1_only
    data = json.loads(reglint("explain", onnx, "-f", "json", "--l2", "fc1=0.5", *flags).stdout)
    [row] = data["tensors"]
    assert [t["value"] for t in row["shrink_terms"]] == pytest.approx([0.1, 0.2])
    assert row["shrink_per_step"] == pytest.approx(0.3)


def test_l2_pattern_matching_nothing_is_a_usage_error():
    """A typo in --l2 must not lint the model without the regularizer the user meant."""
    line = one_usage_error(reglint(CNN_ONNX, "--l2", "nomatch=0.1", "--no-cache"))
    assert "--l2 'nomatch=0.1' matches no layer" in line and "conv1" in line and "head" in line, line
    line = one_usage_error(reglint(CNN_ONNX, "--l1", "bn1=0.1", "--no-cache"))
    assert "--l1 'bn1=0.1' matches layers without a kernel (bn1)" in line, line
    # a layer with no variables at all (Flatten) is named too, not "no layer"
    flat = str(FIXTURES / "keras" / "scenario_embedding_chain_sgd.keras")
    line = one_usage_error(reglint(flat, "--l2", "flatten=0.1", "--no-cache"))
    assert "--l2 'flatten=0.1' matches layers without a kernel (flatten)" in line, line
    # a pattern matching in one of the files linted is fine
    result = reglint(CNN_ONNX, str(FIXTURES / "onnx" / "mlp.onnx"), "--l2", "conv1=0.01", "--no-cache")
    assert result.returncode in (0, 1) and "error" not in result.stderr, result.stderr


def test_l2_covers_depthwise_kernels_and_combines_with_l1():
    """cnn.onnx's "dw" is a depthwise Conv (role depthwise_kernel): --l2 'dw=...' regularizes it, as
    Keras' DepthwiseConv2D(depthwise_regularizer=...) would; --l2 and --l1 on one layer make an L1L2."""
    data = json.loads(reglint(CNN_ONNX, "-f", "json", "--no-cache", "--l2", "dw=0.1", "--l2", "conv1=0.01",
                              "--l1", "conv1=0.001").stdout)
    layers = data["files"][0]["model"]["layers"]
    roles = {(layer["path"], v["name"]): v["role"] for layer in layers for v in layer["variables"]}
    regs = {(layer["path"], roles[(layer["path"], r["target"])]): r for layer in layers
            for r in layer["regularizers"]}
    assert regs[("dw", "depthwise_kernel")]["l2"] == pytest.approx(0.1)
    assert regs[("conv1", "kernel")]["kind"] == "l1l2"
    assert (regs[("conv1", "kernel")]["l1"], regs[("conv1", "kernel")]["l2"]) == (pytest.approx(0.001),
                                                                                  pytest.approx(0.01))
    assert set(regs) == {("dw", "depthwise_kernel"), ("conv1", "kernel")}


def test_unreadable_input_is_one_line_and_others_are_still_linted(tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    result = reglint(BAD, str(broken), "--format", "json", "--no-cache")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "broken.keras" in result.stderr
    files = {f["path"]: f for f in json.loads(result.stdout)["files"]}  # named from the working directory
    assert files[display_path(str(broken))]["error"] and files[display_path(str(broken))]["model"] is None
    assert files[display_path(BAD)]["error"] is None and files[display_path(BAD)]["findings"][0]["code"] == "RL001"


def test_json_contract():
    data = json.loads(reglint(BAD, "--format", "json", "--no-cache").stdout)
    assert data["version"] == 1
    [entry] = data["files"]
    assert set(entry) >= {"path", "error", "model", "findings"}
    model = entry["model"]
    assert set(model) >= {"format", "keras_version", "params", "layers", "optimizer", "loss"}
    assert model["params"] == {"total": 118794, "trainable": 118794, "non_trainable": 0}
    layer = model["layers"][0]
    assert set(layer) >= {"name", "class", "path", "params", "regularizers"}
    assert set(layer["params"]) == {"trainable", "non_trainable"}
    assert set(layer["regularizers"][0]) >= {"target", "kind", "l1", "l2", "config"}
    finding = entry["findings"][0]
    assert set(finding) >= {"code", "name", "severity", "layer", "message"}
    assert finding["severity"] in ("error", "warning", "info")


def test_rules_and_rule_commands():
    listing = reglint("rules").stdout
    assert "RL001" in listing and "penalty-dominates-loss" in listing
    data = json.loads(reglint("rules", "--format", "json").stdout)
    assert {r["code"] for r in data} >= {"RL001", "RL002", "RL003"}
    doc = reglint("rule", "RL003").stdout
    assert doc.startswith("# weight-decay-too-strong (RL003)")
    assert reglint("rule", "RL999").returncode == 2
    # review 45, 6: the code CI formats give an unreadable file is explained where the SARIF help points
    unreadable = reglint("rule", "RL900")
    assert unreadable.returncode == 0 and unreadable.stdout.startswith("# unreadable-model (RL900)")
    assert "`reglint rule RL900`" in listing.splitlines()[-1]


@pytest.mark.parametrize(("args", "expected"), [
    (("rules", "-f", "yaml"), "'yaml' is not one of text, json"),
    (("rules", "--format", "sarif"), "'sarif' is not one of text, json"),
    (("explain", str(KERAS_FIXTURES / "dense_l2.keras"), "-f", "bogus"), "'bogus' is not one of full, json"),
    (("explain", str(KERAS_FIXTURES / "dense_l2.keras"), "-f", "sarif"), "'sarif' is not one of full, json"),
])
def test_rules_and_explain_accept_only_their_own_formats(args, expected):
    line = one_usage_error(reglint(*args))
    assert line == f"reglint: error: invalid value for '--format' / '-f': {expected}", line


def test_explain_answers_the_seed_question():
    out = reglint("explain", str(KERAS_FIXTURES / "conv2d_seed_l2.keras"), "--format", "json")
    [row] = json.loads(out.stdout)["tensors"]
    assert row["weights"] == 1200 and row["layer_params"] == 1220
    assert abs(row["sum_sq_init"] - 13.333) < 1e-3
    assert abs(row["penalty_init"] - 0.1333) < 1e-3
    # the per-weight gradient depends on lambda and the init scale, not on the count
    assert abs(row["gradient_per_weight"] - 2 * 0.01 * row["init_rms"]) < 1e-12
    text = reglint("explain", str(KERAS_FIXTURES / "conv2d_seed_l2.keras")).stdout
    assert "Does NOT depend on the weight count" in text and "E[sum w^2]" in text
    # review 39: doubling the 20 filters multiplies sum w^2 at init by 16/13.33 = 1.2 under Glorot (Keras'
    # own fresh initialisations: 13.41 -> 17.93 at 80 filters), not 2; the typical weight by sqrt(0.6)
    penalty, weight = row["width_doubling"]
    assert penalty == pytest.approx(1.2) and weight == pytest.approx(0.6 ** 0.5)
    assert "roughly doubles" not in text and "multiplies its penalty at init by 1.2" in text
    assert "would it shrink, by 1/1.2 per doubling" in " ".join(text.split())


def test_explain_grows_an_l1_penalty_as_sum_abs_w_and_keeps_its_pull():
    """Review 54, 4: an L1 kernel was given the L2 factors (sum w^2's 1.2x
    and a pull 2*lambda*|w| falling 0.77x). An L1's penalty is
    lambda*sum|w|: under Glorot uniform E|w| = limit/2, so doubling the
    width of a [64, 64] kernel multiplies it by 2*sqrt(128/192); its pull
    lambda*sign(w) does not change."""
    path = str(KERAS_FIXTURES / "scenario_l1_jitter.keras")
    rows = {row["layer"]: row for row in json.loads(reglint("explain", path, "--format", "json").stdout)["tensors"]}
    dense = rows["dense"]
    assert dense["l1"] == 0.05 and dense["l2"] == 0 and dense["shape"] == [64, 64]
    assert dense["sum_abs_init"] == pytest.approx(4096 * (6 / 128) ** 0.5 / 2)
    assert dense["width_doubling"] == pytest.approx([2 * (128 / 192) ** 0.5, 1.0])
    text = " ".join(reglint("explain", path, "--layer", "dense").stdout.split())
    assert "E[sum |w|] at init 443" in text and "E[sum w^2]" not in text
    assert "multiplies its penalty at init by 1.6 (sum |w| is a width" in text
    assert "a typical weight's pull lambda*sign(w) by 1;" in text


def test_explain_answers_for_the_optimizers_weight_decay_too():
    """A model with no regularizer objects and AdamW(weight_decay=10): the
    decay reaches every weight, so explain shows its per-step shrink and
    timescale and RL003's verdict and fix instead of "nothing to explain"."""
    path = str(KERAS_FIXTURES / "scenario_bn_statistics_lag.keras")
    doc = json.loads(reglint("explain", path, "--format", "json").stdout)
    assert doc["tensors"] == []
    decay = doc["optimizer_decay"]
    assert decay["shrink_per_step"] == pytest.approx(1e-3 * 10) and decay["timescale_steps"] == pytest.approx(100)
    assert [f["code"] for f in decay["findings"]] == ["RL003", "RL008"]  # RL008: it decays gamma and beta too
    changes = {c["code"]: (c["current"], c["suggested"]) for c in decay["rule_changes"]}
    assert changes["RL003"] == (10.0, 5.0)
    # RL021's moving-statistics warning: the kernels feeding BatchNorm turn ~0.32 rad over its 100-step window;
    # its fix brings that to half its 0.1 level, weight_decay scaled by (0.05/0.32)^2
    assert set(changes) == {"RL003", "RL021"} and changes["RL021"][0] == 10.0
    assert changes["RL021"][1] == pytest.approx(10.0 * (0.05 / (2 * 1e-3 * 10 * 0.1 / 1.9) ** 0.5 / 10) ** 2)
    text = reglint("explain", path).stdout
    assert "optimizer weight_decay 10 at lr 0.001" in text and "timescale 100 steps" in text
    assert "nothing to explain" not in text
    seed = json.loads(reglint("explain", str(KERAS_FIXTURES / "conv2d_seed_l2.keras"), "--format", "json").stdout)
    assert seed["optimizer_decay"] is None


def torch_manifest_group(name: str) -> dict:
    entry = next(f for f in json.loads((FIXTURES / "torch" / "manifest.json").read_text())["files"]
                 if f["file"] == name)
    return entry["optimizer"]["groups"][0]


@pytest.mark.parametrize("name", ["sgd_wd_too_strong.pt", "sgd_momentum_wd.pt", "lightning.ckpt",
                                  "adam_coupled_wd.pt"])
def test_explain_answers_for_a_coupled_weight_decay(name):
    """PyTorch SGD/Adam weight_decay adds wd*w to the gradient: explain shows it (torch's own wd, its
    lr*wd/(1-momentum) shrink under SGD; RL007's normalisation under Adam) with the rules' findings on it,
    the ones check reports, instead of "nothing to explain"."""
    path, group = str(FIXTURES / "torch" / name), torch_manifest_group(name)
    doc = json.loads(reglint("explain", path, "--format", "json").stdout)
    decay = doc["optimizer_decay"]
    assert decay["kind"] == "coupled" and decay["weight_decay"] == pytest.approx(group["weight_decay"])
    checked = json.loads(reglint(path, "-f", "json", "--no-cache").stdout)["files"][0]["findings"]
    assert [f["code"] for f in decay["findings"]] == [f["code"] for f in checked
                                                      if f["target"] == "optimizer.weight_decay"]
    text = reglint("explain", path).stdout
    assert "nothing to explain" not in text and "(coupled: wd*w added to the gradient" in text
    if group["momentum"] is not None:  # SGD: the manifest's lr*wd/(1-b)
        shrink = group["lr"] * group["weight_decay"] / (1 - group["momentum"])
        assert decay["shrink_per_step"] == pytest.approx(shrink)
        assert f"lr*weight_decay/(1-momentum) = {shrink:.3g}" in text.replace("5.00e-4", "0.0005")
    else:
        # the per-step line says what RL007 says (one function): a normalised drift at about lr per step
        assert decay["shrink_per_step"] is None and "RL007 (warning)" in text
        assert decay["adaptive_motion"] and f"{decay['adaptive_motion']} (RL007)" in text.replace("\n", " ")
    if name == "sgd_wd_too_strong.pt":
        assert [(c["code"], c["current"]) for c in decay["rule_changes"]] == [("RL003", 1.0)]
        assert "RL003 (error)" in text and "RL003 suggests weight_decay 1 -> 0.005" in text


def test_explain_takes_checks_context_options_on_onnx():
    """explain mlp.onnx --l2 ... / --optimizer AdamW --lr --weight-decay explain what check reports."""
    mlp = str(FIXTURES / "onnx" / "mlp.onnx")
    doc = json.loads(reglint("explain", mlp, "-f", "json", "--l2", "fc1=0.01").stdout)
    [row] = doc["tensors"]
    checked = json.loads(reglint(mlp, "-f", "json", "--no-cache", "--l2", "fc1=0.01").stdout)["files"][0]
    [saved] = [v["penalty_saved"] for layer in checked["model"]["layers"] for v in layer["variables"]
               if v["name"] == "fc1.weight"]
    assert (row["layer"], row["regularizer"], row["penalty_saved"]) == ("fc1", "L2(0.01)", pytest.approx(saved))
    args = ("--optimizer", "AdamW", "--lr", "0.01", "--weight-decay", "50")
    decay = json.loads(reglint("explain", mlp, "-f", "json", *args).stdout)["optimizer_decay"]
    checked = json.loads(reglint(mlp, "-f", "json", "--no-cache", *args).stdout)["files"][0]["findings"]
    assert decay["shrink_per_step"] == pytest.approx(0.5)
    assert [f["code"] for f in decay["findings"]] == [f["code"] for f in checked
                                                      if f["target"] == "optimizer.weight_decay"]
    assert "RL003" in [f["code"] for f in decay["findings"]]
    line = one_usage_error(reglint("explain", mlp, "--l2", "fc=0.01"))
    assert "--l2 'fc=0.01' matches no layer" in line and "did you mean 'fc*'?" in line, line


def test_explain_words_the_whole_penalty_as_check_does():
    """scenario_l2_before_bn: the kernel feeds a BatchNorm; check says "penalty (at init): ... = 0.19% ...;
    RL001 counts 0 = 0%"; explain's "whole model's penalty" is that 0.19%, RL001's part named as such."""
    path = str(KERAS_FIXTURES / "scenario_l2_before_bn.keras")
    check_line = next(line for line in reglint(path, "--no-cache").stdout.splitlines() if "penalty (at init)" in line)
    assert "= 0.19% of the data-loss scale; RL001 counts 0 = 0%" in check_line
    text = reglint("explain", path).stdout
    assert "the whole model's penalty is 0.19% of the data loss; RL001 counts 0% of it." in text
    row = json.loads(reglint("explain", path, "-f", "json").stdout)["tensors"][0]
    assert row["model_penalty_whole_ratio"] == pytest.approx(0.0019, abs=5e-5) and row["model_penalty_ratio"] == 0


def test_explain_l1_zero_init_and_unrecorded_initializers():
    text = reglint("explain", str(KERAS_FIXTURES / "dense_l2.keras")).stdout
    bias = text[text.index("bias [16] · L1(1.00e-4)"):]
    bias = bias[:bias.index("with more data")]
    assert "gradient per weight  lambda*sign(w) ~ 1.00e-4" in bias and "2*lambda*w" not in bias
    assert "E[sum |w|] at init  0: initialised to zeros, so the penalty is 0 at init" in bias
    assert "x ? each" not in text and "Glorot" not in bias
    onnx = reglint("explain", str(FIXTURES / "onnx" / "mlp.onnx"), "--l2", "fc1=0.01").stdout
    assert "initializer None" not in onnx and "the file does not record an initializer" in onnx
    assert "in the saved weights" in onnx and " ? " not in onnx.split("penalty at init")[0]


@pytest.mark.parametrize(("exported", "expected"), [(None, "1"), ("4", "4")])
def test_console_script_asks_numpy_for_one_blas_thread(exported, expected):
    """Set before numpy loads (it reads the variable once); the user's own value wins."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if exported:
        env["OPENBLAS_NUM_THREADS"] = exported
    code = ("import os, sys; sys.argv = ['reglint', 'rules']; import reglint.cli as cli; cli.one_blas_thread(); "
            "assert 'numpy' not in sys.modules; print(os.environ['OPENBLAS_NUM_THREADS'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


@pytest.mark.parametrize("model", ["loss_weights_zero.keras", "loss_weights_by_position.keras"])
def test_odd_loss_weights_are_linted_not_crashed(model):
    """Linted with a positive loss scale, and reported (RL026), not a crash."""
    result = reglint(str(KERAS_FIXTURES / model), "--no-cache", "--format", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)["files"][0]
    assert report["model"]["analysis"]["loss_scale"]["value"] > 0
    assert [f["code"] for f in report["findings"] if f["severity"] == "error"] == ["RL026"]


def test_a_zero_loss_scale_is_a_usage_error(tmp_path):
    result = reglint(GOOD, "--no-cache", "--loss-scale", "0")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip().splitlines() == ["reglint: error: invalid value for '--loss-scale': 0 is not > 0"]
    (tmp_path / "pyproject.toml").write_text("[tool.reglint.context]\nloss-scale = 0\n")
    result = reglint(GOOD, "--no-cache", "--config", str(tmp_path / "pyproject.toml"))
    assert result.returncode == 2 and "expected a number > 0" in result.stderr


@pytest.mark.parametrize(("flag", "value", "key", "valid"), [
    ("--target-var", "0", "target-var", "> 0"),  # the data-loss scale divides by it
    ("--classes", "1", "classes", ">= 2"),  # ln 1 = 0: no classification
    ("--momentum", "1", "momentum", "in [0, 1)"),  # the shrink divides by 1 - momentum
])
def test_context_values_a_formula_cannot_use_are_usage_errors(tmp_path, flag, value, key, valid):
    """Each one line with the valid range, exit 2, from the flag and from the
    config alike (not a ZeroDivisionError, not a silent ln 2)."""
    onnx = str(FIXTURES / "onnx" / "mlp.onnx")
    result = reglint(onnx, "--no-cache", flag, value, "--l2", "*=0.01", "--lr", "0.1")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip().splitlines() == [f"reglint: error: invalid value for '{flag}': {value} is not {valid}"]
    (tmp_path / "pyproject.toml").write_text(f"[tool.reglint.context]\n{key} = {value}\n")
    result = reglint(onnx, "--no-cache", "--l2", "*=0.01", "--config", str(tmp_path / "pyproject.toml"))
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.strip().splitlines()) == 1 and f"expected a number {valid}, got {value}" in result.stderr


# ---------------------------------------------------------------------------
# inputs and outputs (the CLI review of 2026-11-30): what is read, what is
# written, and that a bad path writes nothing


def broken_model(folder) -> str:
    path = folder / "text.keras"
    path.write_text("not a model")
    return str(path)


def test_a_json_that_is_no_model_is_skipped_in_a_folder_but_refused_when_named(tmp_path):
    """A training log quoting its model's class (nested) does not pass the
    sniff; a top-level class_name/config that the reader rejects is skipped
    too when found by searching; named, either is one line and exit 2."""
    import shutil

    from reglint.readers.sniff import looks_like_keras_json

    shutil.copy(GOOD, tmp_path / "model.keras")
    (tmp_path / "training_log.json").write_text('{"model": {"class_name": "Sequential", "config": {}}}')
    (tmp_path / "layer.json").write_text('{"class_name": "Dense", "config": {"units": 3}}')
    assert not looks_like_keras_json(tmp_path / "training_log.json")
    assert looks_like_keras_json(tmp_path / "layer.json")
    assert looks_like_keras_json(KERAS_FIXTURES.parent / "exactness" / "json_mlp.json")
    result = reglint(str(tmp_path), "--format", "json", "--no-cache")
    assert (result.returncode, result.stderr) == (0, "")
    assert [f["path"] for f in json.loads(result.stdout)["files"]] == [display_path(str(tmp_path / "model.keras"))]
    for name in ("training_log.json", "layer.json"):
        result = reglint(str(tmp_path / name), "--no-cache")
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr.count("\n") == 1 and "not a Keras model architecture" in result.stderr
        # pre-commit names every .json of a commit (with --force-exclude): skipped there too
        result = reglint("--force-exclude", str(tmp_path / name), GOOD, "--no-cache", "-f", "json")
        assert (result.returncode, result.stderr) == (0, "")
        assert [f["path"] for f in json.loads(result.stdout)["files"]] == [display_path(GOOD)]


def test_create_baseline_reports_read_errors_and_exits_2(tmp_path):
    baseline = tmp_path / "bl.json"
    result = reglint(BAD, broken_model(tmp_path), "--baseline", str(baseline), "--create-baseline", "--no-cache")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("reglint: error: ") and "text.keras" in lines[0]
    assert lines[1] == f"reglint: wrote 1 finding to {baseline}; 1 unreadable file left out of it"
    assert [f["rule"] for f in json.loads(baseline.read_text())["findings"]] == ["RL001"]


@pytest.mark.parametrize("spec", [("-o", "{victim}"), ("-f", "json:{victim}"), ("-f", "concise,sarif:{victim}")])
def test_a_report_never_overwrites_a_model_being_linted(tmp_path, spec):
    import shutil

    victim = tmp_path / "victim.keras"
    shutil.copy(GOOD, victim)
    before = victim.read_bytes()
    option, value = spec
    result = reglint(str(victim), option, value.format(victim=victim), "--no-cache")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and f"to {victim}: it is a model being linted" in result.stderr
    assert victim.read_bytes() == before
    folder = reglint(str(tmp_path), "-o", str(victim), "--no-cache")  # found by searching the folder
    assert folder.returncode == 2 and victim.read_bytes() == before
    beside = reglint(str(tmp_path), "-o", str(tmp_path / "report.txt"), "--no-cache")  # a report beside it is fine
    assert beside.returncode == 0 and (tmp_path / "report.txt").is_file()
    savedmodel = KERAS_FIXTURES / "tfk_savedmodel_mlp"
    inside = reglint(str(savedmodel), "-o", str(savedmodel / "report.txt"), "--no-cache")
    assert inside.returncode == 2 and "it is a model being linted" in inside.stderr


@pytest.mark.parametrize(("outputs", "message"), [
    ("json:{tmp}/ok.json,sarif:/nonexistent/x.sarif", "cannot write the sarif report to /nonexistent/x.sarif: "
                                                      "no such folder /nonexistent"),
    ("json:{tmp}/same.txt,sarif:{tmp}/same.txt", "the json report and the sarif report both go to {tmp}/same.txt"),
    ("json:{tmp}/ok.json,sarif:{tmp}", "cannot write the sarif report to {tmp}: it is a folder"),
])
def test_report_paths_are_checked_before_anything_is_written(tmp_path, outputs, message):
    result = reglint(BAD, "-f", outputs.format(tmp=tmp_path), "--no-cache")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and message.format(tmp=tmp_path) in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_hard_links_are_the_same_file_to_the_output_checks(tmp_path):
    """A hard link is the model (or the other report) under another name: refused like the name itself."""
    import shutil

    victim = tmp_path / "victim.keras"
    shutil.copy(GOOD, victim)
    os.link(victim, tmp_path / "hard.keras")
    before = victim.read_bytes()
    result = reglint(str(victim), "-o", str(tmp_path / "hard.keras"), "--no-cache")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and "hard.keras: it is a model being linted" in result.stderr
    assert victim.read_bytes() == before
    (tmp_path / "same.txt").write_text("")
    os.link(tmp_path / "same.txt", tmp_path / "link.txt")
    result = reglint(GOOD, "-f", f"json:{tmp_path}/same.txt,sarif:{tmp_path}/link.txt", "--no-cache")
    assert (result.returncode, result.stdout) == (2, "")
    assert f"the json report and the sarif report both go to {tmp_path}/link.txt" in result.stderr
    assert (tmp_path / "same.txt").read_text() == ""


def test_output_file_and_statistics_never_drop_or_replace_a_report(tmp_path):
    """-o is where the stdout report goes (ruff); --statistics replace that report. A FORMAT:FILE
    report is never replaced by the statistics, and an -o that no report would reach is refused."""
    sarif, other = tmp_path / "a.json", tmp_path / "b.txt"
    result = reglint(BAD, "-f", f"sarif:{sarif}", "--statistics", "-o", str(sarif), "--no-cache")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip() == f"reglint: error: the sarif report and the statistics both go to {sarif}: " \
                                    "give each its own file"
    result = reglint(BAD, "-f", f"json:{sarif}", "-o", str(other), "--no-cache")
    assert (result.returncode, result.stdout) == (2, "")
    assert f"--output-file {other} gets no report: every format has its own file" in result.stderr
    assert list(tmp_path.iterdir()) == []
    # every format with its own file: the statistics are one more output, to -o
    result = reglint(BAD, "-f", f"sarif:{sarif}", "--statistics", "-o", str(other), "--no-cache")
    assert (result.returncode, result.stdout) == (1, "")
    assert json.loads(sarif.read_text())["runs"][0]["results"]
    assert other.read_text() == "1\tRL001\tpenalty-dominates-loss\nFound 1 finding (1 error) in 1 file.\n"


def test_output_file_dash_is_stdout(tmp_path):
    result = subprocess.run([sys.executable, "-m", "reglint", BAD, "-f", "concise", "-o", "-", "--no-cache"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout.startswith(BAD + ": RL001")
    assert list(tmp_path.iterdir()) == []
    result = subprocess.run([sys.executable, "-m", "reglint", BAD, "-f", "concise:-", "--no-cache"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout.startswith(BAD + ": RL001")
    assert list(tmp_path.iterdir()) == []


def test_profile_checks_the_report_path_before_loading_anything(tmp_path):
    """The output path is refused before --data is even opened (so long
    before any training)."""
    result = reglint("profile", GOOD, "--data", str(tmp_path / "missing.npz"), "-o", "/nonexistent/x")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("reglint: error: cannot write the full report to /nonexistent/x: "
                             "no such folder /nonexistent\n")


@pytest.mark.parametrize("output", [("-o", "{tmp}/out.txt"), ("-f", "json"), ("-f", "sarif:{tmp}/out.sarif")])
def test_when_nothing_could_be_read_only_the_errors_are_printed(tmp_path, output):
    bad = broken_model(tmp_path)
    option, value = output
    result = reglint(bad, option, value.format(tmp=tmp_path), "--no-cache")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and "text.keras" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.keras"]
    # some read, some not: the report for those read, and exit 2
    result = reglint(BAD, bad, option, value.format(tmp=tmp_path), "--no-cache")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert len(list(tmp_path.iterdir())) == (1 if option == "-f" and value == "json" else 2)


def test_a_training_output_folder_lints_every_model_in_it(tmp_path):
    """A Keras folder (the real keras_folder fixture) holding best.keras (RL001 error), an ONNX export and a
    Trainer checkpoint-3/: the error of best.keras is reported, not hidden by the folder's own model."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(KERAS_FIXTURES / "keras_folder", run)
    shutil.copy(BAD, run / "best.keras")
    shutil.copy(FIXTURES / "onnx" / "mlp.onnx", run / "export.onnx")
    shutil.copytree(FIXTURES / "torch" / "hf_trainer" / "checkpoint-3", run / "checkpoint-3")
    result = reglint(str(run), "-f", "json", "--no-cache")
    paths = [os.path.relpath(f["path"], run) for f in json.loads(result.stdout)["files"]]
    assert paths == [".", "best.keras", "checkpoint-3", "export.onnx"], result.stderr
    assert result.returncode == 1
    by_path = {os.path.relpath(f["path"], run): f for f in json.loads(result.stdout)["files"]}
    assert "RL001" in {f["code"] for f in by_path["best.keras"]["findings"]}


def test_explain_l1_tensor_with_an_unknown_initializer(tmp_path):
    """L1 on a kernel whose initializer reglint cannot size (a custom one):
    the L1 pull lambda*sign(w) needs no weight scale, so explain shows it
    (it used to fail with an internal TypeError on 0.0 * None)."""
    arch = json.loads((FIXTURES / "exactness" / "json_mlp.json").read_text())
    dense = arch["config"]["layers"][1]["config"]
    dense["kernel_regularizer"] = {"module": "keras.regularizers", "class_name": "L1", "config": {"l1": 0.01},
                                   "registered_name": None}
    dense["kernel_initializer"] = {"module": None, "class_name": "MyInit", "config": {},
                                   "registered_name": "acme>MyInit"}
    path = tmp_path / "l1_custom_init.json"
    path.write_text(json.dumps(arch))
    result = reglint("explain", str(path), "-f", "json")
    assert result.returncode == 0, result.stderr
    tensors = json.loads(result.stdout)["tensors"]
    assert [t["gradient_per_weight"] for t in tensors if t["regularizer"] == "L1(0.01)"] == [pytest.approx(0.01)]


def test_explain_layer_takes_a_nested_models_name():
    """Review 30, D10: --layer encoder (a nested model, "name, path or
    glob" in the help) ended 'no regularized layer matches', exit 2."""
    done = subprocess.run([sys.executable, "-m", "reglint", "explain",
                           str(FIXTURES / "keras" / "nested_functional_in_functional.keras"),
                           "--layer", "encoder", "-f", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [t["layer"] for t in json.loads(done.stdout)["tensors"]] == ["encoder/enc_conv"]


def test_explain_on_a_layer_nothing_acts_on_answers_and_a_missing_one_lists_the_layers():
    """Review 39, 10: --layer on a real layer with no regularizer and no
    weight decay exited 2 as an error; it is an answer (exit 0). A name that
    matches no layer lists the layers there are."""
    from reglint.readers import read_model

    path = str(KERAS_FIXTURES / "dense_l2.keras")  # dense_1 has no regularizer; SGD has no weight decay
    names = [layer.path for layer in read_model(path).layers if layer.class_name != "InputLayer"]
    bare = "dense_1"
    answered = reglint("explain", path, "--layer", bare)
    assert answered.returncode == 0 and "nothing shrinks its weights but the data" in answered.stdout
    missing = reglint("explain", path, "--layer", "nope")
    assert missing.returncode == 2 and f"no layer matches 'nope'; the layers are {', '.join(names)}" in missing.stderr
