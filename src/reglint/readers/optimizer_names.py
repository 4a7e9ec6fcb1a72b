"""The optimizer classes a user may name (``--optimizer``, ``[tool.reglint.context]
optimizer``): those the readers recognise in a file, so that a name given by
hand gets exactly the treatment the same optimizer saved in a file gets.

Keras' names (``keras_objects._OPTIMIZER_NAMES``) and the classes the
PyTorch reader infers from a state dict (``torch_optim``), matched without
regard to case and to a framework's module path (``torch.optim.AdamW``,
``keras.optimizers.SGD``). Where both frameworks spell a class differently
(Keras ``Nadam``, torch ``NAdam``) the Keras spelling is canonical: the rules
compare class names in lower case, so both mean the same.

>>> canonical_optimizer("adamw"), canonical_optimizer("torch.optim.SGD"), canonical_optimizer("Bogus")
('AdamW', 'SGD', None)
"""

from __future__ import annotations

from reglint.readers.keras_objects import _OPTIMIZER_NAMES
from reglint.readers.torch_optim import _RULES

# A wrapper, not an update rule: naming it says nothing about the decay.
_WRAPPERS = ("lossscaleoptimizer",)
# torch classes infer_class returns outside its _RULES table.
_TORCH_EXTRA = ("Adam", "AdamW", "NAdam", "RAdam")
MODULE_PREFIXES = ("torch.optim.", "keras.optimizers.legacy.", "keras.optimizers.", "tf.keras.optimizers.legacy.",
                   "tf.keras.optimizers.", "tensorflow.keras.optimizers.", "tf_keras.optimizers.")


def _known() -> dict[str, str]:
    known = {name.lower(): name for name in (*(rule[0] for rule in _RULES), *_TORCH_EXTRA)}
    known.update({k: v for k, v in _OPTIMIZER_NAMES.items() if k not in _WRAPPERS})
    return known


KNOWN_OPTIMIZERS: dict[str, str] = _known()  # lower-case name -> canonical class name


def canonical_optimizer(name: str) -> str | None:
    """The class name the readers would give ``name``; None when unknown."""
    text = name.strip()
    for prefix in MODULE_PREFIXES:
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
            break
    return KNOWN_OPTIMIZERS.get(text.lower())


TORCH_PREFIX = "torch.optim."


def optimizer_setting(name: str) -> str | None:
    """What ``--optimizer NAME`` is kept as: the canonical class, prefixed
    ``torch.optim.`` when so spelled (PyTorch's decay semantics then apply:
    ``split_setting``); None when unknown.

    >>> optimizer_setting("torch.optim.adam"), optimizer_setting("keras.optimizers.Adam")
    ('torch.optim.Adam', 'Adam')
    """
    canonical = canonical_optimizer(name)
    if canonical is None:
        return None
    return TORCH_PREFIX + canonical if name.strip().lower().startswith(TORCH_PREFIX) else canonical


def checked_optimizer_setting(name: str) -> str:
    """``optimizer_setting``, or ValueError with the message every entry
    point (command line, config file, ``reglint.lint()``) shows.

    >>> checked_optimizer_setting("sgd")
    'SGD'
    """
    setting = optimizer_setting(name)
    if setting is None:
        raise ValueError(unknown_optimizer_message(name))
    return setting


def split_setting(setting: str) -> tuple[str, bool]:
    """(class name, spelled as a torch class) of an ``optimizer_setting``."""
    if setting.startswith(TORCH_PREFIX):
        return setting[len(TORCH_PREFIX):], True
    return setting, False


def known_optimizer_list() -> str:
    """``Adadelta, Adafactor, ...``: for an error message."""
    return ", ".join(sorted(set(KNOWN_OPTIMIZERS.values()), key=str.lower))


def unknown_optimizer_message(name: str) -> str:
    return (f"unknown optimizer {name!r}; known: {known_optimizer_list()} "
            "(any case, torch.optim. or keras.optimizers. prefix allowed)")
