"""Lint one file: read -> describe -> analyse -> rules -> filter."""

from __future__ import annotations

from reglint.engine.analysis import Analysis
from reglint.engine.finding import Finding
from reglint.engine.report import FileReport
from reglint.engine.selection import filter_findings, kept_curves, selected_rules
from reglint.engine.settings import Settings
from reglint.errors import NotAModelError, ReglintError, one_line
from reglint.readers import ReadOptions, read_model


def lint_file(path: str, settings: Settings, options: ReadOptions | None = None) -> FileReport:
    from reglint.engine.opened_files import beside, collect

    with collect() as opened:
        report = _read_and_lint(path, settings, options)
    report.read_with = beside(path, opened)
    return report


def _read_and_lint(path: str, settings: Settings, options: ReadOptions | None) -> FileReport:
    report = FileReport(path=path)
    try:
        model = read_model(path, options)
    except ReglintError as exc:
        report.error = one_line(str(exc))
        report.not_a_model = isinstance(exc, NotAModelError)
        return report
    except PermissionError:
        report.error = "permission denied"
        return report
    except (MemoryError, RecursionError) as exc:
        report.error = one_line(f"model too large or deeply nested to read ({type(exc).__name__})")
        report.transient = isinstance(exc, MemoryError)  # another run, with more memory, may read it
        return report
    except Exception as exc:  # never a traceback for a bad file
        report.error = one_line(f"unreadable model ({type(exc).__name__}: {exc})")
        return report
    report.analysis = Analysis(model, settings.context)
    report.model = model = report.analysis.model  # with the user's context applied
    findings: list[Finding] = []
    views = report.analysis.group_views()
    for cls in selected_rules(settings):
        rule = cls(settings.thresholds)
        for analysis in views if cls.per_optimizer_group else views[:1]:
            findings.extend(rule.check(model, analysis))
            report.curves.extend(rule.sweep(model, analysis))
        report.penalty_estimates.extend(rule.penalty_estimates(model, views[0]))
    kept, report.suppressed = filter_findings(findings, path, settings)
    report.curves = kept_curves(report.curves, path, settings, kept, report.suppressed)
    report.findings = sorted(kept, key=lambda f: (-f.severity.rank, f.code, f.layer or ""))
    return report
