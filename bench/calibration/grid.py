"""The run specs: which (data set, architecture, optimizer, placement,
lambda) combinations are trained.

Two grids share one output folder and one outcome rule:

- ``classic`` (2026-11-25, ``bench/calibration-runs.jsonl.gz``, 678 runs):
  MLPs, a small CNN, Dense-BatchNorm blocks, an Embedding model; kernel
  L1/L2, biases, BatchNorm gamma, activity, decoupled weight decay.
- ``modern`` (issue 15, ``bench/calibration-runs-modern.jsonl.gz``):
  residual CNNs with BatchNorm, pre-norm and post-norm transformer blocks
  with LayerNorm, LSTM and GRU, the Embedding model; placements gamma+beta,
  kernel L2 + optimizer weight decay together, biases, kernel L2 alone,
  weight decay alone; SGD momentum, AdamW and RMSprop at their usual
  learning rates.
- ``fresh`` (2026-11-30, ``bench/calibration-runs-fresh.jsonl.gz``): the
  families of issue 15's third set that neither grid above has, trained
  after every threshold was fixed and used only for scoring: a separable
  CNN with BatchNorm and a LayerNorm MLP under SGD momentum, AdamW and
  Nadam; kernel L2, kernel L2 + weight decay, gamma+beta L2, weight decay.
- ``third`` (2026-11-30, ``bench/calibration-runs-third.jsonl.gz``): the
  rest of issue 15's third set, also scored only: the post-norm transformer
  and the GRU (which the modern grid trained under AdamW and SGD momentum on
  one or two placements) under SGD momentum, AdamW and Nadam on every
  placement, and every family of the set at kernel L2 up to 10, where the
  static rules' errors start.

Held out when choosing thresholds: whole data sets (wine, synth) and whole
architecture families (``gru``, ``tfm_post``): their runs are only scored.
"""

from __future__ import annotations

HELD_OUT_DATASETS = ("wine", "synth")
# The fresh grid's families never took part in choosing a threshold.
FRESH_ARCHS = ("sep", "mlp_ln")
HELD_OUT_ARCHS = ("gru", "tfm_post", *FRESH_ARCHS)
EPOCHS = {"digits": 20, "breast": 30, "wine": 60, "diabetes": 10, "synth": 20}
# The modern architectures are 3-10x slower per step: fewer epochs, chosen
# in pre-tests so that every lambda = 0 baseline still trains well.
MODERN_EPOCHS = {"digits": 10, "breast": 20, "wine": 40, "synth": 10}
BATCH = 32
MODERN_ARCHS = ("res", "tfm", "tfm_post", "lstm", "gru")
# Architectures trained for the modern grid's epochs (classic ones keep theirs).
SHORT_EPOCH_ARCHS = (*MODERN_ARCHS, *FRESH_ARCHS)

OPTIMIZERS = {
    # key: (class, kwargs, base key for the group baseline)
    "sgd": ("SGD", {"learning_rate": 0.01}, "sgd"),
    "sgd_m": ("SGD", {"learning_rate": 0.03, "momentum": 0.9}, "sgd_m"),
    "sgd_nag": ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}, "sgd_nag"),
    "sgd_hi": ("SGD", {"learning_rate": 0.5}, "sgd_hi"),
    "adam": ("Adam", {"learning_rate": 1e-3}, "adam"),
    "rmsprop": ("RMSprop", {"learning_rate": 1e-3}, "rmsprop"),
    # AdamW's own weight_decay is lambda in the wd placements and Keras'
    # default 0.004 elsewhere (4e-6 per step: inert over these runs, so the
    # group's baseline is plain Adam).
    "adamw": ("AdamW", {"learning_rate": 1e-3}, "adam"),
    "sgdw": ("SGD", {"learning_rate": 0.03, "momentum": 0.9}, "sgd_m"),
    # The ResNet recipe's learning rate (He et al. 2016).
    "sgd_m1": ("SGD", {"learning_rate": 0.1, "momentum": 0.9}, "sgd_m1"),
    "nadam": ("Nadam", {"learning_rate": 1e-3}, "nadam"),
}
# Placements in which the optimizer's weight_decay is lambda.
WD_PLACEMENTS = ("wd", "l2_wd")

# Groups whose lambda=0 baseline fails in pre-tests (diabetes overfits to
# R^2 < 0.2 with BatchNorm + SGD momentum): every run would be excluded.
SKIP_GROUPS = {("diabetes", "bn", "sgd_m")}

