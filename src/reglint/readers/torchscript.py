"""A TorchScript archive's parameters, read without running any of it.

``torch.jit.save`` pickles the module tree into ``data.pkl``: each module is
an object of its compiled class, ``__torch__.<module path>.<Class>`` (with
``___torch_mangle_N`` in the path for a second compiled variant), whose
BUILD state is a dict of attributes: tensors, submodules, settings.
``torch_pickle`` reads them as ``Opaque`` records (nothing imported or
called); tensors come from the archive's storages as for ``torch.save``.

Which tensor attributes are parameters is not in ``data.pkl``: each class's
compiled source (``code/__torch__/<module path>.py``) declares them in plain
text, ``__parameters__ = ["weight", "bias", ]`` and ``__buffers__ = [...]``.
Those two lines are matched with bounded regular expressions; the source is
never executed or parsed as Python.

The tree is walked from the root record, depth first, a module's own
tensors before its children's, each record once: names and order are
``named_parameters()``'s (``conv1.weight``). Declared parameters and buffers
go on to ``torch_checkpoint.build_layers`` as a state dict's entries would
(running statistics non-trainable, ``num_batches_tracked`` dropped); other
tensor attributes are not parameters. A class whose source is missing, or
declares nothing readable, has all its tensors passed on by the state-dict
conventions, with a note.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from reglint.errors import ModelReadError, UnsafeInputError, one_line
from reglint.model import Model
from reglint.readers import torch_ao
from reglint.readers.limits import ReadOptions
from reglint.readers.named_tensor import NamedTensor
from reglint.readers.torch_checkpoint import describe, stats_reader
from reglint.readers.torch_pickle import TORCHSCRIPT_ROOT, Opaque, QTensorRef, TensorRef

NOTE = "TorchScript archive: parameters read from data.pkl as inert records; its code was not run"
# One compiled class in a code member: its header, then its body up to the next class.
CLASS_HEADER = re.compile(r"^class ([A-Za-z_][A-Za-z0-9_]{0,255})\(", re.MULTILINE)
# The declarations torch writes, one line each, two-space indented: bounded
# classes of characters, so matching is linear in the member's size.
DECLARATION = re.compile(r"^  (__parameters__|__buffers__) = \[([^\]\n]{0,1000000})\]", re.MULTILINE)
NAME = re.compile(r'"([^"\\\n]{1,256})"')
# Modules walked at most (a 70B model has a few thousand).
MAX_MODULES = 1_000_000
MAX_DEPTH = 512


class Declared:
    """The parameters and buffers each compiled class declares, by
    ``module.Class``; None for a class whose source says nothing readable."""

    def __init__(self, archive):
        self.archive = archive
        self.classes: dict[str, dict[str, set[str]] | None] = {}
        self.read: set[str] = set()
        self.undeclared: set[str] = set()

    def of(self, record: Opaque) -> dict[str, set[str]] | None:
        if record.module not in self.read:
            self.read.add(record.module)
            text = self.archive.code_text(record.module)
            if text is not None:
                for name, found in parse_code(text).items():
                    self.classes[f"{record.module}.{name}"] = found
        found = self.classes.get(f"{record.module}.{record.qualname}")
        if found is None:
            self.undeclared.add(f"{record.module}.{record.qualname}")
        return found


def parse_code(text: str) -> dict[str, dict[str, set[str]] | None]:
    """Class name -> {"__parameters__": names, "__buffers__": names} for each
    class in one code member; None for a class without ``__parameters__``.

    >>> found = parse_code('class Linear(Module):\\n  __parameters__ = ["weight", "bias", ]\\n  __buffers__ = []\\n')
    >>> sorted(found["Linear"]["__parameters__"]), found["Linear"]["__buffers__"]
    (['bias', 'weight'], set())
    """
    headers = list(CLASS_HEADER.finditer(text))
    out: dict[str, dict[str, set[str]] | None] = {}
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        found: dict[str, set[str]] = {}
        for match in DECLARATION.finditer(text, header.end(), end):
            found.setdefault(match.group(1), set()).update(NAME.findall(match.group(2)))
        out[header.group(1)] = ({"__parameters__": found["__parameters__"],
                                 "__buffers__": found.get("__buffers__", set())}
                                if "__parameters__" in found else None)
    return out


def is_script_module(obj: Any) -> bool:
    return isinstance(obj, Opaque) and obj.module.split(".")[0] == TORCHSCRIPT_ROOT


def script_tensors(root: Opaque, archive, notes: list[str]) -> list[NamedTensor]:
    """The parameters and buffers of a module tree, named and ordered as
    ``state_dict()`` / ``named_parameters()`` name them."""
    declared = Declared(archive)
    out: list[NamedTensor] = []
    stack: list[tuple[str, Opaque, int]] = [("", root, 0)]
    seen: set[int] = set()
    quantized: list[TensorRef] = []
    while stack:
        prefix, record, depth = stack.pop()
        if id(record) in seen:  # a shared submodule: named_parameters() gives it its first name only
            continue
        seen.add(id(record))
        if len(seen) > MAX_MODULES or depth > MAX_DEPTH:
            raise UnsafeInputError("the TorchScript module tree is larger or deeper than reglint will walk")
        attributes = record.fields()
        out.extend(_own_tensors(prefix, attributes, declared.of(record), archive, quantized=_is_quantized(record)))
        packed = torch_ao.script_weights(record)
        quantized.extend(packed.values())
        out.extend(torch_ao.quantized_tensor(prefix + key, ref, archive) if isinstance(ref, QTensorRef)
                   else NamedTensor(prefix + key, ref.shape, ref.dtype, ref.alias_key(), stats_reader(archive, ref))
                   for key, ref in packed.items())
        # packed params (C++ classes) are read by script_weights, not walked as modules
        children = [(f"{prefix}{key}.", value, depth + 1) for key, value in attributes.items()
                    if isinstance(key, str) and is_script_module(value) and not _is_packed(value)]
        stack.extend(reversed(children))  # popped in attribute order: pre-order, as named_modules()
    found = torch_ao.kinds(quantized)
    if found:
        notes.append(torch_ao.note(found))
    if declared.undeclared:
        names = sorted(declared.undeclared)
        notes.append(f"no readable __parameters__ for {len(names)} TorchScript classes ({one_line(names[0], 120)}"
                     f"{', ...' if len(names) > 1 else ''}): their tensors taken as a state dict's entries")
    return out


def _is_quantized(record: Opaque) -> bool:
    """A torch.ao quantized module (``__torch__.torch.ao.nn.quantized...``)."""
    return ".ao.nn.quantized" in record.module


def _is_packed(value: Opaque) -> bool:
    return torch_ao.is_custom_class(value) or (_is_quantized(value) and value.qualname == "LinearPackedParams")


def _own_tensors(prefix: str, attributes: dict, found: dict[str, set[str]] | None, archive, *,
                 quantized: bool = False) -> list[NamedTensor]:
    wanted = None if found is None else found["__parameters__"] | found["__buffers__"]
    buffers = set() if found is None else found["__buffers__"]
    out = []
    for key, value in attributes.items():
        if not isinstance(key, str) or not isinstance(value, TensorRef):
            continue
        if wanted is not None and key not in wanted:  # a tensor attribute or constant: no parameter
            continue
        if quantized and key in ("scale", "zero_point"):  # a quantized output's parameters, set by calibration
            continue
        # a declared buffer is never trained (BatchNorm's running statistics
        # are statistics by name as well; a model's own ``scale`` buffer is not a weight)
        out.append(NamedTensor(prefix + key, value.shape, value.dtype, value.alias_key(), stats_reader(archive, value),
                               frozen=key in buffers))
    return out


def describe_script(obj: Any, archive, path: Path, options: ReadOptions) -> Model:
    """The ``Model`` of a TorchScript archive's module tree."""
    if not is_script_module(obj):
        raise ModelReadError("TorchScript archive layout (code/, constants.pkl) whose data.pkl holds no "
                             f"compiled module ({type(obj).__name__}): refused")
    notes: list[str] = []
    tensors = script_tensors(obj, archive, notes)
    if not tensors:
        raise ModelReadError("TorchScript archive without parameters or buffers: nothing to lint")
    model = describe(obj, archive, path, options, fmt="torchscript", model_tensors=tensors)
    model.notes[:0] = [NOTE, *notes]
    model.metadata["torchscript_class"] = one_line(f"{obj.module}.{obj.qualname}", 120)  # the file's own name
    return model


def read_torch_archive(path: Path, options: ReadOptions) -> Model:
    """A zip archive PyTorch wrote: ``torch.save`` (a checkpoint) or
    ``torch.jit.save`` (a TorchScript module tree), told apart by its
    members. The entry point for both, so that this module, which builds on
    ``torch_checkpoint``, is not imported by it."""
    from reglint.readers.torch_zip import TorchArchive

    with TorchArchive(path, options, what="the checkpoint") as archive:
        obj = archive.load()
        if archive.torchscript:
            return describe_script(obj, archive, path, options)
        return describe(obj, archive, path, options)
