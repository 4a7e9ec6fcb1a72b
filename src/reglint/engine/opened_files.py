"""Which files a read opened, so the cache can depend on them too.

A model file is often read with files beside it: an ONNX model's external
data, a TensorFlow checkpoint's ``.data-*`` shards, onnxruntime training
artifacts, a GGUF model's split parts, the weights an LFS pointer stands for.
The cache's key is the linted file's bytes; an entry must also go stale when
one of those changes (review 45, 1-2). Listing them reader by reader would
miss the next format, so the reads are watched instead: Python raises the
``open`` audit event (PEP 578) for every ``open()``, ``io.open`` and
``os.open``, with the path, before the file is opened (a file that is
missing is recorded too: its appearing makes the entry stale). The hook is
installed once per process and costs a context-variable lookup per open
while nothing collects.

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> with open(os.path.join(folder, "weights.bin"), "wb") as f:
...     _ = f.write(b"1234")
>>> with collect() as opened:
...     with open(os.path.join(folder, "weights.bin"), "rb") as f:
...         _ = f.read()
>>> [os.path.basename(p) for p in opened]
['weights.bin']
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar

_opened: ContextVar[set[str] | None] = ContextVar("reglint_opened_files", default=None)
_installed = False


def _hook(event: str, args: tuple) -> None:
    if event != "open":
        return
    bucket = _opened.get()
    if bucket is None or not args:
        return
    path = args[0]
    if isinstance(path, (str, bytes, os.PathLike)):
        with suppress(TypeError, ValueError):
            bucket.add(os.path.abspath(os.fsdecode(path)))


@contextmanager
def collect() -> Iterator[set[str]]:
    """The absolute paths opened in this context (this thread's reads)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)  # once: audit hooks cannot be removed
        _installed = True
    bucket: set[str] = set()
    token = _opened.set(bucket)
    try:
        yield bucket
    finally:
        _opened.reset(token)


def beside(model: str, opened: set[str]) -> list[str]:
    """The opened files a model's report depends on besides the model
    itself: those in the model's folder tree (a folder model's own files
    are hashed with it). Python's own modules, loaded lazily while a reader
    runs, and anything else outside are left out."""
    model_path = os.path.abspath(model)
    if os.path.isdir(model_path):
        return []
    root = os.path.dirname(model_path) + os.sep
    return sorted(p for p in opened if p != model_path and p.startswith(root)
                  and not p.endswith((".py", ".pyc", ".so")) and f"{os.sep}__pycache__{os.sep}" not in p)
