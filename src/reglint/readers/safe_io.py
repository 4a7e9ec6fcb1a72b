"""Bounded reading of untrusted JSON and HDF5 content.

- JSON: size-capped before parsing; nesting-capped after (Python's parser
  raises RecursionError on absurd depth, turned into a one-line error).
- HDF5: objects are fetched with ``getlink`` checks so external links
  (a path into another file) and soft links are never followed, and
  datasets with an external storage layout or a virtual layout (data in
  other files) are refused.
"""

from __future__ import annotations

import json
from typing import Any

from reglint.errors import ModelReadError, UnsafeInputError


def load_json(data: bytes | str, *, what: str, max_bytes: int, max_depth: int) -> Any:
    if len(data) > max_bytes:
        mib = 1024 * 1024
        raise UnsafeInputError(f"{what} is {len(data) // mib} MiB, over the {max_bytes // mib} MiB limit")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelReadError(f"{what} is not UTF-8 text") from None
    try:
        value = json.loads(data)
    except RecursionError:
        raise UnsafeInputError(f"{what} is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ModelReadError(f"{what} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError as exc:  # e.g. an integer past Python's 4300-digit conversion limit
        raise ModelReadError(f"{what} is not readable JSON ({str(exc).split(':')[0]})") from None
    if _depth(value) > max_depth:
        raise UnsafeInputError(f"{what} is nested more than {max_depth} levels deep")
    return value


def _depth(value: Any) -> int:
    """Maximum nesting depth, iteratively (no recursion on hostile input)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def attr_text(attrs, key: str) -> str | None:
    """An HDF5 attribute as text: bytes on h5py < 3, str after; None if absent."""
    if key not in attrs:
        return None
    try:
        value = attrs[key]
    except Exception as exc:  # h5py raises OSError/KeyError/TypeError variants
        raise ModelReadError(f"unreadable HDF5 attribute {key!r}: {type(exc).__name__}") from None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    if hasattr(value, "tolist"):
        value = value.tolist()
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        if isinstance(value, str):
            return value
    return str(value)


def attr_strings(attrs, key: str) -> list[str]:
    """An HDF5 string-array attribute (``weight_names``, ``layer_names``)."""
    if key not in attrs:
        return []
    try:
        value = attrs[key]
    except Exception:
        return []
    items = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(items, (bytes, str)):
        items = [items]
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, bytes):
            out.append(item.decode("utf-8", errors="replace"))
        elif isinstance(item, str):
            out.append(item)
    return out


def h5_get(group, name: str):
    """``group[name]`` that refuses external and soft links and virtual or
    external-storage datasets; None when absent."""
    import h5py

    node = group
    for part in [p for p in name.split("/") if p]:
        try:
            link = node.get(part, getlink=True)
        except Exception:
            return None
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            raise UnsafeInputError(f"HDF5 external link at {name!r}: refusing to follow it out of the file")
        if isinstance(link, h5py.SoftLink):
            raise UnsafeInputError(f"HDF5 soft link at {name!r}: refusing to follow it")
        try:
            node = node[part]
        except Exception as exc:
            raise ModelReadError(f"unreadable HDF5 object {name!r}: {type(exc).__name__}") from None
    if isinstance(node, h5py.Dataset):
        check_dataset(node, name)
    return node


def check_dataset(ds, name: str) -> None:
    try:
        if ds.is_virtual:
            raise UnsafeInputError(f"HDF5 virtual dataset {name!r} points into other files: refused")
        if ds.external:
            raise UnsafeInputError(f"HDF5 dataset {name!r} stores its data in an external file: refused")
    except UnsafeInputError:
        raise
    except Exception:
        pass


def h5_children(group) -> list[tuple[str, Any]]:
    """(name, object) of a group's hard-linked children, links refused."""
    import h5py

    out = []
    try:
        names = list(group.keys())
    except Exception as exc:
        raise ModelReadError(f"unreadable HDF5 group: {type(exc).__name__}") from None
    for name in names:
        link = group.get(name, getlink=True)
        if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
            raise UnsafeInputError(f"HDF5 link at {name!r}: refusing to follow it")
        try:
            obj = group[name]
        except Exception as exc:
            raise ModelReadError(f"unreadable HDF5 object {name!r}: {type(exc).__name__}") from None
        if isinstance(obj, h5py.Dataset):
            check_dataset(obj, name)
        out.append((name, obj))
    return out
