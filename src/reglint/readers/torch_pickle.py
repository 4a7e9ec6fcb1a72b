"""A pickle interpreter for PyTorch checkpoints that runs nothing.

``torch.save`` writes the checkpoint's Python objects as a pickle
(``data.pkl``), and a pickle is a program: ``GLOBAL os system`` followed by
``REDUCE`` calls ``os.system``. ``pickle.load`` (and ``torch.load`` with
``weights_only=False``) imports and calls whatever the file names. This
interpreter imports and calls nothing the file names:

* ``find_class`` answers from an allow-list of the globals a tensor
  checkpoint needs, each mapped to an inert stand-in defined here: the
  ``torch._utils._rebuild_tensor*`` family and ``_rebuild_parameter`` build a
  ``TensorRef`` (where the values lie, never the values), the storage classes
  and dtypes are names, ``collections.OrderedDict`` is a dict, ``torch.Size``
  a tuple, ``torch.device`` a string, ``builtins.set``/``frozenset``/
  ``slice``/``complex`` and ``_codecs.encode`` (how protocol 2 writes bytes)
  are checked wrappers. Reading a ``torch.save`` archive (``records``), any
  other class or function the pickle names becomes an ``Opaque`` record of
  its arguments and state, never imported (a whole ``nn.Module``, an
  ``argparse.Namespace``, numpy scalars, omegaconf configs: what
  ``torch.load(weights_only=True)`` refuses unless allow-listed), except
  the modules in ``DENIED_MODULES`` (``os``, ``subprocess``, ``builtins``,
  ``torch.hub``, ``pydoc`` ...) and the functions in ``DENIED_GLOBALS``
  (``torch.load``, ``numpy.load``), which only a program names; those, and any global
  without ``records``, end the read with a one-line error naming it
  (``UnsafeInputError``, exit 2), before anything is called;
* ``persistent_load`` turns the ``('storage', type, key, location, numel)``
  records into ``StorageRef``s, shared by key as torch shares them;
* for ``training_args.bin`` (a pickled ``transformers.TrainingArguments``)
  classes of ``transformers``, ``accelerate`` (and TRL, PEFT,
  sentence-transformers, whose argument classes subclass it) may be named:
  each becomes an ``Opaque`` record of its constructor arguments and state,
  whose class is never imported;
* for a TorchScript archive's ``data.pkl`` (``torchscript=True``) the module
  tree's classes, ``__torch__.<path>.<Class>``, become ``Opaque`` records
  the same way (the attributes BUILD gives them are their state, a dict),
  and ``torch.jit._pickle``'s list builders and type tag return their
  checked argument; nothing of the archive's code is read here;
* the pure-Python ``pickle._Unpickler`` is used, not the C one: its memo is a
  dict (the C memo is an array a ``LONG_BINPUT 2**30`` grows to 8 GiB);
  ``BUILD``, ``NEWOBJ`` and the copyreg extension opcodes are replaced by
  versions that act on the stand-ins only.

>>> load_pickle(b"\\x80\\x02}q\\x00X\\x01\\x00\\x00\\x00aK\\x01s.", what="data.pkl")
{'a': 1}
"""

from __future__ import annotations

import _compat_pickle
import io
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from reglint.errors import ModelReadError, UnsafeInputError, one_line

# torch dtype name -> (numpy dtype string or None when numpy has none, bytes per element)
DTYPES: dict[str, tuple[str | None, int]] = {
    "float32": ("<f4", 4), "float64": ("<f8", 8), "float16": ("<f2", 2), "bfloat16": (None, 2),
    "int8": ("<i1", 1), "uint8": ("<u1", 1), "int16": ("<i2", 2), "int32": ("<i4", 4), "int64": ("<i8", 8),
    "uint16": ("<u2", 2), "uint32": ("<u4", 4), "uint64": ("<u8", 8), "bool": ("|b1", 1),
    "complex64": ("<c8", 8), "complex128": ("<c16", 16), "complex32": (None, 4),
    "float8_e4m3fn": (None, 1), "float8_e5m2": (None, 1), "float8_e4m3fnuz": (None, 1),
    "float8_e5m2fnuz": (None, 1), "float8_e8m0fnu": (None, 1), "float4_e2m1fn_x2": (None, 1),
    # torch.ao's quantized integer codes (``_rebuild_qtensor``): read as their integers
    "qint8": ("<i1", 1), "quint8": ("<u1", 1), "qint32": ("<i4", 4),
}
# Float parameters: numpy's floats, and bfloat16 and float8 read from their
# bytes (``tensor_stats.bfloat16_to_float32``, ``small_floats``).
FLOAT_DTYPES = {"float32", "float64", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
                "float8_e5m2fnuz"}
