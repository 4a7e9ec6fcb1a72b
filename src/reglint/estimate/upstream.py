"""The layers upstream of a layer: what its estimate passed through, for
the words RL010 adds where it took a layer's effect on the scale as
unknown (code reglint does not run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reglint.model import Layer
from reglint.model.nesting import NestedGraph

if TYPE_CHECKING:
    from reglint.engine.calls import CallGraph


# Layers whose effect on the scale reglint cannot know without running their code: taken as identity.
UNKNOWN_SCALE = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer"})


def upstream(layer: Layer, graph: NestedGraph) -> list[Layer]:
    """Every layer on the paths into ``layer``, by path."""
    seen: dict[str, Layer] = {}
    todo = list(graph.feeding(layer))
    while todo:
        current = todo.pop()
        if current.path not in seen:
            seen[current.path] = current
            todo.extend(graph.feeding(current))
    return [seen[path] for path in sorted(seen)]


def upstream_calls(keys: list[str], calls: CallGraph, producers: dict[str, list[str]]) -> list[Layer]:
    """Every layer whose call feeds the call-graph nodes ``keys``, by path
    (``producers``: ``calls.producers()``): one call of a shared layer reads
    what that call was fed, not what its other calls were (review 68, 7: a
    Lambda feeding a shared Dense's other call was named)."""
    seen: set[str] = set()
    found: dict[str, Layer] = {}
    todo = [source for key in keys for source in producers.get(key, [])]
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        origin = calls.origin.get(key)
        if origin is not None:
            found.setdefault(origin.path, origin)
        todo.extend(producers.get(key, []))
    return [found[path] for path in sorted(found)]


def unknown_scale(layer: Layer) -> bool:
    """Whether reglint cannot know ``layer``'s effect on the scale without
    running its code (``UNKNOWN_SCALE``, a custom class): taken to hand its
    input's moment on (review 65, 7: a Lambda doubling its input left the
    penalty at 0.29x Keras' without a word)."""
    return layer.class_name in UNKNOWN_SCALE or layer.custom
