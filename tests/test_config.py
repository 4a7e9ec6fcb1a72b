"""[tool.reglint] / reglint.toml: discovery, strict validation, and what a
setting does to a real run."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reglint.cli.app import app
from reglint.config.loader import find_config, load_settings
from reglint.engine.finding import Severity
from reglint.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def settings_from(tmp_path: Path, text: str, name: str = "pyproject.toml"):
    write(tmp_path / name, text)
    (tmp_path / "m.keras").touch()
    return load_settings([str(tmp_path / "m.keras")])


def config_error(tmp_path: Path, text: str, name: str = "pyproject.toml") -> str:
    with pytest.raises(ConfigError) as info:
        settings_from(tmp_path, text, name)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------
# discovery


def test_closest_config_wins_and_sets_the_root(tmp_path):
    (tmp_path / ".git").mkdir()
    write(tmp_path / "pyproject.toml", "[tool.reglint]\nfail-on = 'warning'\n")
    write(tmp_path / "sub" / "reglint.toml", "fail-on = 'info'\n")
    deep = tmp_path / "sub" / "models" / "a.keras"
    deep.parent.mkdir(parents=True)
    assert find_config([str(deep)]) == tmp_path / "sub" / "reglint.toml"
    settings = load_settings([str(deep)])
    assert settings.fail_on is Severity.INFO
    assert settings.root == str((tmp_path / "sub").resolve())
    assert load_settings([str(tmp_path / "x.keras")]).fail_on is Severity.WARNING


def test_pyproject_without_a_reglint_table_is_skipped(tmp_path):
    (tmp_path / ".git").mkdir()
    write(tmp_path / "pyproject.toml", "[tool.reglint]\nfail-on = 'warning'\n")
    write(tmp_path / "pkg" / "pyproject.toml", "[project]\nname = 'x'\n")
    assert find_config([str(tmp_path / "pkg" / "m.keras")]) == tmp_path / "pyproject.toml"


def test_dot_reglint_toml_comes_first(tmp_path):
    write(tmp_path / ".reglint.toml", "fail-on = 'none'\n")
    write(tmp_path / "reglint.toml", "fail-on = 'info'\n")
    write(tmp_path / "pyproject.toml", "[tool.reglint]\nfail-on = 'warning'\n")
    assert find_config([str(tmp_path)]) == tmp_path / ".reglint.toml"


def test_search_stops_at_the_repository_root(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.reglint]\nfail-on = 'warning'\n")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    assert find_config([str(repo / "models" / "a.keras")]) is None


def test_config_flag_replaces_discovery_and_isolated_ignores_it(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.reglint]\nfail-on = 'warning'\n")
    other = write(tmp_path / "ci" / "strict.toml", "fail-on = 'info'\n")
    paths = [str(tmp_path / "m.keras")]
    assert load_settings(paths, config=str(other)).fail_on is Severity.INFO
    assert load_settings(paths, isolated=True).fail_on is Severity.ERROR  # the default
    with pytest.raises(ConfigError, match="not found"):
        load_settings(paths, config=str(tmp_path / "missing.toml"))


def test_inline_config_overrides_one_key(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.reglint]\nfail-on = 'warning'\n[tool.reglint.lint]\nignore = ['RL002']\n")
    settings = load_settings([str(tmp_path / "m.keras")], config="lint.select = ['RL001']")
    assert settings.select == ["RL001"] and settings.ignore == ["RL002"] and settings.fail_on is Severity.WARNING


def test_a_config_path_that_is_no_file_says_what_it_is(tmp_path):
    """Review 27, D15: a folder, a FIFO or a symlink loop given to --config
    was 'not found'."""
    import os

    (tmp_path / "folder.toml").mkdir()
    os.mkfifo(tmp_path / "fifo.toml")
    (tmp_path / "loop.toml").symlink_to(tmp_path / "loop.toml")
    for name, why in (("folder.toml", "is a folder"), ("fifo.toml", "is not a regular file"),
                      ("loop.toml", "is a symbolic link loop"), ("missing.toml", "not found")):
        with pytest.raises(ConfigError, match=f"^configuration file .*{name} {why}$"):
            load_settings([str(tmp_path / "m.keras")], config=str(tmp_path / name))


def test_inline_per_file_ignores_replace_the_files_severities_merge(tmp_path):
    """Review 27, D14: ``--config 'lint.per-file-ignores = {}'`` was merged
    into the file's map and cleared nothing (ruff replaces the setting);
    a severity or threshold given inline still changes only its own key."""
    write(tmp_path / "pyproject.toml", "[tool.reglint.lint]\nper-file-ignores = { 'a.keras' = ['RL001'] }\n"
                                       "severity = { error = ['RL005'], info = ['RL007'] }\n")
    paths = [str(tmp_path / "m.keras")]
    assert load_settings(paths, config="lint.per-file-ignores = {}").per_file_ignores == {}
    assert load_settings(paths, config="lint.per-file-ignores = { 'b.keras' = ['RL005'] }").per_file_ignores == {
        "b.keras": ["RL005"]}
    severity = load_settings(paths, config="lint.severity.warning = ['RL008']").severity
    assert severity == {"RL005": Severity.ERROR, "RL007": Severity.INFO, "RL008": Severity.WARNING}


# ---------------------------------------------------------------------------
# every key


def test_the_reference_example_parses(tmp_path):
    text = Path(__file__).parent / "data" / "pyproject.reglint.toml"
    body = text.read_text().replace('extend-select = ["ACME1"]', "")  # no such plugin installed
    body = body.replace("l2-max = 1e-2\nl1-max = 1e-3\ndropout-max = 0.7\n", "penalty-ratio-error = 2.0\n")
    settings = settings_from(tmp_path, body)
    assert settings.fail_on is Severity.WARNING
    assert settings.overrides[0].expires == dt.date(2026, 12, 31)
    assert settings.per_file_ignores == {"models/legacy/*.h5": ["RL001", "RL002"]}
    assert settings.baseline == str(tmp_path.resolve() / ".reglint-baseline.json")


def test_all_sections(tmp_path):
    settings = settings_from(tmp_path, """
        [tool.reglint]
        fail-on = "none"
        output-format = "github,sarif:reglint.sarif"
        exclude = ["build"]
        extend-exclude = ["models/old/**"]
        respect-gitignore = false
        [tool.reglint.context]
        samples = 60000
        batch-size = 128
        epochs = 10
        classes = 10
        loss-scale = 2.3
        optimizer = "SGD"
        learning-rate = 0.1
        momentum = 0.9
        weight-decay = 0
        regularizers = [{layers = "fc*", target = "kernel", l2 = 1e-4}]
        custom-regularizers = {"acme>MyL2" = {kind = "l2", factor = "strength"}}
        [tool.reglint.lint]
        select = ["ALL"]
        ignore = ["RL01"]
        require-reason = true
        [tool.reglint.lint.severity]
        warning = ["RL001"]
        info = ["RL00"]
        [tool.reglint.lint.thresholds]
        penalty-ratio-error = 3
        [[tool.reglint.lint.overrides]]
        files = ["models/*.keras"]
        layers = ["encoder/*"]
        ignore = ["RL001"]
        reason = "tied embeddings"
        expires = "2999-01-01"
    """)
    assert settings.fail_on is None
    # a report path in the config is relative to its folder, as baseline is
    assert settings.output_format == f"github,sarif:{tmp_path / 'reglint.sarif'}"
    assert settings.exclude == ["build"] and settings.extend_exclude == ["models/old/**"]
    assert settings.respect_gitignore is False
    ctx = settings.context
    assert (ctx.samples, ctx.batch_size, ctx.epochs, ctx.classes) == (60000, 128, 10, 10)
    assert (ctx.learning_rate, ctx.momentum, ctx.weight_decay, ctx.optimizer) == (0.1, 0.9, 0.0, "SGD")
    assert ctx.regularizers == [{"layers": "fc*", "target": "kernel", "l2": 1e-4}]
    assert ctx.custom_regularizers == {"acme>MyL2": {"kind": "l2", "factor": "strength"}}
    assert settings.select == ["ALL"] and settings.ignore == ["RL01"]
    assert settings.severity["RL001"] is Severity.WARNING  # the exact code beats the prefix "RL00"
    assert settings.severity["RL002"] is Severity.INFO
    assert settings.thresholds == {"penalty-ratio-error": 3.0}
    assert settings.overrides[0].reason == "tied embeddings"
    assert settings.overrides[0].expires == dt.date(2999, 1, 1)


@pytest.mark.parametrize(("text", "expected"), [
    ("[tool.reglint.lint]\nigonre = ['RL001']\n",
     "unknown key 'tool.reglint.lint.igonre' in pyproject.toml; did you mean 'tool.reglint.lint.ignore'?"),
    ("[tool.reglint]\nfail_on = 'error'\n", "unknown key 'tool.reglint.fail_on'"),
    ("[tool.reglint.context]\nlr = 0.1\n", "unknown key 'tool.reglint.context.lr'"),
    ("[tool.reglint.lint.thresholds]\nl2-max = 0.1\n", "unknown key 'tool.reglint.lint.thresholds.l2-max'"),
    ("[[tool.reglint.lint.overrides]]\nignore = ['RL001']\nreson = 'x'\n",
     "unknown key 'tool.reglint.lint.overrides[0].reson'"),
    ("[tool.reglint.lint.severity]\nfatal = ['RL001']\n", "unknown key 'tool.reglint.lint.severity.fatal'"),
])
def test_unknown_keys_are_errors_naming_the_key(tmp_path, monkeypatch, text, expected):
    monkeypatch.chdir(tmp_path)
    assert config_error(tmp_path, text).startswith(expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("[tool.reglint.lint]\nselect = 'RL001'\nignore = [1]\n", "'tool.reglint.lint.ignore' in pyproject.toml: "
                                                              "expected a list of strings"),
    ("[tool.reglint.lint]\nignore = ['XX9']\n", "invalid rule code or prefix 'XX9'"),
    ("[tool.reglint.lint]\nselect = ['RL999']\n", "invalid rule code or prefix 'RL999'"),
    ("[tool.reglint]\nfail-on = 'fatal'\n", "expected one of error, warning, info, none"),
    ("[tool.reglint]\nrespect-gitignore = 'yes'\n", "expected true or false"),
    ("[tool.reglint]\noutput-format = 'xml'\n", "unknown output format 'xml'"),
    ("[tool.reglint.context]\nsamples = 0\n", "expected a positive integer"),
    ("[tool.reglint.context]\nlearning-rate = -1\n", "expected a number >= 0"),
    ("[tool.reglint.context]\nmomentum = 1.5\n", "expected a number in [0, 1)"),
    # review 58: an option that wants > 0 says so, not ">= 0", of a negative value
    ("[tool.reglint.context]\ninput-var = -2\n", "expected a number in (0, 1e+12], got -2"),
    ("[tool.reglint.context]\ntarget-var = -2\n", "expected a number > 0, got -2"),
    ("[tool.reglint.context]\nregularizers = [{layers = 'fc*'}]\n", "needs l1 or l2"),
    ("[tool.reglint.context]\ncustom-regularizers = {A = {kind = 'l3'}}\n", "expected one of l1, l2, l1l2"),
    ("[tool.reglint.lint.thresholds]\npenalty-ratio-error = 'high'\n", "expected a number"),
    ("[tool.reglint.lint]\noverrides = [{files = ['a']}]\n", "needs an 'ignore' list"),
    ("[[tool.reglint.lint.overrides]]\nignore = ['RL001']\nexpires = 'soon'\n", "expected a date"),
    ("[tool.reglint.lint]\nrequire-reason = true\n[[tool.reglint.lint.overrides]]\nignore = ['RL001']\n",
     "has no 'reason'"),
    ("[tool.reglint\n", "invalid TOML in pyproject.toml"),
    ("[tool.reglint.lint.severity]\nerror = ['RL001']\ninfo = ['RL001']\n", "RL001 is put under both error and info"),
    # review 46: a warning level above its error level (against the other's default, or both set) was accepted
    ("[tool.reglint.lint.thresholds]\npenalty-ratio-warning = 30\n",
     "penalty-ratio-warning = 30 is above penalty-ratio-error = 18 (RL001)"),
    ("[tool.reglint.lint.thresholds]\nchain-shrink-error = 0.1\nchain-shrink-warning = 0.2\n",
     "chain-shrink-warning = 0.2 is above chain-shrink-error = 0.1 (RL024)"),
    ("[tool.reglint.lint.thresholds]\nstream-shrink-error = 0.05\nchain-shrink-warning = 0.1\n",
     "chain-shrink-warning = 0.1 is above stream-shrink-error = 0.05 (RL024)"),
    # review 54: every threshold is a ratio, share, rate or count; a negative one loaded
    ("[tool.reglint.lint.thresholds]\npenalty-ratio-warning = -1\npenalty-ratio-error = -0.5\n",
     "'tool.reglint.lint.thresholds.penalty-ratio-warning' in pyproject.toml: expected a number >= 0, got -1"),
])
def test_invalid_values_are_errors(tmp_path, monkeypatch, text, expected):
    monkeypatch.chdir(tmp_path)
    assert expected in config_error(tmp_path, text)


def test_level_pairs_in_order_and_disabled_errors_load(tmp_path, monkeypatch):
    """An error level at inf (never an error) and a warning under it load;
    so does an error level set alone under the default warning (errors
    from there: a stricter gate, not a slip)."""
    monkeypatch.chdir(tmp_path)
    settings = settings_from(tmp_path, """
        [tool.reglint.lint.thresholds]
        penalty-ratio-error = inf
        penalty-ratio-warning = 30
    """)
    assert settings.thresholds == {"penalty-ratio-error": float("inf"), "penalty-ratio-warning": 30.0}
    strict = settings_from(tmp_path, "[tool.reglint.lint.thresholds]\npenalty-ratio-error = 2\n")
    assert strict.thresholds == {"penalty-ratio-error": 2.0}


def test_reglint_toml_keys_have_no_prefix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_error(tmp_path, "[lint]\nigonre = []\n", name="reglint.toml").startswith(
        "unknown key 'lint.igonre' in reglint.toml")


def test_expired_override_warns_once_on_stderr(tmp_path, capsys):
    settings = settings_from(tmp_path, """
        [[tool.reglint.lint.overrides]]
        files = ["*.keras"]
        ignore = ["RL001"]
        reason = "legacy"
        expires = 2020-01-01
    """)
    assert settings.overrides[0].expires == dt.date(2020, 1, 1)
    from reglint.engine.selection import expired_overrides

    (line,) = expired_overrides(settings, [str(tmp_path / "m.keras")])
    assert "expired on 2020-01-01" in line and "RL001" in line
    assert expired_overrides(settings, [str(tmp_path / "m.keras")], today=dt.date(2019, 12, 31)) == []


def test_an_expired_override_for_files_not_in_the_run_says_nothing(tmp_path):
    """Review 35, D7: the expiry warning fired at config load, for files the
    run did not lint: every pre-commit run warned about ok.keras."""
    from reglint.engine.selection import expired_overrides

    settings = settings_from(tmp_path, """
        [[tool.reglint.lint.overrides]]
        files = ["ok.keras"]
        ignore = ["RL008"]
        reason = "legacy"
        expires = 2020-01-01
    """)
    assert expired_overrides(settings, [str(tmp_path / "m.keras")]) == []
    assert len(expired_overrides(settings, [str(tmp_path / "ok.keras")])) == 1


# ---------------------------------------------------------------------------
# through the command line, on real models


def run(args: list[str]):
    return CliRunner().invoke(app, ["check", *args, "--no-cache", "-f", "json-lines"])


def codes(result) -> list[tuple[str, str | None]]:
    return sorted((r["code"], r["layer"]) for r in map(json.loads, result.stdout.splitlines()))


def test_unknown_key_exits_2_with_one_line(project):
    write(project / "pyproject.toml", "[tool.reglint.lint]\nigonre = ['RL001']\n")
    result = run(["models/tiny_bad.keras"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown key 'tool.reglint.lint.igonre' in pyproject.toml" in lines[0]


def test_an_ignore_removes_exactly_the_finding_it_names(project):
    before = codes(run(["models/tiny_bad.keras"]))
    assert ("RL001", None) in before and ("RL002", "dense_0") in before and ("RL002", "dense_1") in before

    write(project / "pyproject.toml", """
        [tool.reglint.lint]
        ignore = ["RL001"]
    """)
    assert codes(run(["models/tiny_bad.keras"])) == [c for c in before if c[0] != "RL001"]

    write(project / "pyproject.toml", """
        [[tool.reglint.lint.overrides]]
        files = ["models/tiny_bad.keras"]
        layers = ["dense_0"]
        ignore = ["RL002"]
        reason = "checked by hand"
    """)
    assert codes(run(["models/tiny_bad.keras"])) == [c for c in before if c != ("RL002", "dense_0")]


def test_per_file_ignores_and_severity(project):
    write(project / "pyproject.toml", """
        [tool.reglint]
        fail-on = "error"
        [tool.reglint.lint.per-file-ignores]
        "models/tiny_*.keras" = ["RL002"]
        [tool.reglint.lint.severity]
        warning = ["RL001"]
    """)
    result = run(["models/tiny_bad.keras", "models/wreck.keras"])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(r["filename"], r["code"]) for r in records} >= {("models/tiny_bad.keras", "RL001"),
                                                             ("models/wreck.keras", "RL001")}
    assert not any(r["filename"] == "models/tiny_bad.keras" and r["code"] == "RL002" for r in records)
    assert all(r["severity"] == "warning" for r in records if r["code"] == "RL001")
    # Only warnings left and fail-on = error: a passing run.
    assert result.exit_code == (1 if any(r["severity"] == "error" for r in records) else 0)


def test_isolated_flag_ignores_the_config(project):
    write(project / "pyproject.toml", "[tool.reglint.lint]\nignore = ['RL']\n")
    assert run(["models/tiny_bad.keras"]).stdout == ""
    assert codes(run(["models/tiny_bad.keras", "--isolated"]))


def test_a_layer_override_covers_a_finding_over_layers_it_all_covers():
    """Review 54: RL007's "1 kernel in 1 layer (lstm)" carries no one layer
    (it may name several), so ``layers = ["ls*"]`` suppressed nothing and
    was reported unused. A finding listing its layers in ``values
    ["layers"]`` is covered when every one of them is."""
    from reglint.engine.finding import Finding, Severity
    from reglint.engine.selection import filter_findings
    from reglint.engine.settings import Override, Settings

    def rl007(*layers):
        return Finding("RL007", "coupled-penalty-adaptive", Severity.WARNING, "m", values={"layers": list(layers)})

    settings = Settings(overrides=[Override(layers=["ls*"], ignore=["RL007"])])
    one, both, bare = rl007("lstm"), rl007("lstm", "dense"), Finding("RL007", "n", Severity.WARNING, "m")
    kept, suppressed = filter_findings([one, both, bare], "m.keras", settings)
    assert suppressed == [one] and kept == [both, bare]
    # review 55: a finding on one layer that lists its chain (RL024) or changes other layers in its fix
    chain = Finding("RL024", "chain-shrinks-too-fast", Severity.ERROR, "m", layer="h0",
                    values={"chain": ["h0", "h1", "out"]})
    assert filter_findings([chain], "m.keras", Settings(overrides=[Override(layers=["h0"], ignore=["RL024"])]))[0]
    assert filter_findings([chain], "m.keras", Settings(overrides=[Override(layers=["h*", "out"],
                                                                             ignore=["RL024"])]))[1] == [chain]
    # review 56: a fix changing a setting of no layer (the optimizer's weight_decay) makes the finding the whole
    # model's; RL007's drifting chain counts as a list of its layers
    from reglint.engine.finding import Change, Fix

    wide = Finding("RL003", "weight-decay-too-strong", Severity.ERROR, "m", fix=Fix("aim", (
        Change("weight_decay", 1.0, 0.01, target="optimizer"), Change("lambda", 0.1, 0.01, "dense", "kernel"))))
    drift = Finding("RL007", "coupled-penalty-adaptive", Severity.ERROR, "m",
                    values={"layers": ["dense", "dense_1"], "drifting_chain": ["embedding", "dense", "dense_1"]})
    scoped = Settings(overrides=[Override(layers=["dense*"], ignore=["RL003", "RL007"])])
    assert filter_findings([wide, drift], "m.keras", scoped) == ([wide, drift], [])
    # without layers, an override covers every finding of its codes, as before
    kept, suppressed = filter_findings([one, both, bare], "m.keras", Settings(overrides=[Override(ignore=["RL007"])]))
    assert suppressed == [one, both, bare]


def test_an_override_silencing_a_rule_on_all_its_layers_silences_its_sweep_curve(tmp_path, monkeypatch):
    """Review 72, 1: an override ignoring RL024 on d1 and out hid its
    finding, yet its curve still bounded the HTML's safe range and explain's
    largest safe lambda at 0.005 where ``--ignore RL024`` gave 0.24. Covering
    only some of the layers the curve judges keeps it, as it keeps a finding
    about them all; a per-file ignore drops it like ``--ignore``."""
    import shutil

    from helpers import FIXTURES

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    shutil.copy(FIXTURES / "keras_optimizers" / "clipnorm_sgd.keras", tmp_path / "m.keras")

    def sweep(config: str) -> dict:
        write(tmp_path / "pyproject.toml", config)
        out = CliRunner().invoke(app, ["check", "m.keras", "--no-cache", "-f", "json"]).stdout
        return json.loads(out)["files"][0]["model"]["analysis"]["sweep"]

    head = '[tool.reglint.lint]\nignore = ["RL002"]\n'
    alone = sweep(head)
    assert {c["code"] for c in alone["curves"]} == {"RL001", "RL024"} and alone["bound_by"] == ["RL024"]
    both = sweep(head + '[[tool.reglint.lint.overrides]]\nfiles = ["m.keras"]\nlayers = ["d1", "out"]\n'
                        'ignore = ["RL024"]\n')
    assert {c["code"] for c in both["curves"]} == {"RL001"} and both["bound_by"] == ["RL001"]
    assert both["safe_multiplier"] > 40 * alone["safe_multiplier"]
    one = sweep(head + '[[tool.reglint.lint.overrides]]\nfiles = ["m.keras"]\nlayers = ["d1"]\nignore = ["RL024"]\n')
    assert {c["code"] for c in one["curves"]} == {"RL001", "RL024"}
    per_file = sweep(head + '[tool.reglint.lint.per-file-ignores]\n"m.keras" = ["RL024"]\n')
    assert {c["code"] for c in per_file["curves"]} == {"RL001"}


def test_an_override_that_silences_no_finding_keeps_the_rules_curve(tmp_path, monkeypatch):
    """Review 73, 2: an override ignoring RL003 on every layer its lambda
    curve judges suppressed nothing (RL003's finding is about the
    optimizer's weight_decay, which no layer override covers) yet dropped
    the curve: the safe multiplier jumped 135x while RL003 still warned."""
    import shutil

    from helpers import FIXTURES

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    shutil.copy(FIXTURES / "keras" / "scenario_sgd_wd_l2_stacked.keras", tmp_path / "m.keras")

    def run_with(config: str) -> dict:
        write(tmp_path / "pyproject.toml", config)
        return json.loads(CliRunner().invoke(app, ["check", "m.keras", "--no-cache", "-f", "json"]).stdout)["files"][0]

    plain = run_with("[tool.reglint.lint]\n")
    overridden = run_with('[[tool.reglint.lint.overrides]]\nfiles = ["m.keras"]\nlayers = ["dense", "dense_1", '
                          '"dense_2"]\nignore = ["RL003"]\n')
    assert "RL003" in {f["code"] for f in overridden["findings"]}
    sweep, before = overridden["model"]["analysis"]["sweep"], plain["model"]["analysis"]["sweep"]
    assert sweep["bound_by"] == before["bound_by"] == ["RL003"]
    assert sweep["safe_multiplier"] == before["safe_multiplier"]