# torch's aliases for the same dtypes, as ``torch.<name>`` globals.
DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
                 "short": "int16", "cfloat": "complex64", "cdouble": "complex128", "chalf": "complex32"}
# Legacy typed storage classes (``torch.FloatStorage``): the element type.
STORAGE_TYPES = {"FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
                 "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
                 "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
                 "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
                 "QInt8Storage": "qint8", "QUInt8Storage": "quint8", "QInt32Storage": "qint32"}
# torch.ao quantization schemes reglint dequantizes (``torch.per_tensor_affine``).
QSCHEMES = ("per_tensor_affine", "per_channel_affine")
# The integer codes each quantized dtype holds: a zero point outside them no quantization writes.
QRANGES = {"qint8": (-(1 << 7), (1 << 7) - 1), "quint8": (0, (1 << 8) - 1), "qint32": (-(1 << 31), (1 << 31) - 1)}
# Modules whose classes a training_args.bin may name (read as Opaque records):
# TrainingArguments and its enums, and the subclasses TRL's SFTConfig,
# sentence-transformers' and PEFT's trainers save in its place.
TRAINING_ARGS_MODULES = ("transformers.", "accelerate.", "trl.", "peft.", "sentence_transformers.")
MAX_RANK = 64


@dataclass(frozen=True)
class StorageType:
    """``torch.FloatStorage`` and friends; ``UntypedStorage`` counts bytes."""

    dtype: str  # element type; "uint8" for untyped storage
    untyped: bool = False


@dataclass(frozen=True)
class DType:
    """A ``torch.<dtype>`` global."""

    name: str


@dataclass(frozen=True)
class QScheme:
    """A ``torch.<qscheme>`` global (``torch.per_channel_affine``)."""

    name: str


@dataclass
class StorageRef:
    """A storage record: its bytes are the archive member ``data/<key>``."""

    key: str
    dtype: str
    numel: int  # elements of ``dtype`` (bytes for untyped storage)
    location: str
    untyped: bool = False

    @property
    def nbytes(self) -> int:
        return self.numel * (1 if self.untyped else DTYPES[self.dtype][1])


@dataclass(eq=False)  # hashed by identity, as torch hashes a Parameter (an optimizer object keys its state by them)
class TensorRef:
    """Where a tensor's values lie: nothing is read until asked."""

    storage: StorageRef
    offset: int  # in elements of ``dtype``
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str
    parameter: bool = False  # saved as an nn.Parameter
    requires_grad: bool | None = None  # an nn.Parameter's flag, where the pickle records it

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype][1]

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    def span(self) -> int:
        """Elements of the storage the tensor reaches: 1 + the largest offset."""
        if self.numel == 0:
            return 0
        return self.offset + 1 + sum((dim - 1) * step for dim, step in zip(self.shape, self.stride, strict=True))

    def is_contiguous(self) -> bool:
        expected = 1
        for dim, step in zip(reversed(self.shape), reversed(self.stride), strict=True):
            if dim != 1 and step != expected:
                return False
            expected *= dim
        return True

    def alias_key(self) -> tuple:
        """Equal for two state_dict entries that are the same tensor (tied weights)."""
        return self.storage.key, self.offset, self.shape, self.stride, self.dtype


