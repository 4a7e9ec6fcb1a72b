"""Find and read ``[tool.reglint]`` (or ``reglint.toml``) into ``Settings``.

Discovery follows ruff: the closest ``.reglint.toml``, ``reglint.toml`` or
``pyproject.toml`` with a ``[tool.reglint]`` table, searching upward from the
first path and stopping at the root of the Git repository (the folder holding
``.git``) or of the filesystem. Settings are never merged across files.
``--config FILE`` replaces discovery, ``--config "key = value"`` overrides one
key as inline TOML, ``--isolated`` ignores every file.

Validation is strict, like ruff's: an unknown key, a wrong type, an unknown
rule code or a bad severity is a ``ConfigError`` naming the key and the file
(exit 2), so a typo never silently turns a check off.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import os
import sys
from pathlib import Path
from typing import Any
from collections.abc import Callable

from reglint.config.settings import Override, Settings
from reglint.engine.finding import Severity
from reglint.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_NAMES = (".reglint.toml", "reglint.toml", "pyproject.toml")
FAIL_ON = ("error", "warning", "info", "none")


def load_settings(paths: list[str], config: str | None = None, isolated: bool = False) -> Settings:
    """Settings for a run over ``paths``: defaults, then the config file."""
    settings = Settings()
    if isolated:
        return settings
    inline = None
    if config is not None and _is_inline(config):
        inline, config = _parse_inline(config), None
    source = Path(config) if config is not None else find_config(paths)
    if config is not None and not source.is_file():
        raise ConfigError(f"configuration file {config} not found")
    table: dict[str, Any] = {}
    prefix = ""
    if source is not None:
        table, prefix = read_table(source)
        settings.root = str(source.resolve().parent)
        settings.config_file = str(source)
    if inline:
        table = _merge(table, inline)
    apply_table(settings, table, _Where(prefix, _show(source) if source else "--config"))
    warn_expired(settings)
    return settings


# ---------------------------------------------------------------------------
# discovery and reading


def find_config(paths: list[str], start: str | None = None) -> Path | None:
    """The closest config file above the first path (or ``start``/the cwd)."""
    folder = _start_folder(paths[0] if paths else (start or os.getcwd()))
    while True:
        for name in CONFIG_NAMES:
            candidate = folder / name
            if candidate.is_file() and (name != "pyproject.toml" or _has_reglint_table(candidate)):
                return candidate
        if (folder / ".git").exists() or folder.parent == folder:
            return None  # the repository (or filesystem) root ends the search
        folder = folder.parent


def _start_folder(path: str) -> Path:
    current = Path(path).absolute()
    while not current.exists() and current.parent != current:
        current = current.parent  # a missing path: search from what exists
    return current if current.is_dir() else current.parent


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


def _parse_inline(config: str) -> dict[str, Any]:
    try:
        return tomllib.loads(config)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {config!r} is neither a file nor valid TOML: {exc}") from None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
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
                close = difflib.get_close_matches(key, list(allowed), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(f"unknown key {self.key(name)} in {self.file}{hint}")


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


def _number(where: _Where, value: Any, dotted: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(dotted, f"expected a number, got {_type_name(value)}")
    if not value >= minimum:  # also rejects NaN
        raise where.error(dotted, f"expected a number >= {minimum:g}, got {value!r}")
    return float(value)


def _integer(where: _Where, value: Any, dotted: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise where.error(dotted, f"expected a positive integer, got {value!r}")
    return value


def _selectors(where: _Where, value: Any, dotted: str) -> list[str]:
    """Rule codes or prefixes (or ALL), each matching at least one rule."""
    from reglint.engine.rule import all_rules

    codes = list(all_rules())
    out = []
    for item in _strings(where, value, dotted):
        sel = item.strip().upper()
        if sel != "ALL" and not any(code.startswith(sel) for code in codes):
            raise where.error(dotted, f"unknown rule code or prefix {item!r} (`reglint rules` lists them)")
        out.append(sel)
    return out


# ---------------------------------------------------------------------------
# the tables


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
        "lint": lambda v, k: _apply_lint(settings, where, _table(where, v, k)),
    }
    where.check_keys(table, top)
    for key, value in table.items():
        top[key](value, key)


def _set_fail_on(settings: Settings, where: _Where, value: Any, key: str) -> None:
    text = _string(where, value, key).lower()
    if text not in FAIL_ON:
        raise where.error(key, f"expected one of {', '.join(FAIL_ON)}, got {value!r}")
    settings.fail_on = None if text == "none" else Severity(text)


def _set_output_format(settings: Settings, where: _Where, value: Any, key: str) -> None:
    """Checked here; applied by ``check`` only when the CLI gives none."""
    from reglint.reporters import FORMATS

    text = _string(where, value, key)
    for part in filter(None, (p.strip() for p in text.split(","))):
        fmt = part.partition(":")[0].lower()
        if fmt not in FORMATS:
            raise where.error(key, f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")
    settings.output_format = text


def _relative_to_root(settings: Settings, path: str) -> str:
    """Paths in a config file are relative to the file's folder."""
    if settings.root and not os.path.isabs(path):
        return os.path.join(settings.root, path)
    return path


CONTEXT_INTS = ("samples", "batch-size", "epochs", "steps", "classes")
CONTEXT_FLOATS = ("target-var", "loss-scale", "learning-rate", "momentum", "weight-decay")
REGULARIZER_KEYS = ("layers", "target", "l1", "l2")
CUSTOM_KEYS = ("kind", "factor", "l1", "l2", "scale")
CUSTOM_KINDS = ("l1", "l2", "l1l2")


