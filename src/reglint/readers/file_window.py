"""A byte range of a file, read as a file of its own.

Two readers need one: a ``.keras`` archive's stored ``model.weights.h5``,
which h5py opens in place (``keras_zip``), and a ``torch.save`` archive
inside a ``torch.distributed.checkpoint`` ``.distcp`` file, which
``zipfile`` opens in place (``torch_zip``). Nothing is copied: every read is
one ``pread`` at the window's offset.
"""

from __future__ import annotations

import io
import os

from reglint.errors import ModelReadError


class FileWindow(io.RawIOBase):
    """A read-only, seekable view of ``[offset, offset+size)`` of a file; a
    range past the file's end is refused."""

    def __init__(self, path: str | os.PathLike, offset: int, size: int):
        self._file = open(path, "rb")  # noqa: SIM115 -- the window owns the handle; close() closes it
        end = os.fstat(self._file.fileno()).st_size
        if offset < 0 or size < 0 or offset + size > end:
            self._file.close()
            raise ModelReadError(f"an item at bytes {offset}..{offset + size} lies past the file's end ({end})")
        self._offset, self._size, self._pos = offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buffer) -> int:
        remaining = self._size - self._pos
        if remaining <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        n = min(len(view), remaining)
        # h5py reads every piece of HDF5 metadata through here: one pread
        # straight into its buffer, rather than a seek, a read and a copy.
        got = _pread_into(self._file, view[:n], self._offset + self._pos)
        self._pos += got
        return got

    def raw_range(self) -> tuple[int, int, int]:
        """(descriptor of the open file, offset of the window, its size)."""
        return self._file.fileno(), self._offset, self._size

    def close(self) -> None:
        self._file.close()
        super().close()


def _pread_into(file, view: memoryview, offset: int) -> int:
    if hasattr(os, "preadv"):
        return os.preadv(file.fileno(), [view], offset)
    file.seek(offset)  # no preadv (Windows): the buffered file does it
    return file.readinto(view)
