"""A content-addressed cache of lint results in ``.reglint_cache/``.

The key is the sha256 of the model's bytes (every file of a SavedModel
folder), the path it was linted under (per-file ignores depend on it), the
reglint version, a fingerprint of reglint's own code and a hash of the
settings. Content, not mtime: CI checkouts reset modification times, and a
model file is usually replaced wholesale.

Entries are pickled ``FileReport``s. Unpickling runs code, and a repository
could ship a doctored ``.reglint_cache/``, so every entry is signed with
HMAC-SHA256 under a key kept in the user's cache folder (outside any
repository); an entry with a bad signature is ignored, never loaded.

The folder gets a ``CACHEDIR.TAG`` (backup tools skip it) and a
``.gitignore`` holding ``*`` (Git never sees it), as ruff does.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import hmac
import json
import os
import pickle
import secrets
import shutil
import tempfile
from pathlib import Path

from reglint import __version__
from reglint.engine.report import FileReport
from reglint.engine.settings import Settings

CACHE_DIR_NAME = ".reglint_cache"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by reglint.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n"
)
CHUNK = 1 << 20
SIGNATURE_BYTES = 32


def cache_dir(settings: Settings) -> Path:
    """``$REGLINT_CACHE_DIR``, else ``.reglint_cache`` in the project root."""
    env = os.environ.get("REGLINT_CACHE_DIR")
    if env:
        return Path(env)
    return Path(settings.root or os.getcwd()) / CACHE_DIR_NAME


def clear(settings: Settings) -> bool:
    """Remove the cache folder (``reglint clean``); False when there was none."""
    folder = cache_dir(settings)
    if not (folder / "CACHEDIR.TAG").is_file():
        return False  # never delete a folder we did not make
    shutil.rmtree(folder, ignore_errors=True)
    return True


class Cache:
    """Lint results by content hash, for one settings hash."""

    def __init__(self, folder: Path, signing_key: bytes, settings_hash: str):
        self.folder = folder
        self.entries = folder / f"v{__version__}"
        self.signing_key = signing_key
        self.settings_hash = settings_hash

    @classmethod
    def open(cls, settings: Settings) -> Cache | None:
        """The cache for ``settings``, or None when it cannot be used
        (read-only checkout, no home folder for the signing key)."""
        folder = cache_dir(settings)
        try:
            _prepare(folder)
            key = _signing_key()
        except OSError:
            return None
        return cls(folder, key, settings_hash(settings))

    def key(self, path: str) -> str | None:
        """The entry key for the model at ``path``; None if unreadable or
        neither a folder nor a regular file (a FIFO would block the hash
        before the reader refuses it; a device would be read to its end)."""
        model = Path(path)
        if not (model.is_dir() or model.is_file()):
            return None
        try:
            content = content_hash(model)
        except OSError:
            return None
        identity = "\0".join((content, os.path.normpath(path), self.settings_hash))
        return hashlib.sha256(identity.encode("utf-8")).hexdigest()

    def get(self, key: str) -> FileReport | None:
        try:
            blob = self._entry(key).read_bytes()
        except OSError:
            return None
        signature, payload = blob[:SIGNATURE_BYTES], blob[SIGNATURE_BYTES:]
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None  # not written by this user's reglint: never unpickle it
        try:
            report, read_with = pickle.loads(payload)
        except Exception:  # a stale class layout: treat as a miss
            return None
        if not isinstance(report, FileReport) or not isinstance(read_with, dict):
            return None
        if any(_hash_or_none(Path(p)) != digest for p, digest in read_with.items()):
            return None  # a file read beside the model changed, appeared or went (review 45, 1-2)
        report.cached = True
        return report

    def put(self, key: str, report: FileReport) -> None:
        """Store ``report`` atomically (parallel runs may race on one key),
        with the hash of every file its read opened beside the model (None:
        it was missing)."""
        read_with = {p: _hash_or_none(Path(p)) for p in report.read_with}
        payload = pickle.dumps((dataclasses.replace(report, cached=False), read_with),
                               protocol=pickle.HIGHEST_PROTOCOL)
        target = self._entry(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(self._sign(payload) + payload)
            os.replace(tmp, target)
        except OSError:
            pass  # a cache that cannot be written only costs time

    def _entry(self, key: str) -> Path:
        return self.entries / key[:2] / f"{key}.pickle"

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self.signing_key, payload, hashlib.sha256).digest()


# ---------------------------------------------------------------------------
# hashing


def content_hash(path: Path) -> str:
    """sha256 of a file's bytes; for a folder, of its files' names and bytes;
    for an accelerate folder's ``model_N.safetensors``, of the files read
    with it too (its optimizer and scheduler, what the folder holds)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
            digest.update(file.relative_to(path).as_posix().encode("utf-8") + b"\0")
            _feed(digest, file)
    else:
        _feed(digest, path)
        for file in _read_with(path):
            digest.update(file.name.encode("utf-8") + b"\0")
            _feed(digest, file)
    return digest.hexdigest()


