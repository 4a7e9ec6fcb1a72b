"""``reglint profile --data`` on the embedding probe's runs that static rules
cannot judge: the kernels alone at L2 0.1 under Adam and RMSprop (the table
unpenalized), where the flattened model trained and the bag-of-tokens,
LSTM and Conv1D ones mostly collapsed (bench/CALIBRATION.md, "Small tables
feeding penalized kernels").

    .venv/bin/python bench/emb_probe.py run --only kernels --jobs 2   # the outcomes, first
    .venv/bin/python bench/emb_probe_profile.py                       # ~4 min on 2 cores

Each run's model is rebuilt untrained from its spec and seed (as the probe
built it) under ``bench/out/emb_probe/models``, then profiled with its
data set's training tokens as ``--data`` at the training's length
(``--epochs``), batch 32. Prints RL023's verdict and the measured errors
against the real training's outcome, then the tally.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
OUT = HERE / "out" / "emb_probe"


def save_model(spec: dict, path: Path) -> None:
    import keras
    from calibration.data import load_dataset
    from calibration.grid import OPTIMIZERS
    from emb_probe import build

    keras.utils.set_random_seed(1000 + spec["seed"])
    model, loss = build(load_dataset(spec["dataset"]), spec)
    cls, kwargs, _ = OPTIMIZERS[spec["opt"]]
    model.compile(optimizer=getattr(keras.optimizers, cls)(**kwargs), loss=loss)
    model.save(path)


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import numpy as np
    from calibration.data import load_dataset
    from emb_probe import EPOCHS, outcome

    recs = [json.loads(line) for line in (OUT / "runs.jsonl").read_text().splitlines()]
    base = {(r["dataset"], r["arch"], r["opt"], r["seed"], r.get("init", "small")): r["val"]
            for r in recs if r["placement"] == "none"}
    (OUT / "models").mkdir(parents=True, exist_ok=True)
    for ds in EPOCHS:
        data = load_dataset(ds)
        np.savez(OUT / f"{ds}_train.npz", x=data["Ttr"], y=data["ytr"])
    tally: dict[tuple[str, str], int] = {}
    for r in recs:
        if (r["placement"], r["lam"], r.get("init", "small")) != ("dense", 0.1, "small") or \
                r["opt"] not in ("adam", "rmsprop"):
            continue
        model = OUT / "models" / f"{r['run_id']}.keras"
        if not model.exists():
            save_model(r, model)
        done = subprocess.run([sys.executable, "-m", "reglint", "profile", str(model), "--data",
                               str(OUT / f"{r['dataset']}_train.npz"), "--epochs", str(EPOCHS[r["dataset"]]),
                               "--batch-size", "32", "-f", "json"], capture_output=True, text=True)
        findings = json.loads(done.stdout)["files"][0]["findings"]
        errors = sorted({f["code"] for f in findings if f["severity"] == "error" and f.get("measured")})
        result = outcome(r, base[(r["dataset"], r["arch"], r["opt"], r["seed"], "small")])
        verdict = "error" if errors else "none"
        tally[(result, verdict)] = tally.get((result, verdict), 0) + 1
        print(f"{r['run_id']:40} {result:9} measured errors: {', '.join(errors) or '-'}", flush=True)
    for (result, verdict), n in sorted(tally.items()):
        print(f"{result:9} {verdict:5} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
