"""Does AdamW's weight_decay stack with a coupled kernel L2 on a GRU?
Review 9's G8 (kernel L2 0.1 + weight_decay 1, the 20-class set) ended at
chance, and RL007's pull (``2*l2 + l1/sigma``) has no weight-decay term.
This trains the calibration grid's GRU (``calibration.models``, the modern
grid's epochs and seed rule) under AdamW(1e-3) with kernel L2 0.1 and
``weight_decay`` 0, 0.1 and 1, plus the unpenalized baseline (AdamW's
default decay 0.004), on the 20-class set and digits, and prints the
validation accuracy of each: if the decay stacked, accuracy would fall
with it. Quoted in RL007's docstring::

    nice .venv/bin/python bench/stacked_decay_check.py [--out /tmp/stacked-decay]   # 8 trainings, ~3 min
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="/tmp/stacked-decay")
    args = parser.parse_args(argv)
    from calibration import train
    from calibration.grid import _spec

    decay = {"value": None}
    original = train.build_optimizer

    def with_decay(opt, placement, lam):
        """The grid's optimizer with ``weight_decay`` set to the value under test."""
        optimizer, kwargs = original(opt, placement, lam)
        if decay["value"] is not None:
            optimizer.weight_decay = decay["value"]
            kwargs = dict(kwargs, weight_decay=decay["value"])
        return optimizer, kwargs

    train.build_optimizer = with_decay
    print("| data set | kernel L2 | weight_decay | val accuracy | chance |")
    print("|---|---|---|---|---|")
    for dataset in ("synth", "digits"):
        for placement, lam, wd in (("none", 0.0, None), ("l2", 0.1, 0.0), ("l2", 0.1, 0.1), ("l2", 0.1, 1.0)):
            decay["value"] = wd
            spec = _spec(dataset, "gru", "adamw", placement, lam, grid="modern")
            spec["run_id"] += "" if wd is None else f"-wd{wd}"
            rec = train.run_one(spec, args.out)
            shown = "0.004 (default)" if wd is None else f"{wd:g}"
            print(f"| {dataset} | {lam:g} | {shown} | {rec['val_metric']:.3f} | {rec['chance']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
