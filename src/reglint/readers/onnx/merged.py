"""Initializers an exporter merged because their values were equal.

torch.onnx's exporters merge identical tensors: an untrained model's
LayerNorm weights (all ones) and zero biases become one initializer that
every such layer reads (a tiny BERT: 21,472 parameters in torch, 20,752 in
its export). The file holds one and reglint counts one; the note says how
many values the merge removed, so that the two add up to the framework's
count. Told apart from a weight tied by design (ALBERT's shared layers) by
its values (one repeated magnitude) and its readers (nodes of other modules
than its name gives).
"""

from __future__ import annotations

import re

from reglint.readers.onnx.graph import GraphIndex
from reglint.readers.onnx.layers import torch_module
from reglint.readers.onnx.params import Param
from reglint.readers.onnx.roles import uses


def merged_constants_note(params: list[Param], index: GraphIndex) -> str | None:
    """The note on merged initializers, or None when there are none."""
    merged = {p.name: others for p in params if p.uses > 1 and p.stats is not None and _one_magnitude(p.stats)
              and (others := _other_modules(p, index))}
    if not merged:
        return None
    extra = _values_more(params, merged)
    return (f"{len(merged)} initializer(s) holding one repeated value (an untrained normalization's ones, a zero "
            f"bias) also feed {sum(merged.values())} nodes of other modules and are counted once, as stored: "
            f"exporters merge identical tensors (torch.onnx does), so the source model may have held one per "
            f"module ({extra:,} values more)")


def parallel_copies_note(params: list[Param], index: GraphIndex) -> str | None:
    """Weights an exporter stored once for several copies of one module: an
    untrained ``nn.TransformerEncoder`` deep-copies its layer, so layer 1's
    weights equal layer 0's and torch.onnx keeps one tensor that both
    layers' nodes read (review 41, 4: 5,156 parameters in torch, 2,884
    stored). Told apart from a weight tied by design by where its readers
    sit: in a module that differs from its own only by an index
    (``layers.1/linear1`` for ``layers.0.linear1``), reading it the same way;
    a tied embedding's second reader is another module (``lm_head``), and
    ALBERT's shared layer is one module called again. Repeated-value tensors
    are ``merged_constants_note``'s."""
    copies: dict[str, int] = {}
    own = _own_tensors(params, index)
    for p in params:
        if p.uses < 2 or p.stats is None or _one_magnitude(p.stats):
            continue
        found = _parallel_modules(p, index, own)
        if found:
            copies[p.name] = found
    if not copies:
        return None
    extra = _values_more(params, copies)
    return (f"{len(copies)} weight(s) are read by {sum(copies.values())} copies of their module (the same path "
            f"under another index, storing no weight of their own) and counted once, as stored: exporters merge "
            f"equal tensors (torch.onnx does), so where these are an untrained model's deep-copied layers "
            f"(nn.TransformerEncoder) the source held one per copy ({extra:,} values more); one module called "
            f"under several names is one parameter in torch too")


def _values_more(params: list[Param], extra_copies: dict[str, int]) -> int:
    """The values the source held beyond the file: each tensor's size times
    its extra copies."""
    return sum(p.stats.count * extra_copies[p.name] for p in params if p.name in extra_copies and p.stats is not None)


def _parallel_modules(p: Param, index: GraphIndex, own_tensors: dict[tuple, int]) -> int:
    """How many module copies besides its own read ``p``: readers whose
    module, with every index written as ``#``, is its own module's, with an
    op its own module reads it with, and that store no tensor of their own
    (``own_tensors``): a copy reading its own weights beside ``p`` shares
    ``p`` by design (``blocks[i].fc1.weight = blocks[0].fc1.weight``,
    review 43, 2), where an untrained deep copy has every tensor merged."""
    readers = [(node, _module_scope(scope)) for node, _ in uses(index, p.name)
               if (scope := _scope_of(node)) is not None]
    if not readers:
        return 0
    own = _own_module(p, [scope for _, scope in readers])
    ops = {node.op for node, module in readers if _within(own, module)}
    copies = {tuple(module) for node, module in readers
              if not _within(own, module) and node.op in ops and _indexless(module) == _indexless(own)}
    return len([c for c in copies if not own_tensors.get(c)])


def _own_tensors(params: list[Param], index: GraphIndex) -> dict[tuple, int]:
    """Per module (its scope's parts), how many stored weights only it reads."""
    out: dict[tuple, int] = {}
    for p in params:
        if p.stats is None or _one_magnitude(p.stats):
            continue
        modules = {tuple(_module_scope(scope)) for node, _ in uses(index, p.name)
                   if (scope := _scope_of(node)) is not None}
        if len(modules) == 1:
            [module] = modules
            out[module] = out.get(module, 0) + 1
    return out


def _own_module(p: Param, modules: list[list[str]]) -> list[str]:
    """The module ``p`` belongs to: the one its name gives where a reader
    sits in it, else its first reader's (an anonymous ``onnx::MatMul_12``,
    a folded ``val_4``, or a weight its module reads from its parent's scope:
    MultiheadAttention's ``out_proj.weight`` at ``/self_attn/Gemm``)."""
    named = _parts(p.name.rsplit(".", 1)[0]) if "." in p.name and not p.name.startswith("onnx::") else None
    inside = next((module for module in modules if named and _in_module(named, module)), None)
    return inside if inside is not None else modules[0]


def _within(own: list[str], module: list[str]) -> bool:
    return module[:len(own)] == own


