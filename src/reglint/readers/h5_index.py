"""Every object of an HDF5 file, found in one pass of the C library.

Walking a ``model.weights.h5`` through h5py's high-level objects costs a
Python object, a link lookup and a type check per child: ~0.25 s for the
~700 groups and datasets of ResNet50, most of a pre-commit run. ``H5Index``
asks the library to visit every link once (``H5Lvisit``), keeps each name's
kind, and opens a dataset only when a reader asks for it.

Links other than hard links are refused wherever they are in the file: a
Keras weights file has none, and a soft or external link is how a file would
point a reader at something else (another file, or an object twice)::

    >>> import h5py, numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.h5")
    >>> with h5py.File(path, "w") as f:
    ...     f["layers/dense/vars/0"] = np.ones((3, 2), "float32")
    >>> with h5py.File(path, "r") as f:
    ...     index = H5Index(f)
    ...     index.children("layers/dense/vars"), index.tensor("layers/dense/vars/0").shape
    ([('0', 'dataset')], (3, 2))
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from reglint.errors import ModelReadError, UnsafeInputError

GROUP = "group"
DATASET = "dataset"
OTHER = "other"  # a named datatype: neither a layer's group nor a weight

# A weights file holds a handful of objects per variable; a file naming more
# than this is built to exhaust the reader, not saved by Keras.
MAX_LINKS = 2_000_000


class H5Index:
    """Names, kinds and children of every object in ``h5file`` (an open
    ``h5py.File``), paths relative to the root without a leading slash."""

    def __init__(self, h5file, max_links: int = MAX_LINKS):
        import h5py

        self.file = h5file
        self._kinds: dict[str, str] = {"": GROUP}
        self._children: dict[str, list[tuple[str, str]]] = {"": []}
        refused: list[str] = []
        get_info, hard = h5py.h5o.get_info, h5py.h5l.TYPE_HARD
        kinds = {h5py.h5o.TYPE_GROUP: GROUP, h5py.h5o.TYPE_DATASET: DATASET}

        def visit(raw: bytes, info) -> Any:
            name = raw.decode("utf-8", "surrogateescape")
            if info.type != hard:
                refused.append(f"HDF5 link at {name!r}: refusing to follow it")
                return True  # stops the visit
            if len(self._kinds) > max_links:
                refused.append(f"HDF5 file with over {max_links:,} objects: refused")
                return True
            kind = kinds.get(get_info(h5file.id, raw).type, OTHER)
            self._kinds[name] = kind
            parent, _, base = name.rpartition("/")
            self._children.setdefault(parent, []).append((base, kind))
            if kind == GROUP:
                self._children.setdefault(name, [])
            return None

        try:
            h5file.id.links.visit(visit, info=True)
        except Exception as exc:
            raise ModelReadError(f"unreadable HDF5 structure: {type(exc).__name__}") from None
        if refused:
            raise UnsafeInputError(refused[0])

    def kind(self, path: str) -> str | None:
        """``"group"``, ``"dataset"``, ``"other"``, or None when absent."""
        return self._kinds.get(path.strip("/"))

    def children(self, path: str) -> list[tuple[str, str]]:
        """(name, kind) of a group's children, in the file's name order."""
        return list(self._children.get(path.strip("/"), []))

    def tensor(self, path: str) -> H5Tensor:
        """The dataset at ``path``, opened; external and virtual storage refused."""
        path = path.strip("/")
        if self._kinds.get(path) != DATASET:
            raise ModelReadError(f"no HDF5 dataset at {path!r}")
        return H5Tensor(self.file, path)


class H5Tensor:
    """An open dataset with what the readers ask of an ``h5py.Dataset``:
    ``name``, ``shape``, ``dtype``, ``id``, ``attrs`` and slicing, the first
    four from C calls; the high-level object is made only when asked for
    (attributes, or slices when the direct read does not apply)."""

    def __init__(self, h5file, path: str):
        import h5py

        try:
            self.file_id = h5file.id
            self.id = h5py.h5d.open(h5file.id, path.encode("utf-8", "surrogateescape"))
            self.shape = self.id.shape
            self.hdf5_type = self.id.get_type()  # kept: the direct read compares it too
            self.dtype = self.hdf5_type.dtype
            # Kept: the direct read asks it for the layout and filters too.
            self.create_plist = plist = self.id.get_create_plist()
            virtual = plist.get_layout() == h5py.h5d.VIRTUAL
            external = plist.get_external_count() > 0
        except Exception as exc:
            raise ModelReadError(f"unreadable HDF5 object {path!r}: {type(exc).__name__}") from None
        if virtual:
            raise UnsafeInputError(f"HDF5 virtual dataset {path!r} points into other files: refused")
        if external:
            raise UnsafeInputError(f"HDF5 dataset {path!r} stores its data in an external file: refused")
        self.name = "/" + path

    @cached_property
    def _dataset(self):
        import h5py

        return h5py.Dataset(self.id)

    @property
    def attrs(self):
        return self._dataset.attrs

    def __getitem__(self, key):
        return self._dataset[key]