@dataclass
class Quantizer:
    """A quantized tensor's ``(q - zero_point) * scale``: one scale and zero
    point (per tensor) or one per index of ``axis`` (per channel)."""

    scheme: str
    scale: float | TensorRef
    zero_point: int | TensorRef
    axis: int = 0


@dataclass
class QTensorRef(TensorRef):
    """A torch.ao quantized tensor: integer codes in ``storage`` (dtype
    qint8/quint8/qint32) and how they map to floats."""

    quantizer: Quantizer | None = None


class StateDict(dict):
    """``collections.OrderedDict`` (a state_dict keeps ``_metadata`` as an attribute)."""

    def _reglint_setstate(self, state: Any) -> None:
        if isinstance(state, dict):
            self.attributes = dict(state)


class Opaque:
    """An object of a class the file names and reglint never imports: its
    constructor arguments and its state, as data."""

    module = ""
    qualname = ""
    args: tuple = ()
    state: Any = None
    # what SETITEMS / APPENDS gave a record of a dict or list subclass
    # (collections.defaultdict, omegaconf's containers)
    items: dict | None = None
    elements: list | None = None

    def __new__(cls, *args):
        obj = object.__new__(cls)
        obj.args = args
        obj.state = None
        return obj

    def __init__(self, *args):
        pass

    def _reglint_setstate(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        if self.items is None:
            self.items = {}
        self.items[key] = value

    def append(self, value: Any) -> None:
        if self.elements is None:
            self.elements = []
        self.elements.append(value)

    def extend(self, values: Any) -> None:
        for value in values:
            self.append(value)

    @property
    def name(self) -> str:
        return f"{self.module}.{self.qualname}"

    def __repr__(self) -> str:
        return f"<{self.module}.{self.qualname}>"

    @property
    def value(self) -> Any:
        """An enum member's value (``OptimizerNames('adamw_torch')``)."""
        return self.args[0] if len(self.args) == 1 else None

    def fields(self) -> dict[str, Any]:
        """The object's attributes (a dataclass's fields), or {}."""
        state = self.state
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = state[0]
        return dict(state) if isinstance(state, dict) else {}


# ---------------------------------------------------------------------------
# stand-ins for the allowed callables: each checks its arguments
# ---------------------------------------------------------------------------
def _int(value: Any, what: str, *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ModelReadError(f"malformed tensor record: {what} {value!r:.40}")
    return value


def _dims(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > MAX_RANK:
        raise ModelReadError(f"malformed tensor record: {what}")
    return tuple(_int(v, what) for v in value)


def _tensor(storage: Any, offset: Any, size: Any, stride: Any, dtype: str | None = None) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise ModelReadError("malformed tensor record: its storage is not a storage record")
    shape, steps = _dims(size, "size"), _dims(stride, "stride")
    if len(shape) != len(steps):
        raise ModelReadError("malformed tensor record: size and stride differ in rank")
    dtype = dtype or storage.dtype
    if storage.untyped and dtype == "uint8" and storage.dtype != "uint8":
        dtype = storage.dtype
    return TensorRef(storage, _int(offset, "offset"), shape, steps, dtype)


def _rebuild_tensor(storage, storage_offset, size, stride, *_):
    return _tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                       metadata=None):
    if not isinstance(dtype, DType):
        raise ModelReadError("malformed tensor record: dtype is not a torch dtype")
    if isinstance(storage, StorageRef) and storage.untyped and storage.nbytes % DTYPES[dtype.name][1]:
        raise ModelReadError(f"storage {storage.key} is not a whole number of {dtype.name} values")
    return _tensor(storage, storage_offset, size, stride, dtype.name)


def _rebuild_parameter(data, requires_grad=True, backward_hooks=None, *state):
    if not isinstance(data, TensorRef):
        raise ModelReadError("malformed parameter record: it holds no tensor")
    data.parameter = True
    data.requires_grad = requires_grad if isinstance(requires_grad, bool) else None
    return data


def _rebuild_qtensor(storage, storage_offset, size, stride, quantizer_params, requires_grad=False,
                     backward_hooks=None, *_):
    codes = _tensor(storage, storage_offset, size, stride)
    if codes.dtype not in ("qint8", "quint8", "qint32"):
        raise ModelReadError("malformed quantized tensor record: its storage is not a quantized storage")
    quantizer = _quantizer(quantizer_params, codes.shape, codes.dtype)
    return QTensorRef(codes.storage, codes.offset, codes.shape, codes.stride, codes.dtype, quantizer=quantizer)


def _quantizer(params: Any, shape: tuple[int, ...], dtype: str) -> Quantizer:
    """``(per_tensor_affine, scale, zero_point)`` or ``(per_channel_affine,
    scales, zero_points, axis)``, checked (a per-tensor scale finite and
    positive, its zero point one of ``dtype``'s codes; per-channel ones are
    checked where they are read, ``torch_ao``); any other scheme is refused
    by name rather than read wrong."""
    scheme = params[0] if isinstance(params, tuple) and params else None
    if isinstance(scheme, type) and issubclass(scheme, Opaque):  # a torch.<qscheme> not in QSCHEMES
        raise UnsafeInputError(f"quantization scheme {one_line(scheme.module + '.' + scheme.qualname, 120)}, which "
                               "reglint does not read: refused")
    if not isinstance(scheme, QScheme):
        raise ModelReadError("malformed quantized tensor record: its quantizer is not a (scheme, ...) tuple")
    if scheme.name == "per_tensor_affine" and len(params) == 3:
        scale, zero_point = params[1], params[2]
        if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale)
                and scale > 0):
            raise ModelReadError(f"malformed quantized tensor record: its scale {scale!r:.40} is not a positive "
                                 "number")
        low, high = QRANGES[dtype]
        if isinstance(zero_point, bool) or not isinstance(zero_point, int) or not low <= zero_point <= high:
            raise ModelReadError(f"malformed quantized tensor record: its zero point {zero_point!r:.40} is not "
                                 f"a {dtype} value ({low}..{high})")
        return Quantizer(scheme.name, float(scale), zero_point)
    elif scheme.name == "per_channel_affine" and len(params) == 4:
        scales, zero_points, axis = params[1], params[2], params[3]
        if isinstance(scales, TensorRef) and isinstance(zero_points, TensorRef) and not isinstance(axis, bool) \
                and isinstance(axis, int) and 0 <= axis < len(shape) \
                and scales.numel == zero_points.numel == shape[axis]:
            return Quantizer(scheme.name, scales, zero_points, axis)
    raise ModelReadError(f"malformed quantized tensor record: a {scheme.name} quantizer of {len(params)} fields "
                         "that do not fit the tensor")


REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type_v2(func, new_type, args, state):
    """Tensor subclasses (Parameter among them) wrap one of the rebuilders."""
    if func not in REBUILDERS or not isinstance(args, tuple):
        raise UnsafeInputError("refused: _rebuild_from_type_v2 wraps something other than a tensor rebuild")
    tensor = func(*args)
    if new_type is PARAMETER:
        tensor.parameter = True
    return tensor


PARAMETER = DType("Parameter")  # torch.nn.parameter.Parameter, as a marker
TENSOR = DType("Tensor")  # torch.Tensor, as a marker


def _size(dims=()):
    return _dims(dims, "torch.Size")


def _device(kind="cpu", index=None):
    if not isinstance(kind, str) or (index is not None and (isinstance(index, bool) or not isinstance(index, int))):
        raise ModelReadError("malformed torch.device record")
    return kind if index is None else f"{kind}:{index}"


def _layout(name="torch.strided"):
    """``torch.serialization._get_layout``: a layout by name (a DCP
    checkpoint's ``TensorProperties``), kept as its name."""
    if not isinstance(name, str) or len(name) > 64:
        raise ModelReadError("a tensor layout is not a short name")
    return name


def _encode(text="", encoding="latin1"):
    """``_codecs.encode(str, 'latin1')``: how protocol 2 writes bytes. No other codec."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeInputError(f"refused: _codecs.encode with codec {encoding!r:.30}")
    return text.encode("latin1")


def _collection(kind):
    def build(items=()):
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise ModelReadError(f"malformed {kind.__name__} record")
        return kind(items)

    return build


def _slice(*args):
    if len(args) > 3 or not all(a is None or (isinstance(a, int) and not isinstance(a, bool)) for a in args):
        raise ModelReadError("malformed slice record")
    return slice(*args)


def _complex(real=0.0, imag=0.0):
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (real, imag)):
        raise ModelReadError("malformed complex record")
    return complex(real, imag)


def _bytearray(data=b""):
    if not isinstance(data, (bytes, bytearray)):  # bytearray(10**12) would allocate a terabyte
        raise UnsafeInputError("refused: bytearray built from something other than bytes")
    return bytearray(data)


def _typed_list(data=()):
    """``torch.jit._pickle.build_intlist`` and friends: the list itself."""
    if not isinstance(data, list):
        raise ModelReadError("malformed TorchScript list record")
    return data


def _restore_type_tag(value=None, type_str=""):
    """``torch.jit._pickle.restore_type_tag``: the value; the tag is a type's name."""
    if not isinstance(type_str, str):
        raise ModelReadError("malformed TorchScript type tag")
    return value


