"""Find and read ``[tool.reglint]`` (or ``reglint.toml``) into ``Settings``.

Discovery follows ruff: each file gets the closest ``.reglint.toml``,
``reglint.toml`` or ``pyproject.toml`` with a ``[tool.reglint]`` table among
its real (symlink-resolved) ancestors, the search stopping at the root of the
Git repository (the folder holding ``.git``) or of the filesystem; a file
with none gets the working directory's config. Files in different folders
may so get different settings (``ConfigResolver``); settings are never merged
across files. ``--config FILE`` replaces discovery, ``--config "key = value"``
overrides one key as inline TOML (on whichever file applies; repeat it for
several, the later winning), ``--isolated`` ignores every file (the
overrides still apply; naming a file with ``--config`` is an error).

As in ruff, the ``lint`` keys (``select``, ``ignore`` ...) are also accepted
at the top of the table (``[tool.reglint] ignore = [...]``).

Validation is strict, like ruff's: an unknown key, a wrong type, an unknown
rule code or a bad severity is a ``ConfigError`` naming the key and the file
(exit 2), so a typo never silently turns a check off.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reglint.engine.analysis import ContextOption, context_options
from reglint.engine.finding import Severity
from reglint.engine.identity import real_path
from reglint.engine.settings import Override, Settings
from reglint.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_NAMES = (".reglint.toml", "reglint.toml", "pyproject.toml")
FAIL_ON = ("error", "warning", "info", "none")


def load_settings(paths: list[str], config: str | None = None, isolated: bool = False) -> Settings:
    """Settings for the first of ``paths`` (the working directory's when
    there is none): defaults, then the config file that applies there."""
    resolver = ConfigResolver(config=config, isolated=isolated)
    return resolver.settings_for(paths[0] if paths else None)


class ConfigResolver:
    """Settings per file, each read once per config file.

    ``adjust`` (the command line's overrides) is applied to every Settings
    made, so flags beat whichever file applies."""

    def __init__(self, config: str | list[str] | None = None, isolated: bool = False,
                 adjust: Callable[[Settings], None] | None = None):
        self.isolated, self.adjust = isolated, adjust
        self.inline: dict[str, Any] | None = None
        self.fixed: Path | None = None
        given = [config] if isinstance(config, str) else list(config or [])
        files = [item for item in given if not _is_inline(item)]
        if len(files) > 1:
            raise ConfigError(f"--config names {len(files)} configuration files ({', '.join(files)}): give one")
        if files and isolated:  # as ruff: --isolated reads no configuration file, named or found
            raise ConfigError(f"--config {files[0]} names a configuration file, which --isolated ignores: drop one")
        for item in given:  # each --config an override of its own, the later winning (review 64, 4)
            if _is_inline(item):
                self.inline = _later_wins(self.inline or {}, _parse_inline(item))
        if files:
            self.fixed = Path(files[0])
            if not self.fixed.is_file():
                raise ConfigError(f"configuration file {files[0]} {_why_not_a_file(self.fixed)}")
        self._settings: dict[Path | None, Settings] = {}
        self._cwd_config: tuple[Path | None] | None = None

    def source_for(self, path: str | None) -> Path | None:
        """The config file that applies to ``path`` (None: defaults)."""
        if self.isolated:
            return None
        if self.fixed is not None:
            return self.fixed
        found = find_config([path]) if path is not None else None
        return found if found is not None else self.cwd_config()

    def cwd_config(self) -> Path | None:
        if self._cwd_config is None:
            self._cwd_config = (find_config([os.getcwd()]),)
        return self._cwd_config[0]

    def settings_for(self, path: str | None) -> Settings:
        source = self.source_for(path)
        key = real_path(source) if source is not None else None
        if key not in self._settings:
            settings = _settings_from(source, self.inline, isolated=self.isolated)
            if self.adjust is not None:
                self.adjust(settings)
            self._settings[key] = settings
        return self._settings[key]


def _settings_from(source: Path | None, inline: dict[str, Any] | None, isolated: bool = False) -> Settings:
    settings = Settings()
    table: dict[str, Any] = {}
    prefix = ""
    if source is not None and not isolated:  # --isolated: no file, but the command line's overrides (review 65, 5)
        table, prefix = read_table(source)
        settings.root = str(real_path(source).parent)
        settings.config_file = str(source)
    if inline:
        table = _merge(_without_replaced_length(table, inline), inline)
    apply_table(settings, table, _Where(prefix, _show(source) if source and not isolated else "--config"))
    return settings


# ---------------------------------------------------------------------------
# discovery and reading


def find_config(paths: list[str], start: str | None = None) -> Path | None:
    """The closest config file among the real ancestors of the first path
    (or of ``start``/the cwd); None when there is none up to the repository
    root."""
    folder = _start_folder(paths[0] if paths else (start or os.getcwd()))
    while True:
        for name in CONFIG_NAMES:
            candidate = folder / name
            if _holds(candidate, Path.is_file) and (name != "pyproject.toml" or _has_reglint_table(candidate)):
                return candidate
        if _holds(folder / ".git", Path.exists) or folder.parent == folder:
            return None  # the repository (or filesystem) root ends the search
        folder = folder.parent


def _start_folder(path: str) -> Path:
    # resolve(), not absolute(): `../models/a.keras` or a symlinked folder
    # must be searched from where the file really is, not from lexical parents.
    current = real_path(path)
    while not _holds(current, Path.exists) and current.parent != current:
        current = current.parent  # a missing path: search from what exists
    return current if _holds(current, Path.is_dir) else current.parent


def _why_not_a_file(path: Path) -> str:
    """Why ``path`` cannot be read as a file, in a few words."""
    import errno
    import stat

    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop"
        return "not found" if exc.errno == errno.ENOENT else f"cannot be read ({exc.strerror or exc})"
    return "is a folder" if stat.S_ISDIR(mode) else "is not a regular file"


# Path.exists()/is_file()/is_dir() raise PermissionError inside a folder
# that cannot be searched (Python 3.11): such a folder holds no config the
# user can have meant, and its models' readers report it.
def _holds(path: Path, test: Callable[[Path], bool]) -> bool:
    """``test(path)`` (``Path.exists``, ``Path.is_file`` ...), False where
    the path cannot be looked at."""
    try:
        return test(path)
    except OSError:
        return False


def _has_reglint_table(path: Path) -> bool:
    data = _load_toml(path)
    return isinstance(data.get("tool"), dict) and "reglint" in data["tool"]


def read_table(path: Path) -> tuple[dict[str, Any], str]:
    """(the reglint table, the key prefix used in messages)."""
    data = _load_toml(path)
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        table = tool.get("reglint", {}) if isinstance(tool, dict) else {}
        if not isinstance(table, dict):
            raise ConfigError(f"'tool.reglint' in {_show(path)} must be a table")
        return table, "tool.reglint."
    return data, ""


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {_show(path)}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {_show(path)}: {exc.strerror or exc}") from None


def _is_inline(config: str) -> bool:
    """``--config "fail-on = 'warning'"``: TOML, not a path (ruff's rule)."""
    return "=" in config and not Path(config).exists()


def _later_wins(base: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Two ``--config`` overrides, the later (``more``) winning as one over
    a file does (``_merge``: a map setting whole, one length of training),
    and a selector it puts under a severity level leaving the level an
    earlier one put it under (review 65, 2-3)."""
    severity = (more.get("lint") or {}).get("severity") if isinstance(more.get("lint"), dict) else None
    earlier = (base.get("lint") or {}).get("severity") if isinstance(base.get("lint"), dict) else None
    if isinstance(severity, dict) and isinstance(earlier, dict):
        moved = {sel for value in severity.values() for sel in (value if isinstance(value, list) else [value])}
        kept = {level: [sel for sel in value if sel not in moved] if isinstance(value, list) else value
                for level, value in earlier.items() if level not in severity}
        base = {**base, "lint": {**base["lint"], "severity": kept}}
    return _merge(_without_replaced_length(base, more), more)


def _parse_inline(config: str) -> dict[str, Any]:
    try:
        return tomllib.loads(config)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {config!r} is neither a file nor valid TOML: {exc}") from None


def _without_replaced_length(table: dict[str, Any], inline: dict[str, Any]) -> dict[str, Any]:
    """One length of training: ``--config context.epochs=3`` replaces the
    file's ``context.steps`` (and the reverse), as ``--epochs`` does."""
    given = inline.get("context")
    context = table.get("context")
    if not isinstance(given, dict) or not isinstance(context, dict):
        return table
    for key, other in (("epochs", "steps"), ("steps", "epochs")):
        if key in given and other not in given and other in context:
            table = {**table, "context": {k: v for k, v in context.items() if k != other}}
            context = table["context"]
    return table


# A setting whose value is a map of paths: an inline --config gives the
# whole value, as ruff's does (``lint.per-file-ignores = {}`` clears the
# file's; review 27, D14). Tables of settings (``lint``, ``context``,
# ``lint.thresholds``, ``lint.severity``: one setting per rule) are merged
# key by key, so ``lint.severity.RL005 = "error"`` keeps the others.
MAP_SETTINGS = ("per-file-ignores",)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in MAP_SETTINGS:
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _show(path: Path | None) -> str:
    """A path for messages: relative to the cwd when below it."""
    if path is None:
        return "?"
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------
# validation helpers


class _Where:
    """Builds ``unknown key 'tool.reglint.lint.igonre' in pyproject.toml``."""

    def __init__(self, prefix: str, file: str):
        self.prefix, self.file = prefix, file

    def key(self, dotted: str) -> str:
        return f"'{self.prefix}{dotted}'"

    def error(self, dotted: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.key(dotted)} in {self.file}: {problem}")

    def check_keys(self, table: dict[str, Any], allowed, dotted: str = "") -> None:
        for key in table:
            if key not in allowed:
                name = f"{dotted}.{key}" if dotted else key
                hint = self.suggest(key, list(allowed), dotted)
                raise ConfigError(f"unknown key {self.key(name)} in {self.file}"
                                  + (f"; did you mean {self.key(hint)}?" if hint else ""))

    @staticmethod
    def suggest(key: str, allowed: list[str], dotted: str) -> str | None:
        """The dotted key meant: the same key in another table
        (``samples`` -> ``context.samples``, ``lint.fail-on`` -> ``fail-on``),
        else a close spelling here, else a close spelling elsewhere."""
        sections = _sections()
        elsewhere = [f"{section}.{key}" if section else key
                     for section, keys in sections.items() if section != dotted and key in keys]
        if elsewhere:
            return elsewhere[0]
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            return f"{dotted}.{close[0]}" if dotted else close[0]
        if dotted not in sections:
            return None
        everywhere = {(f"{section}.{k}" if section else k): k for section, keys in sections.items() for k in keys}
        close = difflib.get_close_matches(key, list(everywhere.values()), n=1, cutoff=0.8)
        return next((full for full, k in everywhere.items() if close and k == close[0]), None)


def _sections() -> dict[str, tuple[str, ...]]:
    """Every table a key can live in, by its dotted name (top level first)."""
    from reglint.engine.rule import all_rules

    options = tuple(sorted({name for rule in all_rules().values() for name in rule.options}))
    return {"": TOP_KEYS, "context": CONTEXT_KEYS, "lint": LINT_KEYS, "lint.thresholds": options}


def _type_name(value: Any) -> str:
    return type(value).__name__


def _table(where: _Where, value: Any, dotted: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.error(dotted, f"expected a table, got {_type_name(value)}")
    return value


def _string(where: _Where, value: Any, dotted: str) -> str:
    if not isinstance(value, str):
        raise where.error(dotted, f"expected a string, got {_type_name(value)}")
    return value


def _strings(where: _Where, value: Any, dotted: str) -> list[str]:
    """A list of strings; a lone string is accepted as a one-item list."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where.error(dotted, "expected a list of strings")
    return list(value)


def _bool(where: _Where, value: Any, dotted: str) -> bool:
    if not isinstance(value, bool):
        raise where.error(dotted, f"expected true or false, got {_type_name(value)}")
    return value


def _number(where: _Where, value: Any, dotted: str, minimum: float = 0.0, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(dotted, f"expected a number, got {_type_name(value)}")
    if finite and not math.isfinite(value):  # TOML's inf and nan
        raise where.error(dotted, f"expected a finite number, got {value!r}")
    if not value >= minimum:  # also rejects NaN
        raise where.error(dotted, f"expected a number >= {minimum:g}, got {value!r}")
    return float(value)


def _integer(where: _Where, value: Any, dotted: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise where.error(dotted, f"expected a positive integer, got {value!r}")
    return value


def normalize_selector(item: str) -> str | None:
    """A rule selector as the rule table knows it, or None when it selects
    nothing: ``ALL``, a code or a prefix of one (``RL001``, ``RL0``, ``RL``;
    any case), or a rule's name (``penalty-dominates-loss`` -> ``RL001``).
    A selector matching no rule is refused, as ruff refuses one: a typo must
    not quietly turn the lint off."""
    from reglint.engine.rule import all_rules

    rules = all_rules()
    sel = item.strip().upper()
    if sel == "ALL" or (sel and any(code.startswith(sel) for code in rules)):
        return sel
    named = [code for code, rule in rules.items() if rule.name == item.strip().lower()]
    return named[0] if named else None


def selector_hint(item: str) -> str:
    """`` (did you mean 'RL001'?)`` for a near miss, else a pointer to the list."""
    from reglint.engine.rule import all_rules

    rules = all_rules()
    close = difflib.get_close_matches(item.strip().upper(), list(rules), n=1, cutoff=0.8) or \
        difflib.get_close_matches(item.strip().lower(), [r.name for r in rules.values()], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else " (`reglint rules` lists them)"


def parse_selectors(values: list[str], option: str) -> list[str]:
    """``["RL001,RL0", "penalty-dominates-loss"]`` (the values of ``--select``
    or of reglint.lint()'s ``select``) -> codes and prefixes; an unknown
    selector, or a value holding none (``''``, ``,``), is a ConfigError
    (ruff: "invalid rule code or prefix"), never a silent no-op."""
    out = []
    for value in values:
        items = [v.strip() for v in value.split(",") if v.strip()]
        if not items:
            # An unset shell variable (--select "$RULES") must not select nothing and pass every model.
            raise ConfigError(f"'{option}' got no rule code ({value!r}): give codes or prefixes such as RL001,RL01")
        for item in items:
            sel = normalize_selector(item)
            if sel is None:
                raise ConfigError(f"invalid rule code or prefix {item!r} for '{option}'{selector_hint(item)}")
            out.append(sel)
    return out


def _selectors(where: _Where, value: Any, dotted: str) -> list[str]:
    """Rule codes or prefixes (or ALL or rule names), each matching at least one rule."""
    out = []
    for item in _strings(where, value, dotted):
        sel = normalize_selector(item)
        if sel is None:
            raise where.error(dotted, f"invalid rule code or prefix {item!r}{selector_hint(item)}")
        out.append(sel)
    return out


# ---------------------------------------------------------------------------
# the tables


TOP_KEYS = ("fail-on", "output-format", "exclude", "extend-exclude", "respect-gitignore", "force-exclude",
            "baseline", "context", "lint")


def apply_table(settings: Settings, table: dict[str, Any], where: _Where) -> None:
    """Validate ``table`` (the reglint table) and set ``settings`` from it."""
    top: dict[str, Callable[[Any, str], None]] = {
        "fail-on": lambda v, k: _set_fail_on(settings, where, v, k),
        "output-format": lambda v, k: _set_output_format(settings, where, v, k),
        "exclude": lambda v, k: setattr(settings, "exclude", _strings(where, v, k)),
        "extend-exclude": lambda v, k: setattr(settings, "extend_exclude", _strings(where, v, k)),
        "respect-gitignore": lambda v, k: setattr(settings, "respect_gitignore", _bool(where, v, k)),
        "force-exclude": lambda v, k: setattr(settings, "force_exclude", _bool(where, v, k)),
        "baseline": lambda v, k: setattr(settings, "baseline", _relative_to_root(settings, _string(where, v, k))),
        "context": lambda v, k: _apply_context(settings, where, _table(where, v, k)),
    }
    where.check_keys(table, TOP_KEYS + LINT_KEYS)
    lint = _table(where, table["lint"], "lint") if "lint" in table else {}
    where.check_keys(lint, LINT_KEYS, "lint")
    # ruff's top-level aliases: [tool.reglint] ignore = [...] is lint.ignore.
    entries = {key: (value, f"lint.{key}") for key, value in lint.items()}
    for key in LINT_KEYS:
        if key in table:
            if key in lint:
                raise where.error(key, f"is also set as {where.key('lint.' + key)}; keep one")
            entries[key] = (table[key], key)
    for key, value in table.items():
        if key in top:
            top[key](value, key)
    _apply_lint(settings, where, entries)


def _set_fail_on(settings: Settings, where: _Where, value: Any, key: str) -> None:
    text = _string(where, value, key).lower()
    if text not in FAIL_ON:
        raise where.error(key, f"expected one of {', '.join(FAIL_ON)}, got {value!r}")
    settings.fail_on = None if text == "none" else Severity(text)


def _set_output_format(settings: Settings, where: _Where, value: Any, key: str) -> None:
    """Checked here; applied by ``check`` only when the CLI gives none. A
    FORMAT:FILE path is relative to the config file's folder, as
    ``baseline`` is: the report lands in one place whatever folder reglint
    runs from."""
    from reglint.engine.settings import OUTPUT_FORMATS as FORMATS

    text = _string(where, value, key)
    parts = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        fmt, _, target = part.partition(":")
        if fmt.lower() not in FORMATS:
            raise where.error(key, f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")
        parts.append(f"{fmt}:{_relative_to_root(settings, target)}" if target and target != "-" else part)
    settings.output_format = ",".join(parts)


def _relative_to_root(settings: Settings, path: str) -> str:
    """Paths in a config file are relative to the file's folder."""
    if settings.root and not os.path.isabs(path):
        return os.path.join(settings.root, path)
    return path


# The scalar [tool.reglint.context] keys are TrainingContext's option fields.
SCALAR_OPTIONS = {o.key: o for o in context_options()}
REGULARIZER_KEYS = ("layers", "target", "l1", "l2")
CUSTOM_KEYS = ("kind", "factor", "l1", "l2", "scale")
CUSTOM_KINDS = ("l1", "l2", "l1l2")


CONTEXT_KEYS = (*SCALAR_OPTIONS, "regularizers", "custom-regularizers")


def _apply_context(settings: Settings, where: _Where, table: dict[str, Any]) -> None:
    where.check_keys(table, CONTEXT_KEYS, "context")
    ctx = settings.context
    for key, value in table.items():
        dotted = f"context.{key}"
        if key in SCALAR_OPTIONS:
            setattr(ctx, SCALAR_OPTIONS[key].name, _scalar(where, SCALAR_OPTIONS[key], value, dotted))
        elif key == "regularizers":
            ctx.regularizers = _regularizers(where, value, dotted)
        else:
            ctx.custom_regularizers = _custom_regularizers(where, value, dotted)


def _scalar(where: _Where, option: ContextOption, value: Any, dotted: str) -> Any:
    """A context value of the option's type, within its bounds."""
    if option.kind is str:
        text = _string(where, value, dotted)
        if option.name == "optimizer":
            from reglint.readers.optimizer_names import checked_optimizer_setting

            try:
                return checked_optimizer_setting(text)
            except ValueError as exc:
                raise where.error(dotted, str(exc)) from None
        return text
    # the option's own range in the message (review 58: "-2" was told ">= 0" of an option that wants "> 0")
    number = _integer(where, value, dotted) if option.kind is int else _number(where, value, dotted,
                                                                               minimum=-math.inf)
    if option.violation(number):
        raise where.error(dotted, f"expected a number {option.range_text()}, got {value!r}")
    return number


def _regularizers(where: _Where, value: Any, dotted: str) -> list[dict[str, Any]]:
    """``[{layers="fc*", target="kernel", l2=1e-4}]``."""
    if not isinstance(value, list):
        raise where.error(dotted, "expected an array of tables")
    out = []
    for i, raw in enumerate(value):
        item_key = f"{dotted}[{i}]"
        item = _table(where, raw, item_key)
        where.check_keys(item, REGULARIZER_KEYS, item_key)
        spec: dict[str, Any] = {"layers": _string(where, item.get("layers", "*"), f"{item_key}.layers"),
                                "target": _string(where, item.get("target", "kernel"), f"{item_key}.target")}
        for factor in ("l1", "l2"):
            if factor in item:
                spec[factor] = _number(where, item[factor], f"{item_key}.{factor}")
        if "l1" not in spec and "l2" not in spec:
            raise where.error(item_key, "needs l1 or l2")
        out.append(spec)
    return out


def _custom_regularizers(where: _Where, value: Any, dotted: str) -> dict[str, dict[str, Any]]:
    """``{"acme>MyL2" = {kind="l2", factor="strength"}}``: how to read a class's config."""
    out = {}
    for name, raw in _table(where, value, dotted).items():
        key = f'{dotted}."{name}"'
        spec = _table(where, raw, key)
        where.check_keys(spec, CUSTOM_KEYS, key)
        kind = _string(where, spec.get("kind", "l2"), f"{key}.kind").lower()
        if kind not in CUSTOM_KINDS:
            raise where.error(f"{key}.kind", f"expected one of {', '.join(CUSTOM_KINDS)}, got {kind!r}")
        entry: dict[str, Any] = {"kind": kind}
        for field in ("factor", "l1", "l2"):
            if field in spec:
                entry[field] = _string(where, spec[field], f"{key}.{field}")
        if "scale" in spec:
            entry["scale"] = _number(where, spec["scale"], f"{key}.scale")
        out[name] = entry
    return out


LINT_KEYS = ("select", "extend-select", "ignore", "severity", "per-file-ignores", "thresholds", "overrides",
             "require-reason")


def _apply_lint(settings: Settings, where: _Where, entries: dict[str, tuple[Any, str]]) -> None:
    """``entries``: key -> (value, the dotted key it was given as)."""
    for key in ("select", "extend-select", "ignore"):
        if key in entries:
            value, dotted = entries[key]
            if key == "select" and isinstance(value, list) and not value:
                # as --select '' and reglint.lint(select=[]): a lint that runs no rule passes every model
                raise where.error(dotted, "select is empty: it would run no rule; remove the key for the defaults "
                                          "or list codes or prefixes such as RL001, RL01")
            setattr(settings, key.replace("-", "_"), _selectors(where, value, dotted))
    if "severity" in entries:
        value, dotted = entries["severity"]
        settings.severity = _severity(where, _table(where, value, dotted), dotted)
    if "per-file-ignores" in entries:
        value, dotted = entries["per-file-ignores"]
        settings.per_file_ignores = {pattern: _selectors(where, codes, f'{dotted}."{pattern}"')
                                     for pattern, codes in _table(where, value, dotted).items()}
    if "thresholds" in entries:
        value, dotted = entries["thresholds"]
        settings.thresholds = _thresholds(where, _table(where, value, dotted), dotted)
    value, dotted = entries.get("require-reason", (False, "lint.require-reason"))
    require_reason = _bool(where, value, dotted)
    if "overrides" in entries:
        value, dotted = entries["overrides"]
        settings.overrides = _overrides(where, value, require_reason, dotted)


def _severity(where: _Where, table: dict[str, Any], dotted: str = "lint.severity") -> dict[str, Severity]:
    """``error = ["RL001"]``, ``info = ["RL00"]`` -> {code: severity}.
    Prefixes expand to codes; the most specific selector wins (RL001 stays
    an error above), and one code at one specificity in two lists is an error."""
    from reglint.engine.rule import all_rules

    where.check_keys(table, [s.value for s in Severity], dotted)
    best: dict[str, tuple[int, str]] = {}  # code -> (selector length, level)
    for level, value in table.items():
        for sel in _selectors(where, value, f"{dotted}.{level}"):
            length = 0 if sel == "ALL" else len(sel)
            for code in (c for c in all_rules() if sel == "ALL" or c.startswith(sel)):
                previous = best.get(code)
                if previous and previous[0] == length and previous[1] != level:
                    raise where.error(dotted, f"{code} is put under both {previous[1]} and {level}")
                if not previous or length > previous[0]:
                    best[code] = (length, level)
    return {code: Severity(level) for code, (_, level) in best.items()}


def _thresholds(where: _Where, table: dict[str, Any], dotted: str = "lint.thresholds") -> dict[str, float]:
    """Option names of every rule (``penalty-ratio-error`` ...)."""
    from reglint.engine.rule import all_rules

    options = sorted({name for rule in all_rules().values() for name in rule.options})
    where.check_keys(table, options, dotted)
    # every threshold is a ratio, a share, a rate or a count: a negative one is a slip (review 54)
    values = {name: _number(where, value, f"{dotted}.{name}", minimum=0.0, finite=False)
              for name, value in table.items()}
    _check_level_pairs(where, values, dotted)
    return values


def _check_level_pairs(where: _Where, values: dict[str, float], dotted: str) -> None:
    """A warning level set above its error level (``penalty-ratio-warning =
    30`` with the error at 18) leaves no value that warns, and the findings
    it meant to quiet still come, as errors: a slip, refused naming both.
    An error level set under the default warning alone is a stricter gate
    (errors from there), and loads."""
    from reglint.engine.rule import all_rules

    for rule in all_rules().values():
        for error, warning in rule.level_pairs():
            if warning not in values:
                continue
            high = values.get(error, rule.options[error].default)
            low = values[warning]
            if low > high:
                raise where.error(f"{dotted}.{warning}",
                                  f"{warning} = {low:g} is above {error} = {high:g} ({rule.code}): a warning level "
                                  f"must not exceed its error level; set both")


OVERRIDE_KEYS = ("files", "layers", "ignore", "reason", "expires")


def _overrides(where: _Where, value: Any, require_reason: bool, dotted: str = "lint.overrides") -> list[Override]:
    if not isinstance(value, list):
        raise where.error(dotted, f"expected an array of tables ([[{where.prefix}{dotted}]])")
    out = []
    for i, raw in enumerate(value):
        key = f"{dotted}[{i}]"
        item = _table(where, raw, key)
        where.check_keys(item, OVERRIDE_KEYS, key)
        if "ignore" not in item:
            raise where.error(key, "needs an 'ignore' list of rule codes")
        reason = _string(where, item["reason"], f"{key}.reason") if "reason" in item else None
        if require_reason and not (reason and reason.strip()):
            raise where.error(key, "has no 'reason' (require-reason = true)")
        out.append(Override(
            files=_strings(where, item.get("files", ["*"]), f"{key}.files"),
            layers=_strings(where, item.get("layers", ["*"]), f"{key}.layers"),
            ignore=_selectors(where, item["ignore"], f"{key}.ignore"),
            reason=reason,
            expires=_date(where, item.get("expires"), f"{key}.expires"),
        ))
    return out


def _date(where: _Where, value: Any, dotted: str) -> _dt.date | None:
    """A TOML date (``2026-12-31``) or an ISO string."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise where.error(dotted, f"expected a date like 2026-12-31, got {value!r}")


