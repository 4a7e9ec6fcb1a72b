"""Which variables trained, read from the optimizer's slots.

A Keras 3 optimizer builds its slot variables from
``model.trainable_variables`` at its first step
(``keras/src/optimizers/base_optimizer.py``, ``build``), one per trainable
variable and slot family, each of that variable's shape, and
``model.save`` stores them in ``model.weights.h5`` under
``optimizer/vars/N`` (``optimizer/inner_optimizer/vars`` under a
LossScaleOptimizer). The multiset of their shapes, divided by the number
of families, is the multiset of the trainable variables' shapes when the
model was trained: the one record of trainability a ``.keras`` file holds
for a custom layer, whose ``vars`` carry no flags, and for variables the
file does not store at all (KerasHub's ``enable_lora`` factors, which
``save`` merges into the kernels).

Families per class (Keras 3.0-3.15 ``build`` methods): SGD 1 with
momentum, else 0; Adam, AdamW, Nadam, Adamax, Adadelta, Ftrl, Lamb 2
(Adam and AdamW with ``amsgrad`` 3); RMSprop 1, +1 with momentum, +1
centered; Adagrad, Lion 1; ``use_ema`` and ``gradient_accumulation_steps``
add one each. Scalars are left out (the step counter, the learning rate,
Nadam's ``u_product``), so a trainable scalar is not seen. Adafactor
(factored slots), Muon and custom classes: no reading.

>>> slot_families("Adam", {"amsgrad": True, "use_ema": True})
4
>>> trainable_shapes([(), (), (3, 2), (3, 2), (2,), (2,)], 2)
Counter({(3, 2): 1, (2,): 1})
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from reglint.model import Initializer, Model, Role, Variable
from reglint.readers.h5_index import DATASET

_TWO = {"adam", "adamw", "nadam", "adamax", "adadelta", "ftrl", "lamb"}
_ONE = {"adagrad", "lion"}


def slot_families(class_name: str, config: dict[str, Any]) -> int | None:
    """Slot variables per trainable variable, or None for a class whose
    slots are not one per variable of its shape."""
    name = class_name.lower()
    if name == "sgd":
        own = 1 if _number(config.get("momentum")) else 0
    elif name in _TWO:
        own = 2 + (1 if name in ("adam", "adamw") and config.get("amsgrad") is True else 0)
    elif name == "rmsprop":
        own = 1 + (1 if _number(config.get("momentum")) else 0) + (1 if config.get("centered") is True else 0)
    elif name in _ONE:
        own = 1
    else:
        return None
    accumulate = _number(config.get("gradient_accumulation_steps"))
    return own + (1 if config.get("use_ema") is True else 0) + (1 if accumulate and accumulate > 1 else 0)


def trainable_shapes(stored: list[tuple[int, ...]], families: int) -> Counter | None:
    """The trainable variables' shapes (a multiset) from the optimizer's
    stored variable shapes; None when they do not divide into ``families``
    equal sets (another release's layout, a damaged file)."""
    if families <= 0:
        return None
    counts = Counter(shape for shape in stored if len(shape) > 0)
    if any(count % families for count in counts.values()):
        return None
    return Counter({shape: count // families for shape, count in counts.items()})


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def reconcile_trainable(model: Model, stored: list[tuple[int, ...]]) -> None:
    """Trainable flags of custom layers' variables from the optimizer's
    slots; LoRA factors the file does not store added back. Known layers
    keep the config's flags: where they disagree with the slots, a note."""
    opt = model.optimizer
    families = slot_families(opt.class_name, opt.config) if opt is not None else None
    slots = trainable_shapes(stored, families) if families else None
    if opt is None or slots is None or not slots:
        return
    known = Counter(var.shape for layer in model.layers if not layer.custom
                    for var in layer.variables if var.trainable and var.shape)
    guessed = [(layer, var) for layer in model.layers if layer.custom for var in layer.variables if var.shape]
    if known - slots:
        missing = sum(math.prod(shape) * n for shape, n in (known - slots).items())
        model.notes.append(f"the optimizer's slots ({opt.class_name}) cover {missing:,} fewer values than are counted "
                           "as trainable here: those did not train when it was built (frozen then, or created "
                           "since); the counts are what Keras trains when it loads the file")
        return
    available = slots - known
    if not guessed:
        return
    variables = [var for _layer, var in guessed]
    remaining = _assign(variables, available)
    frozen_kernels = [var for var in variables if not var.trainable and len(var.shape) >= 2]
    lora = _lora_pairs(remaining, frozen_kernels)
    if lora is None and remaining:
        # A LoRA factor can have a stored variable's shape: an attention
        # EinsumDense's B factor (r, head_dim) and the biases (heads,
        # head_dim) when heads == r (KerasHub's BERT, GPT-2 at 2 heads, rank
        # 2). Taken by those biases above, the factors are left unpaired:
        # pair them first, then share what is left.
        lora = _lora_first(available, variables, frozen_kernels)
        if lora is not None:
            remaining = Counter()
    owners = sorted({layer.path for layer, _var in guessed})
    unrecorded = tuple(f"{path}: custom layer " for path in owners)
    model.notes = [note for note in model.notes if not (note.startswith(unrecorded) and "does not record" in note)]
    values = sum(math.prod(shape) * n for shape, n in slots.items())
    note = (f"{', '.join(owners)}: which custom-layer weights trained is read from the optimizer's slots "
            f"({opt.class_name}: {families} per trainable variable; {values:,} trainable values in all)")
    if lora is not None:
        rank, kernels = lora
        layer = next(layer for layer, _var in guessed)
        for i, kernel in enumerate(kernels):
            layer.variables.extend(_lora_factors(kernel, rank, i))
        note += (f"; {2 * len(kernels)} trainable variables are not in the file: rank-{rank} LoRA factors of "
                 f"{len(kernels)} kernel{'s' if len(kernels) > 1 else ''} (Keras' enable_lora: saving merges them "
                 f"into the kernel, which stays frozen), counted under {layer.path}")
    elif remaining:
        extra = sum(math.prod(shape) * n for shape, n in remaining.items())
        note += (f"; {sum(remaining.values())} trainable variables ({extra:,} values, shapes "
                 f"{', '.join(str(s) for s in list(remaining)[:4])}) are not in the file and are not counted")
    model.notes.append(note)


def _assign(variables: list[Variable], available: Counter) -> Counter:
    """Trainable flags from the slots' shapes; the slots no variable
    took. Slots say how many variables of each shape trained, not which:
    among equal shapes, moving statistics (a layout keras_custom
    recognised) come last, the rest in the file's order."""
    left = Counter(available)
    for var in sorted(variables, key=lambda var: var.role.is_statistic):
        var.trainable = left[var.shape] > 0
        left[var.shape] -= var.trainable
    return +left


def _lora_first(available: Counter, variables: list[Variable],
                kernels: list[Variable]) -> tuple[int, list[Variable]] | None:
    """(rank, kernels) when the slots divide into LoRA factor pairs of
    frozen kernels plus one slot for each stored variable that trains,
    the pairs taken first; trainable flags set that way. None (flags
    untouched) when no rank does."""
    for rank, candidates in _candidate_ranks(available, kernels):
        left, paired = _pair(available, candidates, rank)
        if not paired:
            continue
        flags = [var.trainable for var in variables]
        if not _assign(variables, +left) and not any(var.trainable for var in paired):
            return rank, paired
        for var, flag in zip(variables, flags, strict=True):
            var.trainable = flag
    return None


def _lora_pairs(remaining: Counter, kernels: list[Variable]) -> tuple[int, list[Variable]] | None:
    """(rank, kernels) when every slot left over is a LoRA factor pair
    ``kernel.shape[:-1] + (r,)``, ``(r, kernel.shape[-1])`` of a frozen
    kernel (Keras' ``enable_lora`` shapes for Dense, EinsumDense,
    Embedding and convolutions)."""
    for rank, candidates in _candidate_ranks(remaining, kernels):
        left, paired = _pair(remaining, candidates, rank)
        if paired and not +left:
            return rank, paired
    return None


def _pair(slots: Counter, kernels: list[Variable], rank: int) -> tuple[Counter, list[Variable]]:
    """The kernels, in order, whose factor pair ``kernel.shape[:-1] + (r,)``,
    ``(r, kernel.shape[-1])`` the slots hold (each slot used once), and the
    slots left."""
    left, paired = Counter(slots), []
    for kernel in kernels:
        a, b = (*kernel.shape[:-1], rank), (rank, kernel.shape[-1])
        if left[a] > 0 and left[b] > (1 if a == b else 0):
            left[a] -= 1
            left[b] -= 1
            paired.append(kernel)
    return left, paired


# LoRA ranks tried, smallest first: a model has one; a file offering more
# (each a pair of some frozen kernel's factor shapes) is not a LoRA model's.
MAX_RANKS = 64


def _candidate_ranks(available: Counter, kernels: list[Variable]) -> list[tuple[int, list[Variable]]]:
    """(rank, the kernels in order whose two factor shapes the slots hold
    at that rank), for the smallest ``MAX_RANKS`` such ranks. Found by
    set intersection per kernel shape, not by trying every slot's last
    dimension on every kernel (quadratic: a crafted 3 MB file of 3,000 of
    each took 12 s, 12,000 minutes)."""
    by_prefix: dict[tuple[int, ...], set[int]] = {}
    by_last: dict[int, set[int]] = {}
    for shape in available:
        if shape:
            by_prefix.setdefault(shape[:-1], set()).add(shape[-1])
        if len(shape) == 2:
            by_last.setdefault(shape[1], set()).add(shape[0])
    ranks: dict[tuple[int, ...], set[int]] = {}
    for kernel in kernels:
        if kernel.shape not in ranks:
            ranks[kernel.shape] = by_prefix.get(kernel.shape[:-1], set()) & by_last.get(kernel.shape[-1], set())
    chosen = sorted(set().union(*ranks.values()))[:MAX_RANKS]
    return [(rank, [kernel for kernel in kernels if rank in ranks[kernel.shape]]) for rank in chosen]


def _lora_factors(kernel: Variable, rank: int, index: int) -> list[Variable]:
    where = "(optimizer slots: not stored)"
    return [Variable(f"lora_{index}/lora_kernel_a", Role.KERNEL, (*kernel.shape[:-1], rank), location=where,
                     initializer=Initializer(name="he_uniform", config={}), dtype=kernel.dtype),
            Variable(f"lora_{index}/lora_kernel_b", Role.KERNEL, (rank, kernel.shape[-1]), location=where,
                     initializer=Initializer(name="zeros", config={}), dtype=kernel.dtype)]


def stored_slot_shapes(index: Any) -> list[tuple[int, ...]]:
    """The shapes of ``optimizer/vars/N`` in ``N`` order (the inner
    optimizer's under a LossScaleOptimizer), from an ``H5Index``."""
    for where in ("optimizer/inner_optimizer/vars", "optimizer/vars"):
        if index.kind(where) is None:
            continue
        names = sorted((name for name, kind in index.children(where) if name.isdigit() and kind == DATASET), key=int)
        shapes = [tuple(int(d) for d in (index.tensor(f"{where}/{name}").shape or ())) for name in names]
        if any(shapes):
            return shapes
    return []