# Globals only a TorchScript data.pkl names (allowed with torchscript=True).
TORCHSCRIPT_ALLOWED: dict[str, Any] = {
    "torch.jit._pickle.build_intlist": _typed_list,
    "torch.jit._pickle.build_doublelist": _typed_list,
    "torch.jit._pickle.build_boollist": _typed_list,
    "torch.jit._pickle.build_tensorlist": _typed_list,
    "torch.jit._pickle.restore_type_tag": _restore_type_tag,
}
TORCHSCRIPT_ROOT = "__torch__"


def _allowed() -> dict[str, Any]:
    table: dict[str, Any] = {
        "collections.OrderedDict": StateDict,
        "torch._utils._rebuild_tensor": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_qtensor": _rebuild_qtensor,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
        "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
        "torch.nn.parameter.Parameter": PARAMETER,
        "torch.Tensor": TENSOR,
        "torch.Size": _size,
        "torch.device": _device,
        "torch.serialization._get_layout": _layout,
        "torch.storage.UntypedStorage": StorageType("uint8", untyped=True),
        "torch.UntypedStorage": StorageType("uint8", untyped=True),
        "builtins.set": _collection(set),
        "builtins.frozenset": _collection(frozenset),
        "builtins.slice": _slice,
        "builtins.complex": _complex,
        "builtins.bytearray": _bytearray,
        "_codecs.encode": _encode,
    }
    for cls, dtype in STORAGE_TYPES.items():
        table[f"torch.{cls}"] = StorageType(dtype)
    for name in DTYPES:
        table[f"torch.{name}"] = DType(name)
    for alias, name in DTYPE_ALIASES.items():
        table[f"torch.{alias}"] = DType(name)
    for scheme in QSCHEMES:
        table[f"torch.{scheme}"] = QScheme(scheme)
    return table


ALLOWED = _allowed()

