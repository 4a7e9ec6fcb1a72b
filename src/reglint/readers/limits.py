"""Bounds on what a reader will read: a model file is untrusted input."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class ReadOptions:
    # Read weight values to compute statistics (sum of squares, non-finite
    # entries). Streamed in chunks of at most ``chunk_bytes``.
    weight_stats: bool = True
    chunk_bytes: int = 16 * MiB
    # A JSON document larger than this (config.json, model_config) is refused.
    max_json_bytes: int = 64 * MiB
    # Nesting deeper than this in a JSON config is refused.
    max_json_depth: int = 200
    # A zip member claiming to inflate to more than this is refused, and so is
    # a TFLite file larger than this (it is memory-mapped, never read whole).
    max_member_bytes: int = 8 * 1024 * MiB
    # Members whose compression ratio exceeds this are a zip bomb.
    max_compression_ratio: int = 1000
    # Layers beyond this count are refused (a hostile config could list millions).
    max_layers: int = 100_000
    # A PyTorch checkpoint's pickle (data.pkl) larger than this is refused: the
    # interpreter can make a Python object per byte (~60 bytes each), and a
    # real one holds ~150 bytes per tensor (16 MiB: ~100,000 tensors).
    max_pickle_bytes: int = 16 * MiB
    # A torch.distributed.checkpoint's .metadata (a pickle too) grows with the
    # ranks: one record per chunk, ~100 bytes each. Measured on a synthetic
    # one (300 weight matrices with two Adam moments over 64 ranks): 8 MiB,
    # read in 3.1 s with 190 MB of memory; 64 MiB holds ~500 ranks of that.
    max_dcp_metadata_bytes: int = 64 * MiB
    # A GGUF file's header (metadata and tensor table) larger than this is
    # refused: a 256k-token vocabulary with its merges is ~15 MiB.
    max_header_bytes: int = 64 * MiB
