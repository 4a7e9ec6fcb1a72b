"""Which rules run and which findings survive: select / extend-select /
ignore by code or prefix (ruff's semantics), per-file ignores and per-layer
overrides with reasons and expiry dates."""

from __future__ import annotations

import datetime as _dt
import os
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from reglint.engine.finding import Finding, Severity
from reglint.engine.report import FileReport
from reglint.engine.rule import Rule, all_rules
from reglint.engine.settings import Override, Settings
from reglint.engine.sweep import Curve


def _matches(code: str, selectors: list[str]) -> int:
    """Length of the longest selector matching ``code`` (0: none); ALL is 1."""
    best = 0
    for raw in selectors:
        sel = raw.strip().upper()
        if sel == "ALL":
            best = max(best, 1)
        elif code.startswith(sel):
            best = max(best, len(sel) + 1)
    return best


def selected_rules(settings: Settings) -> list[type[Rule]]:
    """ruff: the more specific of select and ignore wins."""
    chosen = []
    for code, cls in all_rules().items():
        picked = max(_matches(code, settings.select), _matches(code, settings.extend_select))
        dropped = _matches(code, settings.ignore)
        if picked and picked > dropped:
            chosen.append(cls)
    return chosen


def relative_posix(path: str, root: str | None) -> str:
    """``path`` relative to the config's folder, with ``/``; unchanged when it
    lies outside (both made absolute first, so it works from any cwd)."""
    if root:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
        if not rel.startswith(os.pardir):
            return Path(rel).as_posix()
    return PurePosixPath(path.replace("\\", "/")).as_posix()


def _file_matches(rel: str, pattern: str) -> bool:
    return fnmatch(rel, pattern) or fnmatch(PurePosixPath(rel).name, pattern) or (
        pattern.startswith("**/") and fnmatch(rel, pattern[3:]))


def filter_findings(findings: list[Finding], path: str, settings: Settings,
                    today: _dt.date | None = None) -> tuple[list[Finding], list[Finding]]:
    """(kept, suppressed). Severity overrides apply to what is kept."""
    today = today or _dt.date.today()
    rel = relative_posix(path, settings.root)
    kept, suppressed = [], []
    for finding in findings:
        if _suppressed(finding, rel, settings, today):
            suppressed.append(finding)
            continue
        if finding.code in settings.severity:
            finding.severity = settings.severity[finding.code]
        kept.append(finding)
    return kept, suppressed


def kept_curves(curves: list[Curve], path: str, settings: Settings, kept: list[Finding],
                suppressed: list[Finding], today: _dt.date | None = None) -> list[Curve]:
    """The sweep curves whose rule is heard: where it fired, those of a rule
    with a finding kept (review 72, 1: an override hid RL024's finding while
    its curve set the HTML's safe range and explain's largest safe lambda 48x
    lower; review 73, 2: one that suppressed nothing must not drop RL003's);
    where it did not, those a finding naming the curve's layers
    (``Curve.named``) would survive with, as ``--ignore`` would have it."""
    today = today or _dt.date.today()
    rel = relative_posix(path, settings.root)
    heard = {f.code for f in kept}
    fired = heard | {f.code for f in suppressed}
    out = []
    for curve in curves:
        if curve.code in fired:
            if curve.code in heard:
                out.append(curve)
            continue
        named = curve.named
        probe = Finding(curve.code, "", Severity.WARNING, "", layer=named[0] if named else None,
                        values={"layers": list(named)})
        if not _suppressed(probe, rel, settings, today):
            out.append(curve)
    return out


def _suppressed(finding: Finding, rel: str, settings: Settings, today: _dt.date) -> bool:
    for pattern, codes in settings.per_file_ignores.items():
        if _file_matches(rel, pattern) and _matches(finding.code, codes):
            return True
    for override in settings.overrides:
        if override.expires is not None and override.expires < today:
            continue  # an expired ignore stops applying
        if any(_file_matches(rel, pat) for pat in override.files) and _override_matches(override, finding):
            return True
    return False


# ---------------------------------------------------------------------------
# suppressions that suppressed nothing (ruff's RUF100, for config entries)