# With ``records`` (a torch.save archive), a global off the allow-list becomes
# an inert ``Opaque`` record (a whole ``nn.Module``, ``argparse.Namespace``,
# numpy scalars, omegaconf configs: nothing is imported or called either
# way), except these, which only a program names: the file is refused by name.
DENIED_MODULES = frozenset({
    "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "_posixsubprocess", "sys", "shutil", "importlib",
    "imp", "runpy", "pkgutil", "zipimport", "socket", "ssl", "http", "urllib", "urllib2", "requests", "ftplib",
    "smtplib", "telnetlib", "xmlrpc", "webbrowser", "pickle", "_pickle", "cPickle", "marshal", "dill", "cloudpickle",
    "joblib", "shelve", "ctypes", "cffi", "code", "codeop", "pty", "tty", "multiprocessing", "threading", "_thread",
    "asyncio", "signal", "tempfile", "glob", "io", "_io", "builtins", "__builtin__", "types", "functools",
    "operator", "inspect", "ast", "pdb", "bdb", "timeit", "trace", "profile", "cProfile", "commands", "pip",
    "setuptools", "distutils", "platform", "getpass", "sqlite3", "yaml", "copyreg", "copy_reg", "_codecs", "codecs",
    "torch.hub", "torch.jit", "torch._dynamo", "torch.ops", "torch._ops", "torch.utils.cpp_extension",
    "torch.serialization", "torch.package", "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.lib.npyio",
    # more modules whose functions run a command or code they are given
    # (pydoc.pipepager, torch.utils.collect_env.run, logging.config.listen)
    "pydoc", "venv", "ensurepip", "doctest", "idlelib", "lib2to3", "logging.config", "_osx_support", "_aix_support",
    "torch.utils.collect_env", "torch.utils.bottleneck", "torch._inductor",
})
# Functions of otherwise readable modules that load a nested pickle or run
# code the file carries (torch.load without weights_only, an fx module's code).
DENIED_GLOBALS = frozenset({
    "torch.load", "torch.storage._load_from_bytes", "numpy.load", "torch.fx.graph_module.reduce_graph_module",
    "torch.fx.graph_module.reduce_package_graph_module", "torch.fx.graph_module.reduce_deploy_graph_module",
})


# Builtin types a record's arguments name (``defaultdict(list)``): records
# too, never the builtin itself.
RECORD_BUILTINS = frozenset({"list", "dict", "tuple", "int", "float", "str", "bytes", "bool", "object", "range"})
# Classes of denied modules that hold only data, records too: TransformerEngine
# (before 1.0, and Megatron/NeMo checkpoints made with it) saves each layer's
# ``_extra_state`` (its fp8 scaling state) as an ``io.BytesIO``.
RECORD_DATA_CLASSES = frozenset({"io.BytesIO", "_io.BytesIO"})


def _denied(module: str) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:i]) in DENIED_MODULES for i in range(1, len(parts) + 1))


# ---------------------------------------------------------------------------
# the interpreter
# ---------------------------------------------------------------------------
class _Unpickler(pickle._Unpickler):  # the pure-Python one: see the module docstring
    dispatch: ClassVar[dict] = dict(pickle._Unpickler.dispatch)
    # Set by pickle._Unpickler.load(); declared for the opcode methods below.
    stack: list[Any]
    append: Callable[[Any], None]

    def __init__(self, data: bytes, *, what: str, opaque_modules: tuple[str, ...] = (), torchscript: bool = False,
                 records: bool = False):
        super().__init__(io.BytesIO(data), fix_imports=False, encoding="latin1")
        self.what = what
        self.opaque_modules = opaque_modules
        self.torchscript = torchscript
        self.records = records
        self.storages: dict[str, StorageRef] = {}
        self._opaque: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (protocol 2 writes __builtin__.set), mapped as data.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        key = f"{module}.{name}"
        if key in ALLOWED:
            return ALLOWED[key]
        if self.opaque_modules and module.startswith(self.opaque_modules) and name.isidentifier():
            return self._opaque_class(module, name)
        if self.torchscript:
            if key in TORCHSCRIPT_ALLOWED:
                return TORCHSCRIPT_ALLOWED[key]
            if is_script_class(module, name):
                return self._opaque_class(module, name)
        if self.records and _is_record_name(module, name) and key not in DENIED_GLOBALS and (
                not _denied(module) or (module == "builtins" and name in RECORD_BUILTINS)
                or key in RECORD_DATA_CLASSES):
            return self._opaque_class(module, name)
        raise UnsafeInputError(
            f"{self.what} names {one_line(key, 120)}, which a tensor checkpoint does not need: refused "
            "(nothing from the file was imported or run)")

    def _opaque_class(self, module: str, name: str) -> type:
        key = f"{module}.{name}"
        if key not in self._opaque:
            self._opaque[key] = type(name, (Opaque,), {"module": module, "qualname": name})
        return self._opaque[key]

    def persistent_load(self, pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise ModelReadError(f"{self.what}: malformed storage record")
        _, kind, key, location, numel = pid
        if not isinstance(kind, StorageType) or not isinstance(key, str) or not isinstance(location, str):
            raise ModelReadError(f"{self.what}: malformed storage record")
        numel = _int(numel, "storage size")
        if key not in self.storages:  # torch keeps the first record of a key
            self.storages[key] = StorageRef(key, kind.dtype, numel, location, kind.untyped)
        return self.storages[key]

    # Opcodes acting on objects: only on the stand-ins.
    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        setstate = getattr(type(inst), "_reglint_setstate", None)
        if setstate is None:
            raise ModelReadError(f"{self.what}: BUILD on a {type(inst).__name__}")
        setstate(inst, state)

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._new(cls, args))

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if kwargs:
            raise ModelReadError(f"{self.what}: NEWOBJ_EX with keyword arguments")
        self.append(self._new(cls, args))

    def _new(self, cls: Any, args: Any) -> Any:
        if not isinstance(args, tuple):
            raise ModelReadError(f"{self.what}: NEWOBJ arguments are not a tuple")
        if isinstance(cls, type) and issubclass(cls, Opaque):
            return cls.__new__(cls, *args)
        if cls is StateDict and not args:
            return StateDict()
        raise ModelReadError(f"{self.what}: NEWOBJ on something other than a record class")

    def _refuse_extension(self) -> None:
        raise UnsafeInputError(f"{self.what} uses the copyreg extension registry: refused")

    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex
    dispatch[pickle.EXT1[0]] = dispatch[pickle.EXT2[0]] = dispatch[pickle.EXT4[0]] = _refuse_extension


