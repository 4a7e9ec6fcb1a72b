"""Record ground truth for the real-world Keras HDF5 corpus.

For every ``*.h5`` / ``*.hdf5`` / ``*.keras`` file in the corpus folder this
script records what Keras itself reports (parameter counts after loading) and
what the file stores (elements in the weight datasets), and writes
``tests/data/corpus_truth.json``.  The corpus is read-only and is never copied.

Usage (from the repository root)::

    nice .venv/bin/python tests/data/make_corpus_truth.py \
        [--corpus /work/shared/corpus/keras-dl4j] [--out tests/data/corpus_truth.json]

Loading order: ``tf_keras.models.load_model(p, compile=False)`` first, then
``keras.saving.load_model(p, compile=False, safe_mode=True)``; every exception
is caught, each load is guarded by a 60 s ``signal.alarm``.  Files are handled
by a worker subprocess (restarted if it dies, e.g. on a segfault inside TF), so
one pathological file cannot take the whole run down.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CORPUS = "/work/shared/corpus/keras-dl4j"
DEFAULT_OUT = os.path.join(HERE, "corpus_truth.json")
EXTS = (".h5", ".hdf5", ".keras")
LOAD_TIMEOUT_S = 60


# --------------------------------------------------------------------------
# storage side: h5py only
# --------------------------------------------------------------------------
def _attr(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, list):
        return [_attr(x) for x in v]
    return v


def stored_weights(path):
    """Return (info dict) from the HDF5 structure, without Keras."""
    import h5py
    import numpy as np

    info = {
        "has_model_config": False,
        "keras_version": None,
        "backend": None,
        "weights_root": None,
        "stored_weight_elements": None,
        "stored_weight_datasets": None,
        "stored_by_layer": None,
        "has_training_config": False,
        "has_optimizer_weights": False,
    }
    if path.endswith(".keras"):
        info["h5_error"] = "zip (.keras) archive: not an HDF5 file"
        return info
    try:
        f = h5py.File(path, "r")
    except Exception as e:
        info["h5_error"] = f"{type(e).__name__}: {e}"[:300]
        return info
    with f:
        info["has_model_config"] = "model_config" in f.attrs
        info["has_training_config"] = "training_config" in f.attrs
        info["has_optimizer_weights"] = "optimizer_weights" in f
        kv = f.attrs.get("keras_version")
        info["keras_version"] = None if kv is None else _attr(kv)
        be = f.attrs.get("backend")
        info["backend"] = None if be is None else _attr(be)
        if "model_weights" in f:
            root = f["model_weights"]
            info["weights_root"] = "model_weights"
        else:
            root = f
            info["weights_root"] = "/"
        by_layer = {}
        total = 0
        ndsets = 0
        for name in root:
            if root is f and name == "optimizer_weights":
                continue
            obj = root[name]
            n = 0
            if isinstance(obj, h5py.Dataset):
                n = int(np.prod(obj.shape)) if obj.shape else 1
                ndsets += 1
            else:
                dsets = []
                obj.visititems(
                    # visititems calls it before the loop moves on: dsets is this iteration's list
                    lambda _k, o: dsets.append(o) if isinstance(o, h5py.Dataset) else None  # noqa: B023
                )
                for d in dsets:
                    n += int(np.prod(d.shape)) if d.shape else 1
                ndsets += len(dsets)
            by_layer[name] = n
            total += n
        info["stored_weight_elements"] = total
        info["stored_weight_datasets"] = ndsets
        info["stored_by_layer"] = by_layer
    return info


# --------------------------------------------------------------------------
# Keras side (worker process)
# --------------------------------------------------------------------------
class _Timeout(Exception):
    pass


def _alarm(_sig, _frm):
    raise _Timeout(f"load timed out after {LOAD_TIMEOUT_S}s")


def _counts(model):
    seen = set()
    tr = 0
    for w in model.trainable_weights:
        if id(w) in seen:
            continue
        seen.add(id(w))
        tr += int(__import__("numpy").prod(w.shape))
    ntr = 0
    for w in model.non_trainable_weights:
        if id(w) in seen:
            continue
        seen.add(id(w))
        ntr += int(__import__("numpy").prod(w.shape))
    return tr, ntr


def _scrub(msg):
    """Drop what changes from run to run or machine to machine (addresses, folders)."""
    msg = re.sub(r" at 0x[0-9a-fA-F]+", "", msg)
    return re.sub(r"(/[^\s/'\"]+)+/([^\s/'\"]+\.(?:h5|hdf5|keras))", r"\2", msg)


def _short(e):
    msg = f"{type(e).__name__}: {e}".replace("\n", " ")
    return _scrub(msg)[:300]


def load_truth(path):
    import signal

    res = {
        "loader": None,
        "count_params": None,
        "trainable_params": None,
        "non_trainable_params": None,
        "model_class": None,
        "error": None,
        "errors": {},
    }
    signal.signal(signal.SIGALRM, _alarm)

    def attempt(tag, fn, clear):
        try:
            signal.alarm(LOAD_TIMEOUT_S)
            try:
                model = fn()
            finally:
                signal.alarm(0)
            tr, ntr = _counts(model)
            res.update(
                loader=tag,
                count_params=int(model.count_params()),
                trainable_params=tr,
                non_trainable_params=ntr,
                model_class=type(model).__name__,
            )
            return True
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            res["errors"][tag] = _short(e)
            return False
        finally:
            with contextlib.suppress(Exception):
                clear()

    import tf_keras

    ok = attempt(
        "tf_keras",
        lambda: tf_keras.models.load_model(path, compile=False),
        tf_keras.backend.clear_session,
    )
    if not ok:
        import keras

        ok = attempt(
            "keras3",
            lambda: keras.saving.load_model(path, compile=False, safe_mode=True),
            keras.backend.clear_session,
        )
    if not ok:
        res["error"] = res["errors"].get("tf_keras") or res["errors"].get("keras3")
    return res


def worker(files, out_jsonl):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore")
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    with open(out_jsonl, "a") as out:
        for p in files:
            # mark start, so a crash is attributable
            out.write(json.dumps({"_start": os.path.basename(p)}) + "\n")
            out.flush()
            t0 = time.time()
            rec = stored_weights(p)
            rec.update(load_truth(p))
            rec["load_seconds"] = round(time.time() - t0, 2)
            out.write(json.dumps({"file": os.path.basename(p), "rec": rec}) + "\n")
            out.flush()


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--worker", nargs="*")
    ap.add_argument("--jsonl")
    a = ap.parse_args()

    if a.worker is not None:
        worker(a.worker, a.jsonl)
        return

    files = sorted(
        os.path.join(a.corpus, n)
        for n in os.listdir(a.corpus)
        if n.lower().endswith(EXTS) and os.path.isfile(os.path.join(a.corpus, n))
    )
    if a.limit:
        files = files[: a.limit]
    jsonl = a.out + ".partial.jsonl"
    done = {}
    if os.path.exists(jsonl):  # resume
        with open(jsonl) as fh:
            for line in fh:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if "rec" in d:
                    done[d["file"]] = d["rec"]
    todo = [p for p in files if os.path.basename(p) not in done]
    print(f"{len(files)} files, {len(done)} already done, {len(todo)} to do", flush=True)

    batch = 40
    while todo:
        chunk = todo[:batch]
        # Arguments can get long; pass via a file list.
        listfile = jsonl + ".list"
        with open(listfile, "w") as fh:
            json.dump(chunk, fh)
        cmd = [
            sys.executable,
            "-c",
            "import json,sys; sys.argv=['x']; "
            f"sys.path.insert(0, {HERE!r}); import make_corpus_truth as m; "
            f"m.worker(json.load(open({listfile!r})), {jsonl!r})",
        ]
        rc = subprocess.call(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # reread what got done
        started = None
        with open(jsonl) as fh:
            for line in fh:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if "rec" in d:
                    done[d["file"]] = d["rec"]
                elif "_start" in d:
                    started = d["_start"]
        if rc != 0 and started is not None and started not in done:
            # the worker died on this file
            rec = stored_weights(os.path.join(a.corpus, started))
            rec.update(
                loader=None, count_params=None, trainable_params=None,
                non_trainable_params=None, model_class=None,
                error=f"loader process died (exit code {rc})", errors={},
            )
            done[started] = rec
            with open(jsonl, "a") as fh:
                fh.write(json.dumps({"file": started, "rec": rec}) + "\n")
        todo = [p for p in todo if os.path.basename(p) not in done]
        print(f"  {len(done)}/{len(files)} done (worker rc={rc})", flush=True)

    truth = {os.path.basename(p): done[os.path.basename(p)] for p in files}
    for rec in truth.values():  # timing is not ground truth; keep the JSON stable
        rec.pop("load_seconds", None)
    with open(a.out, "w") as fh:
        json.dump(truth, fh, indent=1, sort_keys=True)
        fh.write("\n")
    for ext in ("", ".list"):
        with contextlib.suppress(OSError):
            os.remove(jsonl + ext)
    n_tf = sum(1 for r in truth.values() if r["loader"] == "tf_keras")
    n_k3 = sum(1 for r in truth.values() if r["loader"] == "keras3")
    n_fail = sum(1 for r in truth.values() if r["loader"] is None)
    print(f"wrote {a.out}: {len(truth)} files; tf_keras={n_tf} keras3={n_k3} failed={n_fail}")


if __name__ == "__main__":
    main()