def _counted_elsewhere(p: Param, index: GraphIndex, own_tensors: dict[tuple, int]) -> bool:
    """Whether another note already counts ``p``'s extra copies (a merged
    repeated value, a module's copies): the legacy exporter reads them
    through Identity nodes too, and a value is added back once."""
    if p.stats is None:
        return False
    if _one_magnitude(p.stats):
        return _other_modules(p, index) > 0
    return _parallel_modules(p, index, own_tensors) > 0


def _module_scope(scope: str) -> list[str]:
    """A scope's module parts: a scoped node name drops its op
    (``/enc/layers.1/linear1/MatMul`` -> enc, layers, 1, linear1)."""
    parts = _parts(scope)
    return parts[:-1] if "/" in scope else parts


def _indexless(parts: list[str]) -> list[str]:
    return ["#" if part.isdigit() else part for part in parts]


def _other_modules(p: Param, index: GraphIndex) -> int:
    """Consumers of ``p`` whose scope (a scoped node name, ``/encoder/layer.1/LayerNorm/...``)
    lies outside its own module (``_own_module``: the one its name gives,
    ``encoder.layer.0.LayerNorm.weight``, where a reader sits in it; else
    its first reader's). 0 when the nodes carry no scopes. A training
    graph's copy of a node (``/train/fc1/Gemm``) reads its own module's
    tensor and is not counted."""
    modules = [_module_scope(scope) for node, _ in uses(index, p.name) if (scope := _scope_of(node)) is not None]
    if not modules:
        return 0
    own = _own_module(p, modules)
    return sum(1 for module in modules if not _within(own, module) and not _in_module(own, module))


def _scope_of(node) -> str | None:
    """A node's module scope: its name (``/encoder/layer.1/LayerNorm/...``,
    the TorchScript exporter) or the dynamo exporter's name-scope metadata."""
    return node.name if "/" in node.name else torch_module(node)


def _in_module(module: list[str], scope: list[str]) -> bool:
    """Whether a node's scope lies in the module a parameter's name gives.
    Names and scopes differ in wrappers (``m.model.decoder.layers.0.fc1``
    is read at ``/m/decoder/layers.0/fc1/Gemm``): the module's parts absent
    from the scope are dropped, except its own name, and the rest must run
    unbroken in the scope (``layers.1/fc1`` does not hold ``layers.0.fc1``).

    >>> _in_module(_parts("m.model.decoder.layers.0.fc1"), _parts("/m/decoder/layers.0/fc1/Gemm"))
    True
    >>> _in_module(_parts("m.model.decoder.layers.0.fc1"), _parts("/m/decoder/layers.1/fc1/Gemm"))
    False
    >>> _in_module(_parts("m.decoder.final_layer_norm"), _parts("/m/decoder/layers.0/final_layer_norm/LayerNorm"))
    False
    """
    if not module or module[-1] not in scope:
        return False
    kept = [part for i, part in enumerate(module) if i == len(module) - 1 or part in scope]
    width = len(kept)
    return any(scope[i:i + width] == kept for i in range(len(scope) - width + 1))


def _parts(name: str) -> list[str]:
    return [part for part in re.split(r"[./]", name) if part]


def _one_magnitude(stats) -> bool:
    """Every value has the same magnitude (all zeros, all ones, all -c)."""
    if not stats.count or stats.nonfinite:
        return False
    peak = stats.max_abs
    return (abs(stats.sum_abs - peak * stats.count) <= 1e-6 * max(1.0, peak * stats.count)
            and abs(stats.sum_sq - peak * peak * stats.count) <= 1e-6 * max(1.0, peak * peak * stats.count))


# A torch module parameter's name: the last part of a dotted path.
_PARAMETER_NAME = re.compile(r"\.(weight|bias|gamma|beta|running_mean|running_var)$")


def identity_alias_note(params: list[Param], index: GraphIndex) -> str | None:
    """Parameters an exporter gave another's stored values through an
    ``Identity`` node (torch.onnx's legacy exporter deduplicates equal
    initializers: a trained ResNet's downsample BatchNorm bias equals its
    block's last BatchNorm bias, so ``layer2.0.downsample.1.bias`` is
    ``Identity(layer2.0.bn2.bias)``; review 31). A tied weight is exported
    the same way, so they are counted once, as stored, and named here."""
    by_name = {p.name: p for p in params}
    own = _own_tensors(params, index)  # as parallel_copies_note judges a copy: one verdict for both notes
    aliases = []
    for node in index.nodes:
        if node.op != "Identity" or len(node.inputs) != 1 or len(node.outputs) != 1:
            continue
        source, alias = node.inputs[0], node.outputs[0]
        if source in by_name and alias not in by_name and _PARAMETER_NAME.search(alias) \
                and not _counted_elsewhere(by_name[source], index, own):
            aliases.append((alias, by_name[source]))
    if not aliases:
        return None
    values = sum(p.size for _, p in aliases)
    shown = ", ".join(f"{alias} = {p.name}" for alias, p in aliases[:3]) + (
        f" and {len(aliases) - 3} more" if len(aliases) > 3 else "")
    return (f"{len(aliases)} parameter(s) read another's stored values through an Identity node ({shown}): "
            f"exporters store equal tensors once (torch.onnx deduplicates them; a trained ResNet's downsample "
            f"BatchNorm bias equals its block's last one) and tied weights alike, so they are counted once, as "
            f"stored: the source model may hold {values:,} values more")