def _is_record_name(module: str, name: str) -> bool:
    """A dotted module and a (possibly nested) class name, as pickle writes
    them, of bounded length: anything else is not a name a checkpoint holds."""
    parts = module.split(".")
    return (len(module) + len(name) <= 400 and len(parts) <= 32 and all(p.isidentifier() for p in parts)
            and all(p.isidentifier() for p in name.split(".")))


def is_script_class(module: str, name: str) -> bool:
    """``__torch__.torch.nn.modules.conv.___torch_mangle_0`` / ``Conv2d``: a
    class TorchScript compiled, named under its ``__torch__`` namespace."""
    parts = module.split(".")
    return (parts[0] == TORCHSCRIPT_ROOT and len(parts) <= 64 and name.isidentifier()
            and all(part.isidentifier() for part in parts))


def load_pickle(data: bytes, *, what: str, opaque_modules: tuple[str, ...] = (),
                storages: dict[str, StorageRef] | None = None, torchscript: bool = False,
                records: bool = False, record_classes: set[str] | None = None) -> Any:
    """The objects of a torch pickle, as inert data; raises one-line
    ModelReadError/UnsafeInputError for anything else. ``storages`` (when
    given) receives every storage record by key; ``torchscript`` admits a
    TorchScript module tree's classes as ``Opaque`` records; ``records``
    every class off ``DENIED_MODULES``, whose names ``record_classes``
    receives."""
    unpickler = _Unpickler(data, what=what, opaque_modules=opaque_modules, torchscript=torchscript, records=records)
    try:
        obj = unpickler.load()
    except ModelReadError:
        raise
    except RecursionError:
        raise UnsafeInputError(f"{what} is nested too deeply") from None
    except MemoryError:
        raise UnsafeInputError(f"{what} asks for more memory than a checkpoint needs") from None
    except Exception as exc:  # UnpicklingError, EOFError, KeyError (bad memo), TypeError (bad REDUCE) ...
        raise ModelReadError(one_line(f"{what} is not a readable pickle ({type(exc).__name__}: {exc})", 200)) from None
    if storages is not None:
        storages.update(unpickler.storages)
    if record_classes is not None:
        record_classes.update(unpickler._opaque)
    return obj
