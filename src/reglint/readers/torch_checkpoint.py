"""What a PyTorch checkpoint's objects mean: the model's parameters and the
optimizer that trained them.

**The model** is the first of these that is a ``state_dict`` (string keys,
tensor values): the checkpoint itself, or its ``state_dict`` (Lightning,
whose keys keep the LightningModule's attribute prefixes, ``model.0.weight``),
``model_state_dict``, ``model``, ``module``, ``net``, ``network``,
``model_state``, ``weights``; or a whole module pickled with
``torch.save(model)``, there or at the top, flattened from its records in
``state_dict``'s order (``torch_modules``: its classes and each
parameter's ``requires_grad`` kept). Entries that share a tensor (tied weights:
``lm_head.weight`` is ``wte.weight``) are one parameter, as
``model.parameters()`` counts them. Not parameters: BatchNorm's
``running_mean``/``running_var`` (kept as non-trainable moving statistics),
``num_batches_tracked`` and every other integer tensor, ``position_ids``,
``inv_freq``.

**Layers** are the module prefixes (``layer1.0.conv1.weight`` ->
``layer1.0.conv1``); a parameter at the root is its own layer. Roles come
from the names and shapes a module holds: a module with running statistics
is a BatchNorm (``weight`` -> gamma, ``bias`` -> beta); a ``weight`` of rank
>= 2 is a kernel (class ``Linear``/``Conv1d``/``Conv2d``/``Conv3d`` by rank),
or an embedding table in a module named like one (``embed``, ``wte``,
``word_embeddings``) without a bias; a rank-1 ``weight`` without running
statistics is a normalization gamma (its ``bias`` beta), or PReLU's slopes
in a module named ``prelu``; RNN ``weight_ih``/``weight_hh``/``bias_*``
are kernel/recurrent kernel/bias (LSTM, GRU or RNN by the gate count);
``in_proj_weight``/``in_proj_bias`` (MultiheadAttention) kernel/bias;
``weight_v``/``weight_g`` (weight norm) kernel/gamma; any other ``bias``
a bias; anything else ``other``. Class names are inferred (recorded only
in a pickled module);
shapes are PyTorch's own layout (a Linear weight is ``(out, in)``).

Else the state dicts a checkpoint keeps under keys of its own, several
merged, or nested dicts of tensors (``torch_layouts``).

**The optimizer**: ``optimizer``, ``optimizer_state_dict``,
``optimizer_state``, ``optim``, Lightning's ``optimizer_states`` (the
first; a note counts the others), or the checkpoint itself when it is an
optimizer state dict; else any the checkpoint keeps (``torch_layouts``:
several merged); read by ``torch_optim``. A parameter the optimizer
does not update (when every group is matched exactly) is marked frozen.
Steps: the optimizer's ``step`` state, else Lightning's ``global_step``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from reglint.errors import ModelReadError, one_line
from reglint.model import Layer, Model, Role, Variable, WeightStats
from reglint.readers import torch_ao
from reglint.readers.bnb_quantized import dequantized_checkpoint, quantized_note
from reglint.readers.limits import ReadOptions
from reglint.readers.named_tensor import NamedTensor
from reglint.readers.torch_layouts import (
    PARTIAL,
    averaged_copies,
    merged_optimizer,
    nested_state_dict,
    optimizer_states,
    several_state_dicts,
)
from reglint.readers.torch_modules import ModuleStateDict, is_module_record, module_state_dict, short_class
from reglint.readers.torch_optim import Slot, describe_optimizer, is_optimizer_state, number, optimizer_object_state
from reglint.readers.torch_pickle import QTensorRef, TensorRef

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "model_state", "weights")
# The exponential moving average of the weights, where a checkpoint keeps
# no other model: ultralytics' last.pt (``"model": None``, ``"ema"``),
# timm's ``state_dict_ema``.
EMA_KEYS = ("ema", "model_ema", "state_dict_ema", "ema_state_dict")
# fairseq's checkpoint_utils keeps the optimizer as ``last_optimizer_state``.
OPTIMIZER_KEYS = ("optimizer", "optimizer_state_dict", "optimizer_state", "optim", "last_optimizer_state")
STATISTICS = {"running_mean": Role.MOVING_MEAN, "running_var": Role.MOVING_VARIANCE}
NOT_PARAMETERS = {"num_batches_tracked", "position_ids", "inv_freq", "masked_bias", "_float_tensor"}
# T5's relative position biases are an nn.Embedding of buckets x heads.
EMBEDDING_NAME = re.compile(r"emb|^(wte|wpe|shared|tok_embeddings|lookup|relative_attention_bias)$", re.IGNORECASE)
# Buffers a model updates outside the gradient, saved in its state dict:
# DeepSeek-V3's router score-correction bias (a registered buffer that its
# auxiliary-loss-free load balancing moves each step). Torch counts no
# buffer among the parameters: non-trainable, as running statistics are.
BUFFER_LEAVES = {"e_score_correction_bias"}
# A module holding a rank-1 weight alone, named as an activation: PReLU's slopes, not a norm's gain.
ACTIVATION_NAME = re.compile(r"(^|_)(prelu|act|activation|relu)(_?\d*)$", re.IGNORECASE)
RNN_LEAF = re.compile(r"^(weight|bias)_(ih|hh|hr)_l\d+(_reverse)?$")
RNN_GATES = {4: "LSTM", 3: "GRU", 1: "RNN"}
CONV_CLASSES = {2: "Linear", 3: "Conv1d", 4: "Conv2d", 5: "Conv3d"}




# ---------------------------------------------------------------------------
# the layers
# ---------------------------------------------------------------------------
# Attributes under which training wrappers keep the model: DataParallel and
# DistributedDataParallel (``module``), torch.compile's OptimizedModule
# (``_orig_mod``), Lightning's strategy wrapper (``_forward_module``: the
# names DeepSpeed saves under Lightning), FSDP1 and activation checkpointing
# before their state-dict hooks clean the names; a state dict saved from the
# wrapper names every tensor under them (``module._orig_mod.fc.weight``).
WRAPPERS = {"module.": "DataParallel / DistributedDataParallel", "_orig_mod.": "torch.compile",
            "_forward_module.": "Lightning's strategy wrapper", "_fsdp_wrapped_module.": "FSDP",
            "_checkpoint_wrapped_module.": "activation checkpointing"}


def wrapper_prefix(names: list[str]) -> str:
    """The wrapper attributes every name starts with (``module.``,
    ``_orig_mod.``, nested), so long as something is left after them.

    >>> wrapper_prefix(["module._orig_mod.fc.weight", "module._orig_mod.fc.bias"])
    'module._orig_mod.'
    >>> wrapper_prefix(["module.weight", "fc.bias"])
    ''
    """
    prefix = ""
    while names:
        step = next((w for w in WRAPPERS if all(n.startswith(prefix + w) and len(n) > len(prefix + w)
                                                 for n in names)), None)
        if step is None:
            return prefix
        prefix += step
    return prefix


def describe_wrapper(prefix: str) -> str:
    """``module._orig_mod.`` -> 'DataParallel / DistributedDataParallel, then torch.compile'."""
    parts = [WRAPPERS[w + "."] for w in prefix.rstrip(".").split(".") if w + "." in WRAPPERS]
    return ", then ".join(parts)


def build_layers(tensors: list[NamedTensor], options: ReadOptions, notes: list[str]) -> tuple[list[Layer], list[Slot]]:
    """Layers by module prefix, and the parameters in order (what an
    optimizer built from ``model.parameters()`` numbers)."""
    modules: dict[str, dict[str, NamedTensor]] = {}
    seen: dict[Any, str] = {}
    tied = []
    wrapper = wrapper_prefix([t.name for t in tensors])
    if wrapper:
        notes.append(f"every name starts with {wrapper!r} ({describe_wrapper(wrapper)}): layers are named "
                     "without it, as the model's own modules")
    averages = lit_ema_prefixes([t.name for t in tensors])
    if averages:
        tensors = [t for t in tensors if not t.name.startswith(averages)]
        notes.append(f"{', '.join(repr(p) for p in averages)}: LitEma's moving averages of the weights (buffers, "
                     "not parameters: latent diffusion's model_ema), not counted")
    copies = averaged_copies([(t.name[len(wrapper):], t.shape) for t in tensors])
    if copies:
        tensors = [dataclasses.replace(t, frozen=True) if t.name[len(wrapper):].partition(".")[0] in copies else t
                   for t in tensors]
        notes.append(f"{', '.join(repr(c) for c in sorted(copies))}: a moving average of another module's weights "
                     "(the same parameters, named as an EMA, teacher or target): counted, not trained")
    root_leaves = [leaf for module, leaf in (module_and_leaf(t.name[len(wrapper):]) for t in tensors)
                   if not module and leaf not in NOT_PARAMETERS]
    # the root's own leaves make one module when they are a module's
    # (review 43, 9); free tensors at the root (a ViT's cls_token and
    # pos_embed) stay a layer each
    root_module = bool(root_leaves) and all(MODULE_LEAF.match(leaf) for leaf in root_leaves)
    for tensor in tensors:
        if tensor.alias is not None and tensor.alias in seen:
            tied.append(f"{tensor.name} = {seen[tensor.alias]}")
            continue
        if tensor.alias is not None:
            seen[tensor.alias] = tensor.name
        module, leaf = module_and_leaf(tensor.name[len(wrapper):])
        if leaf in NOT_PARAMETERS or not (tensor.is_float or tensor.quantized):
            continue
        modules.setdefault(module if module or root_module else tensor.name, {})[leaf] = tensor
    if tied:
        notes.append(f"tied weights counted once: {', '.join(tied[:3])}{'...' if len(tied) > 3 else ''}")
    if len(modules) > options.max_layers:
        raise ModelReadError(f"more than {options.max_layers} modules: refused")
    layers, slots = [], []
    for path, leaves in modules.items():
        class_name, roles = module_roles(path, leaves)
        variables = []
        buffers = buffer_leaves(leaves)
        for leaf, tensor in leaves.items():
            role = roles.get(leaf, Role.OTHER)
            buffer = leaf in buffers
            var = Variable(name=leaf, role=Role.OTHER if buffer else role, shape=tensor.shape,
                           trainable=not (role.is_statistic or tensor.frozen or buffer), dtype=tensor.dtype,
                           location=tensor.name)
            if options.weight_stats:
                var.stats = tensor.read_stats()
            variables.append(var)
            if var.trainable:
                slots.append(Slot(tensor.name, tensor.shape))
        units = variables[0].shape[0] if class_name in CONV_CLASSES.values() and variables[0].shape else None
        layers.append(Layer(name=path.rsplit(".", 1)[-1] or ROOT_LAYER_NAME, path=path or ROOT_LAYER_NAME,
                            class_name=class_name, variables=variables,
                            units=units))
    order = {t.name: i for i, t in enumerate(tensors)}
    slots.sort(key=lambda s: order[s.location])
    return layers, slots


# torch.nn.utils.parametrize (weight_norm, spectral_norm, orthogonal ...)
# moves a parameter under the module it parametrizes:
# ``conv.parametrizations.weight.original0`` (weight norm's magnitude g),
# ``.original1`` (its direction v), ``.original`` (one-part
# parametrizations), and each parametrization's own buffers by index
# (``.0._u``, ``.0._v``: spectral norm's power-iteration vectors; ``.0.base``:
# orthogonal's). The leaf keeps the parameter's name in front:
# ``weight.original0``.
PARAMETRIZED = re.compile(r"^(?:(?P<module>.+?)\.)?parametrizations\.(?P<param>[^.]+)\.(?P<rest>.+)$")
# The leaves a module of torch.nn holds itself. A bare module saved alone
# (``nn.Linear(3, 4).state_dict()``, the root of a model that holds its own
# weight) keeps them at the root: one module, not a layer per tensor.
MODULE_LEAF = re.compile(r"^(weight|bias)(_orig|_u|_v|_g)?$|^(weight|bias)\.|^running_(mean|var)$"
                         r"|^(in|q|k|v)_proj_(weight|bias)$|^(weight|bias)_(ih|hh|hr)_l\d+(_reverse)?$")
ROOT_LAYER_NAME = "(root)"


def module_and_leaf(name: str) -> tuple[str, str]:
    """(module path, leaf): a parametrized tensor belongs to the module it
    parametrizes, as ``model.named_modules()`` shows the layer.

    >>> module_and_leaf("layer1.0.conv1.weight")
    ('layer1.0.conv1', 'weight')
    >>> module_and_leaf("0.parametrizations.weight.original0")
    ('0', 'weight.original0')
    >>> module_and_leaf("fc.parametrizations.weight.0._u")
    ('fc', 'weight.0._u')
    >>> module_and_leaf("parametrizations.weight.original1")
    ('', 'weight.original1')
    """
    match = PARAMETRIZED.match(name)
    if match:
        return match["module"] or "", f"{match['param']}.{match['rest']}"
    module, _, leaf = name.rpartition(".")
    return module, leaf


def canonical_leaf(leaf: str, leaves: Mapping[str, Any]) -> str | None:
    """The plain name a (parametrized) leaf stands for, for its role: a
    one-part parametrization's ``weight.original`` and the legacy
    ``spectral_norm``'s ``weight_orig`` are the weight itself; the new
    ``weight_norm``'s ``original0``/``original1`` are the legacy one's
    ``weight_g``/``weight_v``. None for a buffer that is no parameter
    (``buffer_leaves``)."""
    if leaf in buffer_leaves(leaves):
        return None
    param, dot, rest = leaf.partition(".")
    if dot:
        return {"original": param, "original0": f"{param}_g", "original1": f"{param}_v"}.get(rest)
    return leaf[:-len("_orig")] if leaf.endswith("_orig") else leaf


def buffer_leaves(leaves: Mapping[str, Any]) -> set[str]:
    """The leaves of a module that are buffers, not parameters: the ones
    ``BUFFER_LEAVES`` names; a parametrization's own state
    (``weight.0._u``: numbered, under the parameter it parametrizes); the
    legacy ``spectral_norm``'s ``weight_u``/``weight_v`` beside its
    ``weight_orig`` (the legacy ``weight_norm``'s ``weight_v`` beside
    ``weight_g`` is a parameter)."""
    found = {leaf for leaf in leaves if leaf in BUFFER_LEAVES}
    # a parametrization module's buffers: spectral norm's power-iteration
    # vectors, orthogonal's base; its parameters (minLoRA's lora_A/lora_B,
    # a learned gain) are parameters (review 43, 1)
    found |= {leaf for leaf in leaves if re.match(r"^[^.]+\.\d+\.(_u|_v|base)$", leaf)}
    for leaf in leaves:
        if leaf.endswith("_orig"):
            stem = leaf[:-len("_orig")]
            found |= {f"{stem}_u", f"{stem}_v"} & set(leaves)
    return found


def lit_ema_prefixes(names: list[str]) -> tuple[str, ...]:
    """Prefixes under which a ``LitEma`` (latent diffusion, Stable
    Diffusion's training checkpoints) keeps its shadow weights as buffers:
    it registers ``decay`` and ``num_updates`` beside them.

    >>> lit_ema_prefixes(["model.w", "model_ema.decay", "model_ema.num_updates", "model_ema.w"])
    ('model_ema.',)
    """
    known = set(names)
    return tuple(sorted({n[:-len("num_updates")] for n in names
                         if n.endswith(".num_updates") and n[:-len("num_updates")] + "decay" in known}))


def module_roles(path: str, leaves: dict[str, NamedTensor]) -> tuple[str, dict[str, Role]]:
    """(inferred class name, role of each tensor) for one module; a
    parametrized leaf (``canonical_leaf``) takes the role of the plain
    name it stands for."""
    canonical = {c: leaf for leaf in leaves if (c := canonical_leaf(leaf, leaves)) is not None}
    if any(c != leaf for c, leaf in canonical.items()):
        name_class, plain = module_roles(path, {c: leaves[leaf] for c, leaf in canonical.items()})
        return name_class, {canonical[c]: role for c, role in plain.items() if c in canonical}
    last = path.rsplit(".", 1)[-1]
    # weight norm keeps no weight: its direction v has the weight's shape
    weight = leaves.get("weight", leaves.get("weight_v") if "weight_g" in leaves else None)
    roles: dict[str, Role] = {}
    for leaf in leaves:
        if leaf in STATISTICS:
            roles[leaf] = STATISTICS[leaf]
        elif leaf == "bias" or leaf.startswith("bias_") or leaf == "in_proj_bias":
            roles[leaf] = Role.BIAS  # in_proj_bias: MultiheadAttention's packed q/k/v bias
        elif leaf in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "weight_v", "original1"):
            roles[leaf] = Role.KERNEL
        elif leaf in ("weight_g", "original0"):
            roles[leaf] = Role.GAMMA
        elif RNN_LEAF.match(leaf):
            roles[leaf] = Role.RECURRENT_KERNEL if "_hh_" in leaf else Role.KERNEL
        elif "emb" in leaf.lower():
            roles[leaf] = Role.EMBEDDINGS  # pos_embed, absolute position tables
    if any(leaf in STATISTICS for leaf in leaves):
        roles.update({"weight": Role.GAMMA, "bias": Role.BETA})
        return "BatchNorm", roles
    if any(RNN_LEAF.match(leaf) for leaf in leaves):
        return _rnn_class(leaves), roles
    if "in_proj_weight" in leaves or "q_proj_weight" in leaves:  # kdim/vdim: separate projections
        return "MultiheadAttention", roles
    if weight is None and last == "experts" and any(len(t.shape) == 3 for t in leaves.values()):
        return "Experts", _expert_roles(leaves, roles)
    if weight is None:
        return "Module", roles
    rank = len(weight.shape)
    if rank >= 2:
        if rank == 2 and "bias" not in leaves and EMBEDDING_NAME.search(last):
            roles["weight"] = Role.EMBEDDINGS
            return "Embedding", roles
        roles["weight" if "weight" in leaves else "weight_v"] = Role.KERNEL
        return CONV_CLASSES.get(rank, "ConvNd"), roles
    if ACTIVATION_NAME.search(last) or (tuple(weight.shape) == (1,) and "bias" not in leaves):
        # PReLU: a module named as an activation, or one shared slope (no
        # normalization scales a single feature)
        roles["weight"] = Role.ALPHA
        return "PReLU", roles
    roles["weight"] = Role.GAMMA
    if "bias" in leaves:
        roles["bias"] = Role.BETA
    return _norm_class(last), roles


def _expert_roles(leaves: dict[str, NamedTensor], roles: dict[str, Role]) -> dict[str, Role]:
    """A MoE layer's experts stacked in one module (transformers' fused
    experts: gpt-oss's ``gate_up_proj`` [E, H, 2*I] and ``down_proj``
    [E, I, H], Mixtral's and Qwen-MoE's from transformers 5): each stack
    of weights a kernel, each ``*_bias`` [E, out] a bias. A stack's
    quantization constants (FP8 experts' ``gate_up_proj_scale_inv``
    [E, 2I/128, H/128]) are no kernel."""
    for leaf, tensor in leaves.items():
        if leaf.endswith("_bias"):
            roles[leaf] = Role.BIAS
        elif len(tensor.shape) == 3 and not EXPERT_CONSTANT.search(leaf):
            roles.setdefault(leaf, Role.KERNEL)
    return roles


# A fused experts module's per-stack quantization constants: gate_up_proj_scale_inv, down_proj_scale, ..._zero
EXPERT_CONSTANT = re.compile(r"_(scales?|scale_inv|zero(_point)?s?|absmax|global_scale)$")


def _rnn_class(leaves: dict[str, NamedTensor]) -> str:
    """By the gate count: ``weight_ih`` is [gates*hidden, in]; the hidden
    size is ``weight_hh``'s columns, or with ``proj_size`` (an LSTM's
    ``weight_hr`` [proj, hidden]) ``weight_hr``'s (review 41, 7)."""
    ih, hh, hr = leaves.get("weight_ih_l0"), leaves.get("weight_hh_l0"), leaves.get("weight_hr_l0")
    if hr is not None and len(hr.shape) == 2 and hr.shape[1]:
        hidden = hr.shape[1]
    elif hh is not None and len(hh.shape) == 2 and hh.shape[1]:
        hidden = hh.shape[1]
    else:
        return "RNN"
    return RNN_GATES.get(ih.shape[0] // hidden, "RNN") if ih is not None else "RNN"


def _norm_class(name: str) -> str:
    lower = name.lower()
    if "rms" in lower:
        return "RMSNorm"
    if "group" in lower or re.search(r"(^|_)gn", lower):
        return "GroupNorm"
    if "layer" in lower or re.search(r"(^|_)ln|ln(_|$)|norm", lower):
        return "LayerNorm"
    return "Norm"


# ---------------------------------------------------------------------------
# the checkpoint
# ---------------------------------------------------------------------------
def is_state_dict(value: Any) -> bool:
    if not isinstance(value, dict) or not value:
        return False
    if not all(isinstance(k, str) for k in value):
        return False
    tensors = sum(isinstance(v, TensorRef) for v in value.values())
    others = [k for k, v in value.items() if not isinstance(v, TensorRef)]
    packed = {k for k in others if torch_ao.is_packed_entry(k, value[k])}
    # torch.ao's quantized Linear keeps (weight, bias) and its dtype beside the tensors
    return tensors + len(packed) > 0 and all(k.endswith(("_extra_state", torch_ao.PACKED_DTYPE)) or k in packed
                                             for k in others)


def find_state_dict(obj: Any, notes: list[str] | None = None) -> tuple[str | None, dict | None]:
    """(key, state_dict) of the model's weights; (None, obj) for a bare
    state_dict; a whole module (``torch.save(model)``) flattened from its
    records (``torch_modules``); else the state dicts a checkpoint keeps
    under keys of its own (``torch_layouts``, what it did told in ``notes``)."""
    weights = _weights(obj, nested=False)
    if weights is not None or not isinstance(obj, dict):
        return None, weights
    for key in (*STATE_DICT_KEYS, *EMA_KEYS):
        weights = _weights(obj.get(key))
        if weights is not None:
            return key, weights
    for key in STATE_DICT_KEYS:  # one level deeper: {"model": {"state_dict": ...}}
        inner = obj.get(key)
        if isinstance(inner, dict):
            for sub in STATE_DICT_KEYS:
                if is_state_dict(inner.get(sub)):
                    return f"{key}.{sub}", inner[sub]
    for key, inner in obj.items():  # under a key of its own: Diffusion Policy's {"state_dicts": {"model": ...}}
        if isinstance(key, str) and isinstance(inner, dict) and not is_optimizer_state(inner):
            for sub in STATE_DICT_KEYS:
                weights = _weights(inner.get(sub))
                if weights is not None:
                    return f"{key}.{sub}", weights
    found = None if is_optimizer_state(obj) else several_state_dicts(obj, _weights)  # its "state" holds no model
    if found is None:
        return None, None
    if notes is not None:
        notes.extend(found[2])
    return found[0], found[1]


def _weights(value: Any, nested: bool = True) -> dict | None:
    """``value`` as a state dict: itself, a pickled module's flattened, or
    (``nested``) a dict of dicts of tensors flattened (``torch_layouts``)."""
    if is_state_dict(value):
        return value
    if is_module_record(value):
        return module_state_dict(value)
    return nested_state_dict(value) if nested else None


def find_optimizer(obj: Any, notes: list[str], model_key: str | None = None) -> tuple[str | None, dict | None]:
    """(key, optimizer state dict): under a known key, Lightning's list, or
    any others the checkpoint keeps (``torch_layouts``: several merged, in
    the order of the state dicts ``model_key`` names)."""
    if is_optimizer_state(obj):
        return None, obj
    if optimizer_object_state(obj) is not None:
        notes.append(f"a pickled optimizer object ({obj.name}): read from its record, never imported")
        return None, optimizer_object_state(obj)
    if not isinstance(obj, dict):
        return None, None
    for key in OPTIMIZER_KEYS:
        if is_optimizer_state(obj.get(key)):
            return key, obj[key]
        pickled = optimizer_object_state(obj.get(key))
        if pickled is not None:
            notes.append(f"{key}: a pickled optimizer object ({obj[key].name}), read from its record, never "
                         "imported")
            return key, pickled
    states = obj.get("optimizer_states")  # Lightning: one per optimizer
    if isinstance(states, list):
        found = [s for s in states if is_optimizer_state(s)]
        if len(found) > 1:
            notes.append(f"{len(found)} optimizers saved (optimizer_states): the first is described; the "
                         "parameters it does not update are trained by the others, not frozen")
            return "optimizer_states", {**found[0], PARTIAL: True}  # review 33, D5
        if found:
            return "optimizer_states", found[0]
    others = optimizer_states(obj)
    if not others:
        return None, None
    return merged_optimizer(others, (model_key or "").split("+"), notes)


def tensors_of(state_dict: dict, archive, quantized: dict[str, int] | None = None,
               notes: list[str] | None = None) -> list[NamedTensor]:
    """A torch state_dict's tensors as ``NamedTensor``s reading from
    ``archive``; quantized weights as the float parameters they stand for
    (``bnb_quantized.dequantized_checkpoint``), counted by kind into
    ``quantized``, those not decoded told in ``notes``."""
    out, source = stored_tensors_of(state_dict, archive)
    if archive is None or not hasattr(archive, "stored_bytes"):
        return out
    found_ao = torch_ao.kinds(source.refs.values())
    if found_ao and notes is not None:
        notes.append(torch_ao.note(found_ao))
    out, found = dequantized_checkpoint(out, source, archive.options.chunk_bytes, notes=notes)
    for kind, count in found.items():
        if quantized is not None:
            quantized[kind] = quantized.get(kind, 0) + count
    return out


def stored_tensors_of(state_dict: dict, archive) -> tuple[list[NamedTensor], ArchiveSource]:
    """A torch state_dict's tensors as stored, and where their bytes are
    (a sharded save dequantizes over all its shards at once: ``hf_folder``)."""
    out: list[NamedTensor] = []
    refs: dict[str, TensorRef] = {}
    for name, value in torch_ao.expand_state_dict(state_dict).items():
        if isinstance(value, QTensorRef):
            out.append(torch_ao.quantized_tensor(name, value, archive))
            refs[name] = value
        elif isinstance(value, TensorRef):
            out.append(NamedTensor(name, value.shape, value.dtype, value.alias_key(), stats_reader(archive, value)))
            refs[name] = value
    return out, ArchiveSource(archive, refs)


class ArchiveSource:
    """A torch archive's tensors by state_dict name (``bnb_quantized``'s
    TensorSource): values and bytes read from their storages; None for a
    tensor it cannot read (too large a strided view or compressed storage)."""

    def __init__(self, archive, refs: dict[str, TensorRef]):
        self.archive, self.refs = archive, refs

    def values(self, name: str):
        return self.archive.values(self.refs[name])

    def stored_bytes(self, name: str, start: int, stop: int):
        return self.archive.stored_bytes(self.refs[name], start, stop)


def stats_reader(archive, tensor: TensorRef) -> Callable[[], WeightStats | None]:
    return lambda: archive.stats(tensor)


def describe(obj: Any, archive, path: Path, options: ReadOptions, *, fmt: str = "torch_checkpoint",
             model_tensors: list[NamedTensor] | None = None, ordered: bool = True, hint: str | None = None,
             schedule: str | None = None, optimizer_note: bool = True, peaks: list | None = None) -> Model:
    """The ``Model`` a checkpoint's objects describe. ``model_tensors``
    (a Trainer folder's safetensors) stands in for a state_dict in ``obj``;
    ``peaks``: the scheduler's peak learning rates where its state lies in
    another file (a Trainer folder's ``scheduler.pt``)."""
    model = Model(path=str(path), format=fmt, framework="pytorch")
    notes = model.notes
    key, state_dict = find_state_dict(obj, notes)
    if key in EMA_KEYS:
        notes.append(f"the weights are the checkpoint's {key!r} entry, the exponential moving average of the "
                     "trained weights (it holds no other model)")
    quantized: dict[str, int] = {}
    if model_tensors is None and state_dict is not None:
        undecoded: list[str] = []
        model_tensors = tensors_of(state_dict, archive, quantized, undecoded)
        if quantized:
            notes.append(quantized_note(quantized))
        notes.extend(undecoded)
    opt_key, opt_state = find_optimizer(obj, notes, key)
    if model_tensors is None and opt_state is None:
        keys = ", ".join(sorted(str(k) for k in obj)[:8]) if isinstance(obj, dict) else type(obj).__name__
        raise ModelReadError(f"no model weights or optimizer state in this checkpoint (it holds {keys})")
    slots: list = []
    if model_tensors is not None:
        model.layers, slots = build_layers(model_tensors, options, notes)
        if isinstance(state_dict, ModuleStateDict):
            apply_module_records(model, state_dict, ema=key in EMA_KEYS)
            # parameters saved with requires_grad=False are in no optimizer
            # built from the trainable ones (review 41, 2), but one built from
            # model.parameters(), or a sub-model's, may hold them (review 43, 6):
            # a preference where several matches fit, not a filter
            frozen = state_dict.frozen if key not in EMA_KEYS else set()
            slots = [dataclasses.replace(slot, recorded_frozen=slot.location in frozen)
                     for slot in slots if slot.location not in state_dict.buffers]
    else:
        notes.append("optimizer state only: no model weights, so parameter names are unknown")
    if opt_state is not None:
        schedule = schedule or scheduler_name(obj)
        model.optimizer = describe_optimizer(opt_state, slots, ordered=ordered, hint=hint, schedule=schedule,
                                             scalar=archive.scalar if archive is not None else (lambda t: None),
                                             notes=notes, peaks=peaks or scheduler_peaks(obj))
        if not opt_state.get(PARTIAL):
            _mark_frozen(model)
        plateau = plateau_note(obj, model.optimizer)
        if plateau:
            notes.append(plateau)
    elif model_tensors is not None and optimizer_note:
        notes.append("no optimizer state saved: pass --optimizer, --learning-rate and --weight-decay to check decay")
    _attach_extras(model, obj, key, opt_key)
    _note_records(model, getattr(archive, "record_classes", set()), state_dict)
    if archive is not None and archive.compressed_storages:
        notes.append(f"{archive.compressed_storages} tensors sit in compressed storages: "
                     "their statistics were not read")
    return model


def apply_module_records(model: Model, state: ModuleStateDict, *, ema: bool = False) -> None:
    """What a pickled module records beyond a state dict: each layer's
    class (an ``Embedding`` is a table whatever its name), the
    parameters saved with ``requires_grad=False``, and its buffers other
    than running statistics left out, as ``model.parameters()`` leaves them
    (no optimizer trains them)."""
    wrapper = wrapper_prefix(list(state))  # layers are named without it (build_layers)
    for layer in model.layers:
        recorded = state.classes.get(wrapper + ("" if layer.path == ROOT_LAYER_NAME else layer.path))
        if recorded is None:
            continue
        layer.class_name = short_class(recorded)
        for var in layer.variables:
            if layer.class_name in ("Embedding", "EmbeddingBag") and var.role is Role.KERNEL:
                var.role = Role.EMBEDDINGS
    buffers = [var.location for layer in model.layers for var in layer.variables
               if var.location in state.buffers and not var.role.is_statistic]
    for layer in model.layers:
        layer.variables = [var for var in layer.variables if var.location not in buffers]
    model.layers = [layer for layer in model.layers if layer.variables]
    if buffers:
        model.notes.append(f"{len(buffers)} buffers of the pickled module not counted ({', '.join(buffers[:3])}"
                           f"{'...' if len(buffers) > 3 else ''}): torch counts no buffer among the parameters")
    frozen = 0
    parameters = [var for _, var in model.variables() if not var.role.is_statistic]
    for var in parameters:
        # an EMA copy's flags are not the training's: ultralytics' ModelEMA
        # sets requires_grad=False on every parameter of its copy
        if var.location in state.frozen and var.trainable and not ema:
            var.trainable = False
            frozen += 1
    if ema and state.frozen:
        frozen_text = (f", its {len(state.frozen)} parameter tensors saved with requires_grad=False not counted "
                       "frozen: an average's flags (ultralytics' ModelEMA freezes its copy) are not the training's")
    elif frozen and frozen == len(parameters):
        frozen_text = (", every parameter saved with requires_grad=False (a checkpoint stripped for inference, as "
                       "ultralytics' strip_optimizer writes): all counted frozen")
    else:
        frozen_text = f", {frozen} parameter tensors saved with requires_grad=False counted frozen" if frozen else ""
    others = sorted({name for name in state.classes.values() if not name.startswith("torch.nn.")})
    model.notes.append(
        f"a whole module pickled with torch.save(model) ({state.root_class}): read from its records, its classes "
        "never imported" + frozen_text + (f"; classes of its own: {', '.join(others[:4])}" if others else "")
        + "; torch.load(weights_only=True) refuses such a file")


def _note_records(model: Model, classes: set[str], state_dict: Any) -> None:
    """Objects of classes a tensor checkpoint does not need (training
    arguments, numpy scalars, configs), kept as records: named once."""
    modules = set(state_dict.classes.values()) if isinstance(state_dict, ModuleStateDict) else set()
    others = sorted(name for name in classes - modules if not name.startswith(("builtins.", "__torch__.")))
    if others:
        shown = ", ".join(one_line(name, 120) for name in others[:5]) + (
            f" and {len(others) - 5} more" if len(others) > 5 else "")
        model.notes.append(f"the checkpoint also names {len(others)} classes or functions reglint does not "
                           f"import ({shown}): its objects of them are inert records, nothing run")


# torch.optim.lr_scheduler state dicts do not name their class: the settings do.
SCHEDULER_KEYS = (("_schedule_phases", "OneCycleLR"), ("max_lrs", "CyclicLR"), ("_milestones", "SequentialLR"),
                  ("_schedulers", "ChainedScheduler"),
                  ("T_0", "CosineAnnealingWarmRestarts"), ("T_max", "CosineAnnealingLR"),
                  ("milestones", "MultiStepLR"), ("step_size", "StepLR"), ("lr_lambdas", "LambdaLR"),
                  ("patience", "ReduceLROnPlateau"), ("power", "PolynomialLR"), ("start_factor", "LinearLR"),
                  ("total_iters", "ConstantLR"), ("gamma", "ExponentialLR"))


def scheduler_state(obj: Any) -> dict | None:
    """The state of the lr scheduler saved beside the optimizer (Lightning's
    ``lr_schedulers``, a ``scheduler``/``lr_scheduler`` entry)."""
    if not isinstance(obj, dict):
        return None
    found = obj.get("lr_schedulers")
    state = found[0] if isinstance(found, list) and found else obj.get("scheduler", obj.get("lr_scheduler"))
    return state if isinstance(state, dict) else None


def scheduler_peaks(obj: Any) -> list | None:
    """Each param group's peak learning rate where the scheduler keeps it
    in its own state (CyclicLR's ``max_lrs``; OneCycleLR's is the group's
    ``max_lr``)."""
    state = scheduler_state(obj)
    peaks = state.get("max_lrs") if state is not None else None
    return list(peaks) if isinstance(peaks, (list, tuple)) else None


def scheduler_name(obj: Any) -> str | None:
    """The lr scheduler saved beside the optimizer, by its settings."""
    state = scheduler_state(obj)
    if state is None:
        return None
    for key, name in SCHEDULER_KEYS:
        if key in state:
            return name
    return None


def plateau_note(obj: Any, opt) -> str | None:
    """ReduceLROnPlateau keeps no starting rate (no ``initial_lr``): the
    saved lr is the one after every cut so far, and the rules judge it
    (review 41, 6: a run trained at 0.1 read as lr 1e-4, unsaid)."""
    state = scheduler_state(obj)
    if scheduler_name(obj) != "ReduceLROnPlateau" or state is None or opt is None or opt.learning_rate is None:
        return None
    factor = number(state.get("factor"))
    cuts = f"by {factor:g} " if factor else ""
    return (f"ReduceLROnPlateau: it cuts the learning rate {cuts}whenever the monitored metric stalls and keeps no "
            f"starting rate, so lr {opt.learning_rate.initial:.3g} is the rate after any cuts so far, which the "
            f"rules judge; earlier steps may have run at a higher one (--learning-rate sets the rate to judge)")


def _mark_frozen(model: Model) -> None:
    """Parameters no param group updates are frozen (or another optimizer's).
    Where the mapping is exact, every parameter outside the groups; where it
    is uncertain, only those whose shape no group's state holds
    (``Optimizer.not_updated``): which of several same-shaped parameters
    the optimizer left out is a guess, and a guess would name a wrong layer
    frozen (review 43, 5 and 7); a note says how many values are left."""
    opt = model.optimizer
    if opt is None or not opt.param_groups or not model.layers:
        return
    if all(g.mapping == "exact" for g in opt.param_groups):
        updated = {loc for g in opt.param_groups for loc in g.variables} - set(opt.not_updated or ())
        for _, var in model.variables():
            if var.trainable and var.location not in updated:
                var.trainable = False
        return
    certain = set(opt.not_updated or ())
    members = {loc for g in opt.param_groups for loc in g.variables}
    guessed = 0
    for _, var in model.variables():
        if var.trainable and var.location in certain:
            var.trainable = False
        elif var.trainable and var.location not in members:
            guessed += var.size
    if guessed and members:
        model.notes.append(f"{guessed:,} values of parameters shaped like those the optimizer updates are left out of "
                           f"its groups, but which of the same-shaped parameters is not told by the file: they are "
                           f"counted trainable")


def _attach_extras(model: Model, obj: Any, key: str | None, opt_key: str | None) -> None:
    meta: dict[str, Any] = {"state_dict_key": key, "optimizer_key": opt_key}
    if isinstance(obj, dict):
        meta["checkpoint_keys"] = [str(k) for k in list(obj)[:50]]
        for name in ("epoch", "global_step", "step"):
            value = number(obj.get(name))
            if value is not None:
                meta[name] = int(value)
        version = obj.get("pytorch-lightning_version")
        if isinstance(version, str):
            model.format = "lightning_checkpoint"
            model.framework_version = f"Lightning {version}"
    model.metadata.update(meta)
    opt = model.optimizer
    if opt is not None and not opt.iterations and meta.get("global_step"):
        opt.iterations = meta["global_step"]