LAM_L2 = [1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 10.0]
LAM_L1 = [1e-7, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0]
LAM_COARSE = [1e-3, 1e-2, 0.1, 1.0, 10.0]
LAM_OTHER = [1e-5, 1e-3, 1e-2, 0.1, 1.0, 10.0]
LAM_SGD_HI = [1e-3, 0.1, 0.5, 1.0, 1.5, 2.5, 4.0, 10.0]
LAM_BIAS_HI = [0.1, 0.5, 1.0, 1.5, 2.5, 4.0, 10.0]
LAM_ADAMW = [1e-4, 1e-3, 1e-2, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0]
LAM_SGDW = [1e-4, 1e-3, 1e-2, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0]

# Modern grid lambdas (the transitions issue 15 saw sit at 0.01-0.1).
LAM_NORM = [1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
LAM_STACKED = [1e-3, 1e-2, 3e-2, 0.1, 0.3]
LAM_STACKED_SHORT = [1e-2, 0.1, 0.3]
LAM_KERNEL = [1e-4, 1e-3, 1e-2, 0.1]
LAM_BIAS = [0.1, 1.0, 10.0]
LAM_WD_ADAPTIVE = [0.1, 1.0, 10.0]
LAM_WD_SGD = [1e-3, 1e-2, 0.1]


def run_id(dataset: str, arch: str, opt: str, placement: str, lam: float) -> str:
    return f"{dataset}-{arch}-{opt}-{placement}-{lam:g}"


def _spec(dataset, arch, opt, placement, lam, grid="classic"):
    spec = {"run_id": run_id(dataset, arch, opt, placement, lam), "dataset": dataset, "arch": arch,
            "opt": opt, "placement": placement, "lam": float(lam)}
    if grid != "classic":
        spec["grid"] = grid
    if arch in SHORT_EPOCH_ARCHS:  # classic architectures keep their epochs: a shared run_id is one training
        spec["epochs"] = MODERN_EPOCHS[dataset]
    return spec


def build_grid(kind: str = "full") -> list[dict]:
    """The list of run specs; baselines first so a partial grid is usable.
    ``kind``: ``full`` (the classic grid), ``quick`` (a ~20-run smoke grid),
    ``modern``, ``fresh``, ``third``, ``stream``, ``residual``."""
    if kind == "modern":
        return _with_baselines(_modern_runs(), grid="modern")
    if kind == "fresh":
        return _with_baselines(_fresh_runs(), grid="fresh")
    if kind == "third":
        return _with_baselines(_third_runs(), grid="third")
    if kind == "stream":
        return _with_baselines(_stream_runs(), grid="stream")
    if kind == "residual":
        return _with_baselines(_residual_runs(), grid="residual")
    runs: list[dict] = []
    block = _blocks(runs, "classic")
    if kind == "quick":
        block([("wine", "mlp_s"), ("breast", "mlp_s")], ["adam", "sgd_m"], "l2", [1e-3, 0.3, 10.0])
        block([("wine", "mlp_s")], ["adamw"], "wd", [1e-2, 100.0])
        block([("breast", "mlp_s")], ["sgd_hi"], "bias", [0.5, 3.0])
        block([("wine", "bn")], ["sgd_m"], "gamma", [1e-3, 10.0])
        block([("diabetes", "mlp_s")], ["adam"], "activity", [1e-3, 10.0])
        return _with_baselines(runs)
    core = [("digits", a) for a in ("mlp_s", "mlp_m", "mlp_l", "cnn", "bn", "emb")] + [
        ("breast", "mlp_s"), ("breast", "bn"), ("diabetes", "mlp_s"), ("diabetes", "bn"),
        ("wine", "mlp_s"), ("wine", "bn"), ("synth", "mlp_s"), ("synth", "cnn")]
    block(core, ["adam", "sgd_m"], "l2", LAM_L2)
    four = [(d, "mlp_s") for d in ("digits", "breast", "wine", "synth")]
    block(four, ["sgd_nag", "rmsprop"], "l2", LAM_COARSE)
    block([("digits", "mlp_s"), ("wine", "mlp_s")], ["sgd"], "l2", LAM_COARSE)
    block(four, ["sgd_hi"], "l2", LAM_SGD_HI)
    l1_pairs = [("digits", "mlp_s"), ("breast", "mlp_s"), ("wine", "mlp_s"), ("synth", "mlp_s")]
    block(l1_pairs, ["adam", "sgd_m"], "l1", LAM_L1)
    block([("digits", "mlp_s"), ("wine", "mlp_s")], ["sgd"], "l1", LAM_COARSE)
    block([("digits", "mlp_s")], ["adam", "sgd_m"], "l1l2", LAM_OTHER)
    block([("digits", "mlp_s"), ("wine", "mlp_s")], ["adam", "sgd_m"], "bias", LAM_COARSE)
    block(four, ["sgd_hi"], "bias", LAM_BIAS_HI)
    block([(d, "bn") for d in ("digits", "wine")], ["adam", "sgd_m"], "gamma", LAM_OTHER)
    block(four, ["adam", "sgd_m"], "activity", LAM_OTHER)
    block([("digits", "mlp_s"), ("digits", "bn"), ("breast", "mlp_s"), ("diabetes", "mlp_s"),
           ("wine", "mlp_s"), ("synth", "mlp_s")], ["adamw"], "wd", LAM_ADAMW)
    block([("digits", "mlp_s"), ("digits", "bn"), ("breast", "mlp_s"), ("wine", "mlp_s"), ("synth", "mlp_s")],
          ["sgdw"], "wd", LAM_SGDW)
    return _with_baselines(runs)


def _blocks(runs: list[dict], grid: str):
    def block(pairs, opts, placement, lams):
        for dataset, arch in pairs:
            for opt in opts:
                if (dataset, arch, OPTIMIZERS[opt][2]) in SKIP_GROUPS:
                    continue
                for lam in lams:
                    runs.append(_spec(dataset, arch, opt, placement, lam, grid))
    return block


def _modern_runs() -> list[dict]:
    """Residual/BatchNorm, transformers, recurrent nets and embeddings under
    the placements issue 15 found misjudged. Sized for two shared cores: the
    residual CNN on all four classification sets and three optimizers, the
    others on two or three sets under AdamW and SGD momentum, most
    informative blocks first (a partial grid is usable)."""
    runs: list[dict] = []
    block = _blocks(runs, "modern")
    four, three, two = ("digits", "breast", "wine", "synth"), ("digits", "breast", "wine"), ("digits", "wine")
    sgd_for = {"res": "sgd_m1", "tfm": "sgd_m", "tfm_post": "sgd_m", "lstm": "sgd_m", "gru": "sgd_m",
               "emb": "sgd_m"}

    def each(archs, datasets, placement, lams, opts=("adamw", "sgd")):
        for arch in archs:
            names = [sgd_for[arch] if o == "sgd" else o for o in opts]
            block([(d, arch) for d in datasets], names, placement, lams)

    each(("res",), four, "gamma_beta", LAM_NORM, opts=("adamw", "rmsprop", "sgd"))
    each(("res",), four, "l2_wd", LAM_STACKED, opts=("adamw", "rmsprop", "sgd"))
    each(("res",), four, "l2", LAM_KERNEL)
    each(("tfm",), three, "gamma_beta", LAM_NORM)
    each(("tfm",), three, "l2_wd", LAM_STACKED)
    each(("lstm", "gru"), three, "bias", LAM_BIAS)
    each(("tfm_post",), two, "gamma_beta", LAM_NORM)
    each(("lstm", "gru", "emb"), two, "l2_wd", LAM_STACKED_SHORT)
    each(("res",), four, "wd", LAM_WD_ADAPTIVE, opts=("adamw",))
    each(("res",), four, "wd", LAM_WD_SGD, opts=("sgd",))
    return runs


# Fresh grid lambdas: the same decades as the modern grid's.
LAM_FRESH_KERNEL = [1e-3, 1e-2, 0.1, 1.0]
LAM_FRESH_STACKED = [1e-2, 0.1, 0.3]
LAM_FRESH_NORM = [1e-2, 0.1, 1.0]


def _fresh_runs() -> list[dict]:
    """Issue 15's third set, the families no threshold was chosen on: a
    separable CNN with BatchNorm (``sep``) and a LayerNorm MLP (``mlp_ln``)
    on the four classification sets, under SGD momentum, AdamW and Nadam."""
    runs: list[dict] = []
    block = _blocks(runs, "fresh")
    pairs = [(d, a) for a in FRESH_ARCHS for d in ("digits", "breast", "wine", "synth")]
    opts = ["sgd_m", "adamw", "nadam"]
    block(pairs, opts, "l2", LAM_FRESH_KERNEL)
    block(pairs, opts, "l2_wd", LAM_FRESH_STACKED)
    block(pairs, opts, "gamma_beta", LAM_FRESH_NORM)
    block(pairs, ["adamw", "nadam"], "wd", LAM_WD_ADAPTIVE)
    block(pairs, ["sgd_m"], "wd", LAM_WD_SGD)
    return runs


# Third grid: kernel L2 one decade past the fresh grid's, where the classic
# grid's wrecks begin.
LAM_THIRD_KERNEL = [1e-3, 1e-2, 0.1, 1.0, 10.0]


def _third_runs() -> list[dict]:
    """Issue 15's third set where the grids above left it out: the
    post-norm transformer and the GRU under SGD momentum, AdamW and Nadam on
    every placement they have (the GRU has no normalization: no gamma+beta),
    then kernel L2 10 on the fresh grid's two families. Data sets: digits,
    breast cancer and wine (the modern grid's recurrent and transformer
    sets; the 20-class set's 2,000 examples make a GRU run 3x longer)."""
    runs: list[dict] = []
    block = _blocks(runs, "third")
    opts = ["sgd_m", "adamw", "nadam"]
    for arch in ("tfm_post", "gru"):
        pairs = [(d, arch) for d in ("digits", "breast", "wine")]
        block(pairs, opts, "l2", LAM_THIRD_KERNEL)
        block(pairs, opts, "l2_wd", LAM_FRESH_STACKED)
        if arch == "tfm_post":
            block(pairs, opts, "gamma_beta", LAM_FRESH_NORM)
        block(pairs, ["adamw", "nadam"], "wd", LAM_WD_ADAPTIVE)
        block(pairs, ["sgd_m"], "wd", LAM_WD_SGD)
    block([(d, a) for a in FRESH_ARCHS for d in ("digits", "breast", "wine", "synth")], opts, "l2", [10.0])
    return runs


# Stream grid: plain kernel L2 on both transformers under SGD momentum, from
# a per-step shrink 2*0.03*l2/0.1 of 0.018 to 6, half-decade steps where the
# third grid's post-norm runs turned from degraded (0.1) to collapsed (1).
LAM_STREAM = [3e-2, 0.1, 0.3, 0.5, 1.0, 1.3, 3.0, 10.0]
LAM_STREAM_NAG = [0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0]
LAM_STREAM_PLAIN = [3.0, 10.0, 20.0, 30.0, 40.0]


def _stream_runs() -> list[dict]:
    """Kernels in series inside a normalized residual stream (a transformer's
    MLP, attention's value and output projections): kernel L2 on the
    pre-norm transformer (a fit family) and the post-norm one (held out)
    under SGD momentum, on digits and breast cancer (fit) and wine (held
    out). No grid above trained the pre-norm block with plain kernel L2."""
    runs: list[dict] = []
    block = _blocks(runs, "stream")
    pairs = [(d, a) for a in ("tfm", "tfm_post") for d in ("digits", "breast", "wine")]
    block(pairs, ["sgd_m"], "l2", LAM_STREAM)
    # the same shrinks from other steps: Nesterov at lr 0.05 (shrink = l2)
    # and plain SGD at lr 0.01 (shrink 0.02*l2)
    block(pairs, ["sgd_nag"], "l2", LAM_STREAM_NAG)
    block(pairs, ["sgd"], "l2", LAM_STREAM_PLAIN)
    return runs


# Residual grid: the kernel L2 the modern grid stopped at (0.1) and on, and
# gamma+beta past 1.
LAM_RESIDUAL_KERNEL = [0.3, 1.0, 3.0, 10.0]
LAM_RESIDUAL_NORM = [3.0, 10.0]


def _residual_runs() -> list[dict]:
    """The residual CNN with BatchNorm where the modern grid stopped: plain
    kernel L2 from 0.3 to 10 and gamma+beta L2 3 and 10, under AdamW,
    RMSprop and SGD momentum at lr 0.1, on the four classification sets.
    Scored only: every level was fixed before it was trained."""
    runs: list[dict] = []
    block = _blocks(runs, "residual")
    pairs = [(d, "res") for d in ("digits", "breast", "wine", "synth")]
    block(pairs, ["adamw", "rmsprop", "sgd_m1"], "l2", LAM_RESIDUAL_KERNEL)
    block(pairs, ["adamw", "rmsprop", "sgd_m1"], "gamma_beta", LAM_RESIDUAL_NORM)
    return runs


def _with_baselines(runs: list[dict], grid: str = "classic") -> list[dict]:
    """One lambda=0 baseline per group (dataset, arch, base optimizer), first."""
    baselines, seen = [], set()
    for spec in runs:
        base = OPTIMIZERS[spec["opt"]][2]
        key = (spec["dataset"], spec["arch"], base)
        if key not in seen:
            seen.add(key)
            baselines.append(_spec(spec["dataset"], spec["arch"], base, "none", 0.0, grid))
    unique, ids = [], set()
    for spec in baselines + runs:
        if spec["run_id"] not in ids:
            ids.add(spec["run_id"])
            unique.append(spec)
    return unique
