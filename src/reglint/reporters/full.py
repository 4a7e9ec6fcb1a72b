"""The default terminal report (rich): a per-layer table with parameters,
regularizers and penalties, the loss scale and optimizer, then findings."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from reglint.engine.fmt import g, lam, pct
from reglint.engine.report import FileReport, RunReport
from reglint.reporters.text import clean, markup

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def render_full(report: RunReport, console: Console, *, show_layers: bool = True) -> None:
    for file_report in report.files:
        if file_report.error:
            continue  # said on stderr, once
        if show_layers:
            _model_summary(file_report, console)
        _findings(file_report, console, with_path=not show_layers)
    console.print(summary_line(report))


def _model_summary(rep: FileReport, console: Console) -> None:
    model, analysis = rep.model, rep.analysis
    version = f", {'Keras' if model.framework != 'onnx' else 'ONNX'} {clean(model.framework_version)}" \
        if model.framework_version else ""
    console.print(Text.assemble((clean(rep.path), "bold"), f"  ({model.format}{version})  ",
                                f"{g(model.total_params)} params: {g(model.trainable_params)} trainable, "
                                f"{g(model.non_trainable_params)} non-trainable"))
    penalties = {(p.layer.path, p.variable.name): p for p in analysis.penalties}
    has_saved = any(p.penalty_saved is not None for p in analysis.penalties)
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    columns = [("layer", "left"), ("class", "left"), ("params", "right"), ("frozen", "right"),
               ("regularizers", "left"), ("P@init", "right")]
    if has_saved:
        columns.append(("P@saved", "right"))
    columns.append(("share", "right"))
    for column, justify in columns:
        table.add_column(column, justify=justify, overflow="fold", no_wrap=column in ("regularizers", "params"))
    scale = analysis.loss_scale.value
    for layer in model.layers:
        regs, init, saved = [], 0.0, 0.0
        has_init = has_saved_here = False
        for var in layer.variables:
            if var.regularizer is None:
                continue
            source = " [dim](user)[/]" if var.regularizer.source.value == "user" else ""
            regs.append(f"{markup(var.name)} {markup(lam(var.regularizer))}{source}")
            p = penalties.get((layer.path, var.name))
            if p is not None and p.penalty_init is not None:
                init += p.penalty_init
                has_init = True
            if p is not None and p.penalty_saved is not None:
                saved += p.penalty_saved
                has_saved_here = True
        if layer.activity_regularizer is not None:
            regs.append(f"activity {markup(lam(layer.activity_regularizer))}")
        if not layer.variables and not regs:
            continue
        name = markup(layer.path) + ("" if layer.trainable else " [dim](frozen)[/]") + \
            (" [dim](custom)[/]" if layer.custom else "")
        cells = [name, markup(layer.class_name), g(layer.trainable_params), g(layer.non_trainable_params),
                 "\n".join(regs) or "[dim]-[/]", g(init) if has_init else ""]
        if has_saved:
            cells.append(g(saved) if has_saved_here else "")
        reference = init if has_init else (saved if has_saved_here else None)
        cells.append(pct(reference / scale) if reference is not None else "")
        table.add_row(*cells)
    console.print(table)
    console.print(f"  data-loss scale: {g(scale)} [dim]({markup(analysis.loss_scale.explanation)})[/]")
    opt = model.optimizer
    if opt is not None:
        lr = opt.learning_rate
        lr_text = "lr ?" if lr is None or lr.initial is None else (
            f"lr {g(lr.initial)}" + (f" ({markup(lr.schedule)}, peak {g(lr.peak)})" if lr.schedule else ""))
        extras = []
        if opt.momentum:
            extras.append(f"momentum {g(opt.momentum)}" + (" nesterov" if opt.nesterov else ""))
        if opt.weight_decay:
            extras.append(f"weight_decay {g(opt.weight_decay)}")
        if opt.coupled_l2:
            extras.append(f"coupled L2 {g(opt.coupled_l2)}")
        if opt.iterations:
            extras.append(f"{g(opt.iterations)} steps taken")
        source = "" if opt.source.value == "file" else f" [dim](from {opt.source.value})[/]"
        console.print(f"  optimizer: {markup(opt.class_name)} {lr_text}" +
                      (", " + ", ".join(extras) if extras else "") + source)
    total = analysis.total_penalty_init(include_invariant=True)
    if analysis.penalties:
        at = "at init" if all(p.penalty_init is not None for p in analysis.penalties) else \
            "at init, or at the saved weights where no initializer is recorded"
        console.print(f"  penalty ({at}): {g(total)} = {pct(total / scale)} of the data-loss scale"
                      + _counted_note(analysis, total, scale))
    for note in model.notes[:5]:
        console.print(f"  [dim]note: {markup(note)}[/]")
    console.print()


def _findings(rep: FileReport, console: Console, with_path: bool) -> None:
    if with_path and rep.findings:
        console.print(Text(clean(rep.path), style="bold"))
    for finding in rep.findings:
        style = SEVERITY_STYLE[finding.severity.value]
        where = f" [{clean(finding.layer)}]" if finding.layer else ""
        measured = " (measured)" if finding.measured else ""
        line = Text.assemble((f"{finding.severity.value:<7}", style), " ", (finding.code, "bold"),
                             f" {finding.name}{measured}", (where, "magenta"))
        console.print(line)
        console.print(Text("        " + clean(finding.message)))
        if finding.remedy:
            console.print(Text("        fix: " + clean(finding.remedy), style="green"))
        if finding.fix is not None and finding.fix.changes:
            console.print(Text(f"        changes ({clean(finding.fix.aim)}): {clean(finding.fix.describe())}",
                               style="green"))


def _counted_note(analysis, total: float, scale: float) -> str:
    """Where RL001 counts less than the table's total, say how much and why,
    so the two numbers on one screen never disagree silently."""
    counted = analysis.total_penalty_init()
    if total - counted <= 1e-12 * max(1.0, total):
        return ""
    left = []
    if any(p.active and p.scale_invariant and not p.absorbed for p in analysis.penalties):
        left.append("scale-invariant kernels (RL009)")
    if any(p.active and p.absorbed for p in analysis.penalties):
        left.append("absorbed normalization gamma/beta (RL008)")
    if any(p.active and p.offset and not (p.absorbed or p.scale_invariant) for p in analysis.penalties):
        left.append("biases and beta (RL008)")
    return (f"; RL001 counts {g(counted)} = {pct(counted / scale)}, leaving out "
            f"{' and '.join(left) or 'penalties that cannot pull the function to zero'}")


def summary_line(report: RunReport) -> str:
    counts = {"error": 0, "warning": 0, "info": 0}
    for _, finding in report.findings:
        counts[finding.severity.value] += 1
    total = sum(counts.values())
    n_files = len(report.files)
    unreadable = len(report.errors)
    parts = [f"{counts[k]} {k}{'s' if counts[k] != 1 else ''}" for k in ("error", "warning", "info") if counts[k]]
    text = f"Found {total} finding{'s' if total != 1 else ''}" + (f" ({', '.join(parts)})" if parts else "")
    text += f" in {n_files} file{'s' if n_files != 1 else ''}"
    if unreadable:
        text += f"; {unreadable} unreadable"
    return text + "."