def _apply_context(settings: Settings, where: _Where, table: dict[str, Any]) -> None:
    allowed = CONTEXT_INTS + CONTEXT_FLOATS + ("optimizer", "regularizers", "custom-regularizers")
    where.check_keys(table, allowed, "context")
    ctx = settings.context
    for key, value in table.items():
        dotted, attr = f"context.{key}", key.replace("-", "_")
        if key in CONTEXT_INTS:
            setattr(ctx, attr, _integer(where, value, dotted))
        elif key in CONTEXT_FLOATS:
            number = _number(where, value, dotted)
            if key == "momentum" and number > 1:
                raise where.error(dotted, f"expected a number in [0, 1], got {value!r}")
            setattr(ctx, attr, number)
        elif key == "optimizer":
            ctx.optimizer = _string(where, value, dotted)
        elif key == "regularizers":
            ctx.regularizers = _regularizers(where, value, dotted)
        else:
            ctx.custom_regularizers = _custom_regularizers(where, value, dotted)


def _regularizers(where: _Where, value: Any, dotted: str) -> list[dict[str, Any]]:
    """``[{layers="fc*", target="kernel", l2=1e-4}]``."""
    if not isinstance(value, list):
        raise where.error(dotted, "expected an array of tables")
    out = []
    for i, item in enumerate(value):
        item_key = f"{dotted}[{i}]"
        item = _table(where, item, item_key)
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
    for name, spec in _table(where, value, dotted).items():
        key = f'{dotted}."{name}"'
        spec = _table(where, spec, key)
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


def _apply_lint(settings: Settings, where: _Where, table: dict[str, Any]) -> None:
    where.check_keys(table, LINT_KEYS, "lint")
    for key in ("select", "extend-select", "ignore"):
        if key in table:
            setattr(settings, key.replace("-", "_"), _selectors(where, table[key], f"lint.{key}"))
    if "severity" in table:
        settings.severity = _severity(where, _table(where, table["severity"], "lint.severity"))
    if "per-file-ignores" in table:
        pfi = _table(where, table["per-file-ignores"], "lint.per-file-ignores")
        settings.per_file_ignores = {pattern: _selectors(where, codes, f'lint.per-file-ignores."{pattern}"')
                                     for pattern, codes in pfi.items()}
    if "thresholds" in table:
        settings.thresholds = _thresholds(where, _table(where, table["thresholds"], "lint.thresholds"))
    require_reason = _bool(where, table.get("require-reason", False), "lint.require-reason")
    if "overrides" in table:
        settings.overrides = _overrides(where, table["overrides"], require_reason)


def _severity(where: _Where, table: dict[str, Any]) -> dict[str, Severity]:
    """``error = ["RL001"]``, ``info = ["RL00"]`` -> {code: severity}.
    Prefixes expand to codes; the most specific selector wins (RL001 stays
    an error above), and one code at one specificity in two lists is an error."""
    from reglint.engine.rule import all_rules

    where.check_keys(table, [s.value for s in Severity], "lint.severity")
    best: dict[str, tuple[int, str]] = {}  # code -> (selector length, level)
    for level, value in table.items():
        for sel in _selectors(where, value, f"lint.severity.{level}"):
            length = 0 if sel == "ALL" else len(sel)
            for code in (c for c in all_rules() if sel == "ALL" or c.startswith(sel)):
                previous = best.get(code)
                if previous and previous[0] == length and previous[1] != level:
                    raise where.error("lint.severity", f"{code} is put under both {previous[1]} and {level}")
                if not previous or length > previous[0]:
                    best[code] = (length, level)
    return {code: Severity(level) for code, (_, level) in best.items()}


def _thresholds(where: _Where, table: dict[str, Any]) -> dict[str, float]:
    """Option names of every rule (``penalty-ratio-error`` ...)."""
    from reglint.engine.rule import all_rules

    options = sorted({name for rule in all_rules().values() for name in rule.options})
    where.check_keys(table, options, "lint.thresholds")
    return {name: _number(where, value, f"lint.thresholds.{name}", minimum=float("-inf"))
            for name, value in table.items()}


OVERRIDE_KEYS = ("files", "layers", "ignore", "reason", "expires")


def _overrides(where: _Where, value: Any, require_reason: bool) -> list[Override]:
    if not isinstance(value, list):
        raise where.error("lint.overrides", "expected an array of tables ([[lint.overrides]])")
    out = []
    for i, item in enumerate(value):
        key = f"lint.overrides[{i}]"
        item = _table(where, item, key)
        where.check_keys(item, OVERRIDE_KEYS, key)
        if "ignore" not in item:
            raise where.error(key, "needs an 'ignore' list of rule codes")
        reason = _string(where, item["reason"], f"{key}.reason") if "reason" in item else None
        if require_reason and not (reason and reason.strip()):
            raise where.error(key, "has no 'reason' (lint.require-reason = true)")
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


def warn_expired(settings: Settings, today: _dt.date | None = None) -> None:
    """One stderr line per expired override: it no longer applies."""
    today = today or _dt.date.today()
    for override in settings.overrides:
        if override.expires is not None and override.expires < today:
            what = ", ".join(override.ignore)
            files = ", ".join(override.files)
            sys.stderr.write(f"reglint: warning: the override ignoring {what} for {files} expired on "
                             f"{override.expires.isoformat()} and no longer applies\n")
