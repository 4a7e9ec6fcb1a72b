"""Lint many files: from the cache where possible, the rest in this process
or in a pool of worker processes (``--jobs N``), with a progress bar on an
interactive stderr.

Workers are started with ``spawn`` on every platform, so nothing depends on
fork-inherited state; they receive the settings once (pool initializer) and
send back pickled ``FileReport``s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from reglint.engine.report import FileReport
from reglint.engine.runner import lint_file
from reglint.engine.settings import Settings

PROGRESS_MIN_FILES = 5  # below this a bar only flickers


def lint_many(files: list[str], settings: Settings, *, jobs: int = 1, use_cache: bool = True,
              progress: bool = True) -> list[FileReport]:
    """One report per file, in the order of ``files``."""
    cache = None
    if use_cache and files:
        from reglint.engine.cache import Cache  # hashlib, pickle, tempfile...: only when caching

        cache = Cache.open(settings)
    reports: list[FileReport | None] = [None] * len(files)
    todo: list[tuple[int, str, str | None]] = []
    for i, path in enumerate(files):
        key = cache.key(path) if cache else None
        hit = cache.get(key) if cache and key else None
        if hit is not None:
            reports[i] = hit
        else:
            todo.append((i, path, key))
    keys = {i: key for i, _, key in todo}
    with _progress_bar(len(files), enabled=progress) as advance:
        advance(len(files) - len(todo))
        for i, report, cacheable in _lint(todo, settings, jobs):
            reports[i] = report
            key = keys[i]
            if cache and key and cacheable:
                cache.put(key, report)
            advance(1)
    return [r for r in reports if r is not None]


# ---------------------------------------------------------------------------
# sequential and parallel


def _lint(todo: list[tuple[int, str, str | None]], settings: Settings,
          jobs: int) -> Iterator[tuple[int, FileReport, bool]]:
    """(index, report, whether the report may be cached). A report read
    depends on the content, the files read beside it (``report.read_with``)
    and the settings. A failed read is never cached (review 45, 2): its
    cause may lie outside the bytes hashed (a missing or half-fetched
    sibling checked by its size, an LFS pointer, the worker process dying or
    memory running out), and a failed run writes nothing."""
    if jobs <= 1 or len(todo) <= 1:
        for i, path, _ in todo:
            report = lint_file(path, settings)
            yield i, report, cacheable(report)
        return
    yield from _lint_in_pool(todo, settings, min(jobs, len(todo)))


def _lint_in_pool(todo, settings: Settings, workers: int) -> Iterator[tuple[int, FileReport, bool]]:
    # Imported here: a run over one file (every pre-commit call) never needs a pool.
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(settings,)) as pool:
        pending = {pool.submit(_lint_in_worker, path): (i, path) for i, path, _ in todo}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                i, path = pending.pop(future)
                try:
                    report = future.result()
                except BrokenProcessPool:
                    # The worker died (killed, out of memory): report the file,
                    # like any unreadable one, instead of losing the run.
                    yield i, FileReport(path=path, error="the process linting this file died "
                                                         "(out of memory?); try --jobs 1"), False
                    continue
                yield i, report, cacheable(report)


def cacheable(report: FileReport) -> bool:
    return report.error is None and not report.transient


_WORKER_SETTINGS: Settings | None = None


def _init_worker(settings: Settings) -> None:
    global _WORKER_SETTINGS
    _WORKER_SETTINGS = settings


def _lint_in_worker(path: str) -> FileReport:
    assert _WORKER_SETTINGS is not None  # _init_worker set it when the pool started this process
    return lint_file(path, _WORKER_SETTINGS)


# ---------------------------------------------------------------------------
# progress


@contextmanager
def _progress_bar(total: int, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A transient rich bar on stderr, only for an interactive terminal and
    more than a handful of files; otherwise a no-op (CI logs stay clean)."""
    if not enabled or total < PROGRESS_MIN_FILES or os.environ.get("TERM") == "dumb":
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda n: None
        return
    with Progress(TextColumn("linting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("lint", total=total)
        yield lambda n: bar.advance(task, n)