def _hash_or_none(path: Path) -> str | None:
    """sha256 of a file's bytes; None when it is missing or unreadable."""
    try:
        if not path.is_file():
            return None
        digest = hashlib.sha256()
        _feed(digest, path)
        return digest.hexdigest()
    except OSError:
        return None


def _read_with(path: Path) -> list[Path]:
    """The sibling files a model file's report depends on: accelerate's
    numbered optimizers, schedulers and models beside ``model_N``."""
    from reglint.readers.sniff import ACCELERATE_FILES, ACCELERATE_MODEL, accelerate_model_index

    if accelerate_model_index(path) is None:
        return []
    return sorted(p for p in path.parent.iterdir() if p != path and p.is_file() and not p.is_symlink()
                  and (ACCELERATE_MODEL.fullmatch(p.name) or ACCELERATE_FILES.fullmatch(p.name)))


def _feed(digest, path: Path) -> None:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)


def settings_hash(settings: Settings) -> str:
    """Everything that changes a file's findings: the settings (less run
    counters), reglint's version and code, and today's date when an
    override can expire."""
    data = dataclasses.asdict(settings)
    for override in data.get("overrides", []):
        override.pop("used", None)
    data["__version__"] = __version__
    data["__code__"] = code_fingerprint()
    if any(o.expires for o in settings.overrides):
        data["__today__"] = _dt.date.today().isoformat()
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_CODE_FINGERPRINT: str | None = None


def code_fingerprint() -> str:
    """Names, sizes and mtimes of reglint's modules (rules included): an
    edited rule in a development checkout must not be served stale results
    under an unchanged version number."""
    global _CODE_FINGERPRINT
    if _CODE_FINGERPRINT is None:
        import reglint
        import reglint.rules

        digest = hashlib.sha256()
        for package in (reglint, reglint.rules):
            for folder in package.__path__:
                for file in sorted(Path(folder).rglob("*.py")):
                    stat = file.stat()
                    digest.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        _CODE_FINGERPRINT = digest.hexdigest()
    return _CODE_FINGERPRINT


# ---------------------------------------------------------------------------
# folders and the signing key


def _prepare(folder: Path) -> None:
    """Create the cache folder with its tag and its ``*`` .gitignore."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("CACHEDIR.TAG", CACHEDIR_TAG), (".gitignore", "# Automatically created by reglint.\n*\n")):
        marker = folder / name
        if not marker.exists():
            marker.write_text(text, encoding="utf-8")


def _signing_key() -> bytes:
    """A per-user secret outside every repository, made on first use."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reglint"
    key_file = home / "cache-signing.key"
    try:
        key = key_file.read_bytes()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".key-")
    with os.fdopen(fd, "wb") as handle:  # mkstemp makes it 0600
        handle.write(key)
    try:
        os.link(tmp, key_file)  # first writer wins when two runs race
    except FileExistsError:
        pass
    except OSError:  # no hard links on this filesystem
        os.replace(tmp, key_file)
    if os.path.exists(tmp):
        os.unlink(tmp)
    return key_file.read_bytes()
