"""Write a profile: the terminal table and run summary (``full``), JSON
with the measured numbers under ``model.analysis.profile``, and every other
format through the ordinary reporters (the measured findings travel in
``findings`` with ``measured: true``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reglint.engine.fmt import g, pct
from reglint.engine.report import RunReport, jsonable
from reglint.profile.result import ProfileResult
from reglint.reporters.text import activity_share_text

if TYPE_CHECKING:  # rich is imported where a table is drawn
    from rich.console import JustifyMethod

OUTCOME_STYLE = {"learning": "green", "stalled": "yellow", "collapsing": "bold red", "diverged": "bold red",
                 "not-run": "dim"}


def report_dict(report: RunReport, result: ProfileResult | None) -> dict[str, Any]:
    """``RunReport.to_dict()`` with the measurement under the (single) model's
    ``analysis.profile``."""
    data = report.to_dict()
    if result is not None and data["files"]:
        model = data["files"][0].get("model")
        if model is not None:
            model.setdefault("analysis", {})["profile"] = jsonable(result.to_dict())
    return data


def write_outputs(report: RunReport, result: ProfileResult | None, outputs: list[tuple[str, str | None]],
                  settings) -> None:
    """``outputs`` as ``reglint.reporters.parse_outputs`` returns them, written
    by the reporters' one writer with this module's terminal report and the
    measurement in the JSON document (json, html)."""
    from reglint.reporters import write_outputs as write

    def full(run: RunReport, console, show_layers: bool = True) -> None:
        render_full(run, result, console)

    write(report, outputs, settings, full=full, data=report_dict(report, result))


# ---------------------------------------------------------------------------
# full


def render_full(report: RunReport, result: ProfileResult | None, console) -> None:
    from rich.text import Text

    from reglint.reporters.full import summary_line
    from reglint.reporters.text import clean

    for file_report in report.files:
        if file_report.error:
            console.print(Text(f"{clean(file_report.path)}: error: {clean(file_report.error)}", style="red"))
            continue
        model = file_report.model
        if model is None:
            continue
        version = f", Keras {clean(model.framework_version)}" if model.framework_version else ""
        console.print(Text.assemble((clean(file_report.path), "bold"), f"  ({model.format}{version})  ",
                                    f"{g(model.total_params)} params, profiled"))
        if result is not None:
            _table(result, console)
            _summary(result, file_report, console)
            if result.twin is not None:
                _twin(result, console)
        _findings(file_report, console)
    console.print(summary_line(report))


def _table(result: ProfileResult, console) -> None:
    from rich.table import Table

    from reglint.reporters.text import markup

    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    columns: list[tuple[str, JustifyMethod]] = [
        ("layer", "left"), ("variable", "left"), ("params", "right"), ("lambda", "left"), ("|g_data|", "right"),
        ("|g_pen|", "right"), ("ratio", "right"), ("of penalty", "right"), ("update/|w|", "right"),
        ("(no pen.)", "right")]
    for column, justify in columns:
        table.add_column(column, justify=justify, overflow="fold")
    for row in result.variables:
        ratio = row.ratio
        ratio_text = g(ratio, 2)
        if ratio >= 1:
            ratio_text = f"[bold red]{ratio_text}[/]"
        name = markup(row.variable) + (" [dim](invariant)[/]" if row.scale_invariant else
                                       " [dim](absorbed)[/]" if row.absorbed else "")
        table.add_row(markup(row.layer), name, g(row.params), markup(_lambda(row.regularizer)) or "[dim]activity[/]",
                      g(row.grad_data_norm), g(row.grad_penalty_norm), ratio_text,
                      pct(row.share) if row.share is not None and row.regularizer is not None else "",
                      _num(row.update_ratio), _num(row.update_ratio_data))
    for lp in result.layer_penalties:
        table.add_row(markup(lp.layer), f"[dim]({lp.kind})[/]", "", markup(_lambda(lp.regularizer)), "", "", "",
                      f"{g(lp.penalty)}/sample" if lp.kind == "activity" else g(lp.penalty), "", "")
    if not result.variables and not result.layer_penalties:
        console.print("  [dim]no regularized variables[/]")
    else:
        console.print(table)


def _num(value: float | None) -> str:
    """Blank for unknown, "-" where w = 0 makes update/|w| meaningless."""
    if value is None:
        return ""
    return g(value) if value != float("inf") else "-"


def _lambda(reg: dict[str, Any] | None) -> str:
    if not reg:
        return ""
    cls = reg.get("class", "?")
    if cls in ("L1", "L2") and reg.get(cls.lower()) is not None:
        return f"{cls}({g(reg[cls.lower()])})"  # as the user wrote it
    factors = ", ".join(f"{k}={g(reg[k])}" for k in ("l1", "l2", "factor") if reg.get(k))
    return f"{cls}({factors})"


def _summary(result: ProfileResult, file_report, console) -> None:
    from reglint.reporters.text import markup

    console.print(f"  device: {markup(result.device)}; Keras on {result.backend}; load {result.load_seconds:.2f} s, "
                  f"measure + {len(result.trajectory)} steps {result.run_seconds:.2f} s")
    if result.start.fresh:
        console.print(f"  [dim]weights: a fresh initialisation drawn from the initializers the file records "
                      f"({markup(result.start.reason)}); every measurement below is taken at it or starts from it[/]")
    else:
        console.print("  [dim]weights: as saved in the file (not re-initialised); every measurement below is taken "
                      "at them or starts from them[/]")
    data = result.data
    if result.synthetic:
        console.print(f"  data: synthetic, one batch of {data['batch_size']} "
                      f"[yellow]({markup(result.notes[0])})[/]")
    else:
        held = f" ({g(data['held_out'])} held back for the twin)" if data.get("held_out") else ""
        console.print(f"  data: {markup(data.get('path'))}, {g(data['samples'])} examples{held}, "
                      f"batches of {data['batch_size']} (seed {data['seed']})")
    loss = result.loss
    untrained = loss.get("untrained_outputs") or []
    names = ", ".join(n or "?" for n in loss.get("names") or [] if n or not untrained)
    if untrained:  # outputs whose loss is None: Keras trains them on no target
        names += f"; no loss on {', '.join(map(str, untrained))}"
    console.print(f"  loss: {markup(names)} [dim]({loss.get('source')})[/]")
    opt = result.optimizer
    if opt:
        lr = f"lr {g(opt.get('learning_rate'))}"
        if opt.get("learning_rate_schedule"):  # review 38, 9: the schedule and its peak, as RL007 quotes it
            peak = opt.get("learning_rate_peak")
            lr = (f"lr {markup(str(opt['learning_rate_schedule']))} from {g(opt.get('learning_rate'))}"
                  + (f", {g(peak)} at most in these runs" if peak is not None and peak != opt.get("learning_rate")
                     else ""))
        console.print(f"  optimizer: {markup(opt['class'])} {lr}" + "".join(f", {e}" for e in optimizer_extras(opt)))
    static_rho = None
    if file_report.analysis is not None and file_report.analysis.penalties:
        from reglint.rules.rl001_penalty_dominates_loss import static_ratio

        static_rho = static_ratio(file_report)
    counted, whole = result.weight_penalty_ratio(), result.weight_penalty_ratio(include_invariant=True)
    left_out = (f", {g(whole, 2)} with the kernels feeding a normalization and the gammas/betas RL001 leaves out"
                if abs(whole - counted) > 1e-12 * max(1.0, abs(whole)) else "")  # review 38, 8
    # the static estimate of the same quantity beside each (review 73, 4: the weights' beside the whole)
    estimated = [e.ratio for e in file_report.penalty_estimates]
    activity = activity_share_text(result.to_dict()["initial"], lambda v: g(v, 2),
                                   (static_rho or 0.0) + sum(estimated) if estimated else None)
    console.print(f"  first batch: data loss {g(result.data_loss)}, penalty {g(result.penalty)} "
                  f"(weights {g(result.weight_penalty)}); penalty/data {g(counted, 2)}{left_out}" +
                  (f" [dim](static estimate {g(static_rho, 2)})[/]" if static_rho is not None else "") + activity)
    outcome = result.outcome
    if result.trajectory:
        first, last = result.trajectory[0], result.trajectory[-1]
        change = outcome.kernel_norm_change
        console.print(f"  {len(result.trajectory)}/{result.steps_requested} steps: data loss (step batches) "
                      f"{g(first.data_loss)} -> {g(last.data_loss)}; first batch {g(outcome.data_loss_initial)} -> "
                      f"{g(outcome.data_loss_final) if outcome.data_loss_final is not None else 'not re-measured'}" +
                      (f" (constant prediction {g(outcome.trivial_loss)})"
                       if outcome.trivial_loss is not None else "") +
                      f"; penalty {g(first.penalty)} -> {g(last.penalty)}" +
                      (f"; kernel norm {g(outcome.kernel_norm_initial)} -> "
                       f"{g(outcome.kernel_norm_final)} ({_signed_pct(change)})"
                       if change is not None else ""))
    style = OUTCOME_STYLE.get(outcome.label, "")
    console.print(f"  outcome: [{style}]{outcome.label}[/]: {markup(outcome.reason)}" if style else
                  f"  outcome: {outcome.label}: {markup(outcome.reason)}")
    for note in result.notes[1 if result.synthetic else 0:]:
        console.print(f"  [dim]note: {markup(note)}[/]")
    console.print()


VERDICT_STYLE = {"diverged": "bold red", "collapsed": "bold red", "worse": "yellow", "similar": "green",
                 "better": "green"}
# Rows of the twin table: step 0, then evenly spaced records, the last included.
TWIN_ROWS = 7


def _twin(result: ProfileResult, console) -> None:
    """Both runs side by side at a few recorded steps, and the verdict."""
    from rich.table import Table

    from reglint.reporters.text import markup

    twin = result.twin
    if twin is None:
        return
    pen, ref = twin.penalized, twin.unregularized
    if twin.synthetic:
        where = "synthetic data (one batch), no held-back slice"
    elif twin.held_out.get("samples"):
        where = f"held-back slice of {g(twin.held_out.get('samples'))} examples"
    else:  # too few examples to hold any back (data.MIN_HOLD_OUT_SAMPLES)
        where = "no held-back slice (too few examples): both runs are judged on their training loss"
    console.print(f"  twin: {result.start.phrase}, fresh optimizers, the same batches in the same order; {where}")
    console.print(f"  [dim]budget: {markup(twin.budget.reason)}[/]")
    if twin.removed:
        shown = ", ".join(twin.removed[:4]) + (f" and {len(twin.removed) - 4} more" if len(twin.removed) > 4 else "")
        console.print(f"  [dim]removed in the twin: {markup(shown)}[/]")
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    columns: list[tuple[str, JustifyMethod]] = [("step", "right")]
    for run_name in ("penalized", "twin"):
        columns += [(f"{run_name}: data loss", "right")]
        if pen.val_loss is not None:
            columns += [("held-out loss", "right")]
        if pen.val_accuracy is not None:
            columns += [("accuracy", "right")]
        columns += [("|kernels|", "right")]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for i in _row_indices(len(ref.step)):
        cells = [g(ref.step[i])]
        for run in (pen, ref):
            inside = i < len(run.step)
            cells.append(g(run.data_loss[i]) if inside else "")
            if pen.val_loss is not None:
                cells.append(g(run.val_loss[i]) if inside and run.val_loss else "")
            if pen.val_accuracy is not None:
                cells.append(g(run.val_accuracy[i]) if inside and run.val_accuracy else "")
            cells.append(g(run.kernel_norm[i]) if inside else "")
        table.add_row(*cells)
    console.print(table)
    if pen.diverged_at is not None:
        console.print(f"  [red]the penalized run diverged at step {g(pen.diverged_at)}[/]")
    if pen.angular_update and ref.angular_update and len(pen.angular_update) > 1:
        eq = f" (predicted at equilibrium {g(twin.angular_equilibrium)})" if twin.angular_equilibrium else ""
        console.print(f"  scale-invariant kernels turn {g(pen.angular_update[-1])} rad per step penalized, "
                      f"{g(ref.angular_update[-1])} in the twin{eq}")
    label, message = twin.verdict.get("label", "?"), twin.verdict.get("message", "")
    style = VERDICT_STYLE.get(label, "")
    console.print(f"  verdict: [{style}]{markup(label)}[/]: {markup(message)}" if style else
                  f"  verdict: {markup(label)}: {markup(message)}")
    for i, trial in enumerate(twin.trials, 1):
        console.print(f"  fix {i} measured: {markup(_trial_text(result, trial))}")
    if twin.trials_note:
        console.print(f"  [dim]note: {markup(twin.trials_note)}[/]")
    for note in twin.notes:
        console.print(f"  [dim]note: {markup(note)}[/]")
    console.print()


def _trial_text(result: ProfileResult, trial) -> str:
    """What a fix trial ran and where it ended, in the verdict's metric
    (RL023's finding judges it)."""
    from reglint.engine.twin_metric import TwinMetric

    changes = ", ".join(dict.fromkeys(
        ("weight_decay" if c.parameter == "weight_decay" else f"{c.target} {c.parameter}")
        + f" {g(c.current)} -> {g(c.suggested)}" for c in trial.changes))
    run = trial.run
    if run.diverged_at is not None:
        return f"{changes}: diverged at step {g(run.diverged_at)}"
    return f"{changes}: {TwinMetric(result.twin, result).show(run)} at step {g(run.step[-1])}"


def _row_indices(count: int) -> list[int]:
    if count <= TWIN_ROWS:
        return list(range(count))
    picks = {round(i * (count - 1) / (TWIN_ROWS - 1)) for i in range(TWIN_ROWS)}
    return sorted(picks)


def _signed_pct(change: float) -> str:
    return ("+" if change >= 0 else "-") + pct(abs(change))


def _findings(file_report, console) -> None:
    from rich.text import Text

    from reglint.reporters.full import SEVERITY_STYLE
    from reglint.reporters.text import clean

    for finding in file_report.findings:
        style = SEVERITY_STYLE[finding.severity.value]
        where = f" [{clean(finding.layer)}]" if finding.layer else ""
        console.print(Text.assemble((f"{finding.severity.value:<7}", style), " ", (finding.code, "bold"),
                                    f" {finding.name}", (where, "magenta"),
                                    (" (measured)" if finding.measured else " (static)", "dim")))
        console.print(Text("        " + clean(finding.message)))
        if finding.remedy:
            console.print(Text("        fix: " + clean(finding.remedy), style="green"))


def optimizer_extras(opt: dict) -> list[str]:
    """The optimizer line's settings after its rate, in check's words:
    momentum, weight_decay, the clipping Keras applies first, use_ema.

    >>> optimizer_extras({"momentum": 0.9, "global_clipnorm": 1.0, "ema_momentum": 0.99})
    ['momentum 0.9', 'global_clipnorm 1', 'EMA of the weights 0.99 (use_ema)']
    """
    clip = next((f"{key} {g(opt[key])}" for key in ("global_clipnorm", "clipnorm", "clipvalue") if opt.get(key)), "")
    extras = [f"momentum {g(opt['momentum'])}" + (" nesterov" if opt.get("nesterov") else "")
              if opt.get("momentum") else "",
              f"weight_decay {g(opt['weight_decay'])}" if opt.get("weight_decay") else "", clip,
              f"EMA of the weights {g(opt['ema_momentum'])} (use_ema)" if opt.get("ema_momentum") else ""]
    return [e for e in extras if e]