def unused_suppressions(settings: Settings, reports: list[FileReport], today: _dt.date | None = None) -> list[str]:
    """The per-file-ignores and overrides of ``settings`` that matched at
    least one of the files read (``reports``: FileReports without a read
    error) and suppressed none of their findings: a stale entry hides the
    next real finding it matches. An entry naming a rule this run did not
    run is not judged (``--select RL005`` says nothing about an RL001
    ignore); an expired override already has its own warning."""
    today = today or _dt.date.today()
    ran = {cls.code for cls in selected_rules(settings)}
    read = [(relative_posix(r.path, settings.root), r.suppressed) for r in reports if r.error is None]
    stale = []
    for pattern, codes in settings.per_file_ignores.items():
        matched = [found for rel, found in read if _file_matches(rel, pattern)]
        if matched and _runs_all(codes, ran) and not any(
                _matches(f.code, codes) for found in matched for f in found):
            stale.append(f"per-file-ignores {pattern!r} = {codes}")
    for override in settings.overrides:
        if override.expires is not None and override.expires < today:
            continue
        matched = [found for rel, found in read if any(_file_matches(rel, pat) for pat in override.files)]
        if matched and _runs_all(override.ignore, ran) and not any(
                _override_matches(override, f) for found in matched for f in found):
            layers = "" if override.layers in (["*"], []) else f", layers {override.layers}"
            stale.append(f"the override ignoring {override.ignore} for files {override.files}{layers}")
    return stale


def expired_overrides(settings: Settings, paths: list[str], today: _dt.date | None = None) -> list[str]:
    """One line per expired override that matches a file of this run
    (``paths``): it no longer applies. An override for files the run does
    not lint says nothing (review 35, D7: every pre-commit run warned about
    a file it was not given)."""
    today = today or _dt.date.today()
    rels = [relative_posix(path, settings.root) for path in paths]
    lines = []
    for override in settings.overrides:
        if override.expires is None or override.expires >= today:
            continue
        if any(_file_matches(rel, pat) for rel in rels for pat in override.files):
            lines.append(f"the override ignoring {', '.join(override.ignore)} for {', '.join(override.files)} "
                         f"expired on {override.expires.isoformat()} and no longer applies")
    return lines


def _runs_all(selectors: list[str], ran: set[str]) -> bool:
    """Whether every rule the entry's selectors name ran: an entry for
    RL001 and RL005 judged on a ``--select RL005`` run would be called
    unused while it still hides RL001 in normal runs (review 27, D8)."""
    named = {code for code in all_rules() if _matches(code, selectors)}
    return bool(named) and named <= ran


def _override_matches(override: Override, finding: Finding) -> bool:
    """Whether ``override`` covers the finding's layer and code (its files
    are matched by the caller)."""
    def covered(layer: str) -> bool:
        return any(fnmatch(layer, pat) or fnmatch(layer.split("/")[-1], pat) for pat in override.layers)

    if override.layers not in (["*"], []):
        layers = named_layers(finding)
        if not layers or not all(covered(layer) for layer in layers):
            return False
    return bool(_matches(finding.code, override.ignore))


# values keys under which rules list the layers a finding is about (RL007, RL021: layers; RL007: the chain
# drifting to zero; RL024: its chain; RL025: the kernels its tables feed)
_LAYER_LISTS = ("layers", "drifting_chain", "chain", "fed_layers", "tables")


def named_layers(finding: Finding) -> list[str]:
    """Every layer a finding is about: its own, those its values list
    (``_LAYER_LISTS``) and those its fix changes. A layer-scoped override
    covers the finding when it covers each (review 54: RL007's "1 kernel in
    1 layer (lstm)" carries no one layer; review 55: RL024's chain (h0, h1,
    out) was silenced by ``layers = ["h0"]``, its first layer). Empty, so
    covered by none, where the fix changes a setting of no layer (the
    optimizer's weight_decay, compile's loss weights): the finding is about
    the whole model (review 56: RL003 and RL026 were hidden by an override
    naming a layer their fix also touched)."""
    if finding.fix is not None and any(c.layer is None for c in finding.fix.changes):
        return []
    found = [finding.layer] if finding.layer else []
    values = finding.values if isinstance(finding.values, dict) else {}
    for key in _LAYER_LISTS:
        listed = values.get(key)
        if isinstance(listed, (list, tuple)):
            found += [x for x in listed if isinstance(x, str)]
    if finding.fix is not None:
        found += [c.layer for c in finding.fix.changes if c.layer]
    return list(dict.fromkeys(found))
