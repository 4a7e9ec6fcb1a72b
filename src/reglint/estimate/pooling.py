"""Average poolings: how many input positions each output averages, which
divides the part of the input's moment that differs from one position to
the next (``activity``: RL010's estimates after a pooling)."""

from __future__ import annotations

import math

from reglint.model import Layer

# Averages over positions: each output reads ``pooled_positions`` of its input's.
AVERAGE_POOLING = {"GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalAvgPool1D",
                   "GlobalAvgPool2D", "GlobalAvgPool3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
                   "AvgPool1D", "AvgPool2D", "AvgPool3D"}


def pooled_positions(layer: Layer) -> float | None:
    """The input positions each output of an average pooling reads: every
    one of a global pooling's (its input's spatial or time dimensions, as
    its ``data_format`` lays them out), a local pooling's window
    (``pool_size``); None for another layer or positions the file leaves
    open.

    >>> pooled_positions(Layer("p", "p", "GlobalAveragePooling2D", input_shape=[None, 7, 7, 64]))
    49
    >>> pooled_positions(Layer("p", "p", "AveragePooling2D", config={"pool_size": [2, 3]}))
    6
    >>> pooled_positions(Layer("p", "p", "GlobalAveragePooling1D", input_shape=[None, None, 8])) is None
    True
    """
    name = layer.class_name
    if name not in AVERAGE_POOLING:
        return None
    if not name.startswith("Global"):
        return _window_positions(layer, int(name[-2]))
    shape = layer.input_shape
    if not shape or len(shape) < 3:
        return None
    spatial = shape[2:] if layer.config.get("data_format") == "channels_first" else shape[1:-1]
    return math.prod(spatial) if all(isinstance(d, int) and d > 0 for d in spatial) else None


def _window_positions(layer: Layer, rank: int) -> float | None:
    """A local average pooling's positions per output: its window, or with
    ``padding="same"`` on a length the file records, the harmonic mean of
    the positions each output's window holds (an edge window averages only
    the valid ones: review 68, 8, 0.77x Keras' penalty with a window of 8
    over 10 steps counted whole).

    >>> round(_window_positions(Layer("p", "p", "AveragePooling1D", config={"pool_size": [3], "padding": "same",
    ...     "strides": [1]}, input_shape=[None, 4, 2]), 1), 6)  # windows of 2, 3, 3, 2
    2.4
    """
    def listed(key: str, default) -> list:
        value = layer.config.get(key, default)
        value = default if value is None else value
        return list(value) if isinstance(value, (list, tuple)) else [value] * rank
    sizes = listed("pool_size", layer.config.get("pool_length", 2))
    if len(sizes) != rank or not all(isinstance(d, int) and d > 0 for d in sizes):
        return None
    strides = listed("strides", sizes)
    shape = layer.input_shape
    spatial = (shape[2:] if layer.config.get("data_format") == "channels_first" else shape[1:-1]) if shape else []
    if layer.config.get("padding") != "same" or len(spatial) != rank or len(strides) != rank:
        return math.prod(sizes)
    total = 1.0
    for size, stride, length in zip(sizes, strides, spatial, strict=True):
        if not (isinstance(length, int) and length > 0 and isinstance(stride, int) and stride > 0):
            total *= size
            continue
        outputs = -(-length // stride)
        before = max((outputs - 1) * stride + size - length, 0) // 2
        counts = [min(i * stride - before + size, length) - max(i * stride - before, 0) for i in range(outputs)]
        total *= len(counts) / sum(1.0 / max(c, 1) for c in counts)
    return total


def open_pooling(layer: Layer) -> bool:
    """An average pooling whose positions the file leaves open: taken as
    keeping its input's moment, the bound for positions that move together."""
    return layer.class_name in AVERAGE_POOLING and pooled_positions(layer) is None
