"""Sweep: tiny Hugging Face models of many architectures, converted to GGUF
by llama.cpp's own converter, read by reglint; counts and sums of squares
against torch's, every difference between the two tied to a tensor and a
reason.

A script, not a test (torch, transformers and llama.cpp are not test
dependencies)::

    .venv/bin/python bench/gguf_arch_sweep.py [--out bench/out/gguf_arch] [--types llama gpt2 ...] [--q8-0]

**The torch side** runs in the torch environment (``REGLINT_TORCH_PYTHON``,
default /work/torchenv/bin/python: torch, transformers, tokenizers) as this
same file with ``--torch-side``, one process for every model. Per
architecture of ``bench/hf_arch_sweep.py`` (its shrunk configs, a few
sizes the converter insists on: ``CONFIG``, ``CONFIG_JSON``; and two rope
variants, ``VARIANTS``) it builds the model with seeded random weights of
distinct values (matrices normal(0, 0.05), vectors and saved float buffers
uniform(0.5, 1.5): every tensor's values are its fingerprint), saves it
with ``save_pretrained`` and a word-level ``tokenizer.json`` (Gemma 3's
converter counts its tokens to cut the embedding), and converts the folder
with llama.cpp's ``convert_hf_to_gguf.py`` (``REGLINT_LLAMA_CPP``, default
the sources of llama-cpp-python 0.3.36 under /work/gguf-build, those of
``fixtures/make_gguf_fixtures.py``) at ``--outtype f32`` (values exact)
and, with ``--q8-0``, ``q8_0``. The converter runs in-process with one
change: ``set_vocab`` writes no vocabulary (``_set_vocab_none``). Its BPE
paths refuse a tokenizer whose pre-tokenizer hash they do not know (every
tiny one), and no tensor depends on the vocabulary it writes (BERT's
``self.vocab_size`` is set there and read nowhere else); reglint steps
over a vocabulary without reading it (the fixtures of
``tests/test_gguf_reader.py`` hold real ones).

Then it reads each file back with gguf-py (``GGUFReader``, the dequantized
values summed in float64) and ties every GGUF tensor to torch's parameters
by their values (the multiset: a transpose, llama.cpp's Q/K row
permutation or a reshape keeps it): the same values; ``1 + w`` (Gemma's
norms) or ``-exp(w)`` (Mamba's A from A_log); several parameters merged
(a fused QKV, a MoE layer's experts stacked); part of one parameter (a
fused QKV or gate_up split, rows dropped); a copy of a parameter stored
already; a buffer (DeepSeek's router bias); computed by the converter (no
parameter's values: rope factors). Parameters left over were dropped by
the converter.

**The driver** (this checkout's reglint) lints every GGUF file and the
saved folder with ``reglint -f json`` and checks:

- reglint counts every tensor tied to a parameter as trainable, and no
  buffer or computed tensor, each at the file's count and gguf-py's sum of
  squares (relative 1e-6), at f32 the sum torch's values give;
- each GGUF tensor's role is that of the parameters it came from: by the
  class of their module in torch (Embedding, Linear, Conv, a norm), else
  as reglint reads the saved folder;
- a torch module's weight and bias stored whole stay in one GGUF layer;
- every difference between torch's parameters and the file (dropped,
  sliced, transformed, copied) has a reason in ``REASONS``, read from the
  converter's source.

One line per architecture and a summary; exit 1 when any converted file
disagrees without a reason, or reglint failed on it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from hf_arch_sweep import SMALL, TYPES  # noqa: E402  (bench/ is no package)

TORCH_PY = os.environ.get("REGLINT_TORCH_PYTHON", "/work/torchenv/bin/python")
LLAMA_CPP = Path(os.environ.get("REGLINT_LLAMA_CPP",
                                "/work/gguf-build/llama_cpp_python-0.3.36/vendor/llama.cpp"))
REGLINT = [sys.executable, "-m", "reglint"]
# DeepSeek-V3's MoE and MLA sizes have names of their own (its defaults: 256 experts in 8 groups).
SMALL_MORE = {"n_routed_experts": 4, "n_group": 1, "topk_group": 1, "kv_lora_rank": 16, "q_lora_rank": 16,
              "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 16, "first_k_dense_replace": 1}
# Sizes the converter insists on: DeepSeek's MLA has a key-value head per
# attention head (the converter splits kv_b_proj by num_key_value_heads);
# llama.cpp's Mamba wants d_inner = 2 x d_model; a multi-query Falcon's one
# key-value head must be written (the converter reads num_kv_heads).
CONFIG = {"deepseek_v3": {"num_key_value_heads": 2}, "mamba": {"intermediate_size": 64}, "falcon": {"num_kv_heads": 1}}
# config.json fields transformers 5 no longer writes and the converter
# still reads (KeyError without them): GPT-2's n_ctx, T5's
# decoder_start_token_id (0: the pad token).
CONFIG_JSON = {"gpt2": {"n_ctx": 64}, "t5": {"decoder_start_token_id": 0}}
# Variants beyond the shrunk defaults: rope scaling, for which the
# converter adds rope factors (Llama 3's rope_freqs, Phi-3's
# rope_factors_long/short), tensors that are no parameter.
VARIANTS = {
    "llama+llama3_rope": ("llama", {"rope_parameters": {
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 32}}),
    "phi3+longrope": ("phi3", {"rope_parameters": {
        "rope_type": "longrope", "rope_theta": 10000.0, "short_factor": [1.0 + i / 8 for i in range(8)],
        "long_factor": [2.0 + i / 8 for i in range(8)], "original_max_position_embeddings": 32}}),
}
# The head the converter knows, where AutoModelForCausalLM picks another
# (BERT's causal-LM head is registered under no name the converter reads).
HEADS = {"bert": "AutoModel", "roberta": "AutoModel", "xlm-roberta": "AutoModel", "t5": "AutoModelForSeq2SeqLM"}
# transformers' port writes another class name than the original remote
# code the converter registers, for the same tensor names.
ARCH_ALIAS = {"MptForCausalLM": "MPTForCausalLM"}
TRANSFORMS = {"1 + w": "plus_one", "-exp(w)": "minus_exp"}
# (relation, GGUF architecture, torch name pattern) -> why the file differs
# from torch's parameters there, read from llama.cpp's conversion/*.py.
REASONS: list[tuple[str, str, str, str]] = [
    ("transform", r"gemma.*", r"norm\.weight$",
     "Gemma's RMSNorm scales by (1 + w): the converter stores 1 + w (conversion/gemma.py)"),
    ("transform", r"mamba", r"A_log$", "the converter stores A = -exp(A_log) (conversion/mamba.py)"),
    ("slice", r"bert", r"position_embeddings\.weight$",
     "RoBERTa's first pad_token_id + 1 positions are never used: the converter drops them (conversion/bert.py)"),
    ("dropped", r"bert", r"pooler\.",
     "BERT's pooler is not part of the embedding model llama.cpp runs (conversion/bert.py filter_tensors)"),
]

# Why an architecture the converter registers did not convert.
NOT_CONVERTED = {"gpt_neox": "transformers 5's AutoConfig, through which the converter reads config.json, folds "
                             "rotary_pct into rope_parameters; conversion/gptneox.py still reads rotary_pct"}
# Tensors no parameter's values fill: check_file holds reglint to counting
# none of them among the trainable parameters, which is their explanation.
NO_PARAMETER = {"buffer": "a buffer in torch, no parameter: reglint keeps it as non-trainable state, or skips it",
                "computed": "computed by the converter from the config (rope factors): reglint counts no parameter"}


# ---------------------------------------------------------------------------
# the torch side: build, save, convert, read back, tie tensors to parameters
# ---------------------------------------------------------------------------
def torch_side(out: Path, llama_cpp: Path, types: list[str], outtypes: list[str]) -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)  # before the converter's basicConfig(INFO): quiet
    sys.path.insert(0, str(llama_cpp))
    import convert_hf_to_gguf as conv

    plain = conv.get_model_class

    def no_vocabulary(name: str, mmproj: bool = False) -> Any:
        cls = plain(name, mmproj)
        cls.set_vocab = lambda self: self._set_vocab_none()
        return cls

    conv.get_model_class = no_vocabulary
    rows = [one_type(conv, out, t, outtypes) for t in types]
    (out / "manifest.json").write_text(json.dumps(rows, indent=1))


def one_type(conv: Any, out: Path, t: str, outtypes: list[str]) -> dict:
    folder = out / t
    try:
        row, params, buffers = build(t, folder)
    except Exception as exc:
        return {"type": t, "error": f"not generated: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}"}
    for outtype in outtypes:
        path = out / f"{t}.{outtype}.gguf"
        problem = convert(conv, folder, outtype, path)
        if problem:
            row["error"] = problem
            return row
        row.setdefault("files", {})[outtype] = read_back(path)
    row["relations"] = relate(params, buffers, read_values(out / f"{t}.f32.gguf"))
    return row


def settable(config_class: Any, small: dict) -> dict:
    """The shrunk fields a config has, less its read-only properties (Falcon's head_dim)."""
    defaults = config_class()
    return {k: v for k, v in small.items()
            if hasattr(defaults, k) and not isinstance(getattr(config_class, k, None), property)}


def build(t: str, folder: Path) -> tuple[dict, dict, dict]:
    """Save the tiny model ``t``: its row (torch's numbers), its parameters'
    values and its saved float buffers' (DeepSeek's router bias)."""
    import numpy as np
    import torch
    import transformers
    from transformers import AutoConfig
    from transformers.utils import logging

    logging.set_verbosity_error()
    base, extra = VARIANTS.get(t, (t, {}))
    small = {**SMALL, **SMALL_MORE, **CONFIG.get(base, {})}
    cls = type(AutoConfig.for_model(base))
    cfg = cls(**settable(cls, small), **extra)
    for part in ("text_config", "vision_config"):
        sub = getattr(cfg, part, None)
        if sub is not None:
            setattr(cfg, part, type(sub)(**settable(type(sub), small)))
    torch.manual_seed(0)
    head = getattr(transformers, HEADS.get(base, "AutoModelForCausalLM"))
    try:
        model = head.from_config(cfg)
    except ValueError:  # no such head for this architecture
        model = transformers.AutoModel.from_config(cfg)
    with torch.no_grad():  # distinct values in every tensor: they tie GGUF tensors to parameters
        for param in model.parameters():
            param.normal_(0.0, 0.05) if param.dim() >= 2 else param.uniform_(0.5, 1.5)
        saved = model.state_dict()
        buffers = {n: b for n, b in model.named_buffers() if n in saved and b.is_floating_point()}
        for buffer in buffers.values():
            buffer.uniform_(0.5, 1.5)
    model.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    arch = config["architectures"][0]
    config["architectures"] = [ARCH_ALIAS.get(arch, arch)]
    (folder / "config.json").write_text(json.dumps({**config, **CONFIG_JSON.get(base, {})}, indent=1))
    word_level_tokenizer(folder, getattr(cfg, "vocab_size", None) or SMALL["vocab_size"])
    params = {n: p.detach().float().numpy().ravel() for n, p in model.named_parameters()}  # tied: once
    buffer_values = {n: b.float().numpy().ravel() for n, b in buffers.items()}
    row = {"type": t, "class": type(model).__name__, "arch": config["architectures"][0], "roles": module_roles(model),
           "params": sum(v.size for v in params.values()),
           "sum_sq": sum(float(np.dot(v.astype(np.float64), v)) for v in params.values())}
    return row, params, buffer_values


def module_roles(model: Any) -> dict[str, str]:
    """parameter name -> its role by the class of the module that holds it,
    where that class says (an Embedding's table, a Linear's or Conv's
    weight and bias, a norm's scale and shift)."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    roles = {}
    for prefix, module in model.named_modules():
        if isinstance(module, nn.Embedding):
            table = {"weight": "embeddings"}
        elif isinstance(module, (nn.Linear, Conv1D, nn.Conv1d, nn.Conv2d)):
            table = {"weight": "kernel", "bias": "bias"}
        elif "norm" in type(module).__name__.lower():
            table = {"weight": "gamma", "bias": "beta"}
        else:
            continue
        for leaf, _ in module.named_parameters(recurse=False):
            if leaf in table:
                roles[f"{prefix}.{leaf}" if prefix else leaf] = table[leaf]
    return roles


def word_level_tokenizer(folder: Path, vocab: int) -> None:
    """A tokenizer.json of ``vocab`` whole-word tokens: Gemma 3's converter
    counts its tokens to cut the embedding's rows past them."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tokenizer = Tokenizer(WordLevel({f"w{i}": i for i in range(vocab)}, unk_token="w0"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))


def convert(conv: Any, folder: Path, outtype: str, path: Path) -> str | None:
    """Run llama.cpp's converter on ``folder``; None, or why it did not convert."""
    arch = json.loads((folder / "config.json").read_text())["architectures"][0]
    try:
        conv.get_model_class(arch)
    except NotImplementedError:
        return f"{arch}: not supported by convert_hf_to_gguf.py"
    sys.argv = ["convert_hf_to_gguf.py", str(folder), "--outtype", outtype, "--outfile", str(path),
                "--model-name", folder.name]
    try:
        conv.main()
    except SystemExit as exc:
        return f"{arch}: convert_hf_to_gguf.py exited {exc.code}"
    except Exception as exc:
        return f"{arch}: convert_hf_to_gguf.py failed: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
    return None


def read_values(path: Path) -> dict:
    """GGUF tensor name -> its dequantized values (float32, flat), gguf-py's reading."""
    import gguf
    import numpy as np
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(path)
    return {t.name: dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).ravel()
            for t in reader.tensors}


def read_back(path: Path) -> dict:
    """The file's architecture and, per tensor: torch-order shape, ggml
    type, count and sum of squares (float64)."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(path)
    arch = reader.get_field("general.architecture")
    values = read_values(path)
    tensors = {t.name: {"shape": [int(d) for d in reversed(t.shape.tolist())], "type": t.tensor_type.name,
                        "count": int(values[t.name].size),
                        "sum_sq": float(np.dot(values[t.name].astype(np.float64), values[t.name]))}
               for t in reader.tensors}
    return {"path": str(path), "arch": arch.contents() if arch else None, "tensors": tensors}


def _key(values: Any) -> str:
    import numpy as np

    return hashlib.sha1(np.sort(values).tobytes()).hexdigest()


def _transformed(how: str, values: Any) -> Any:
    import numpy as np

    with np.errstate(all="ignore"):
        return (1.0 + values) if how == "plus_one" else -np.exp(values)


def relate(params: dict, buffers: dict, tensors: dict) -> list[dict]:
    """Tie each GGUF tensor to the parameters whose values it holds (see the
    module's docstring), or to a buffer; parameters left over are "dropped"."""
    used: set[str] = set()
    relations, pending = _same_values(params, buffers, tensors, used)
    relations += _transforms(params, tensors, pending, used)
    relations += _merges(params, tensors, pending, used)
    return relations + _parts_and_leftovers(params, tensors, pending, used)


def _same_values(params: dict, buffers: dict, tensors: dict, used: set[str]) -> tuple[list[dict], list[str]]:
    """Tensors holding one parameter's values (a second time: a copy) or a
    buffer's; and the GGUF tensors left."""
    by_key: dict[str, list[str]] = {}
    for name, values in params.items():
        by_key.setdefault(_key(values), []).append(name)
    buffer_keys = {_key(values): name for name, values in buffers.items()}
    relations, pending = [], []
    for gname, g in tensors.items():
        key = _key(g)
        same = by_key.get(key, [])
        fresh = [n for n in same if n not in used]
        if key in buffer_keys:
            relations.append(_relation("buffer", gname, g, [buffer_keys[key]]))
        elif same:
            relations.append(_relation("same" if fresh else "copy", gname, g, [(fresh or same)[0]]))
            used.add((fresh or same)[0])
        else:
            pending.append(gname)
    return relations, pending


def _transforms(params: dict, tensors: dict, pending: list[str], used: set[str]) -> list[dict]:
    """Tensors holding a function of one parameter's values (``TRANSFORMS``)."""
    import numpy as np

    relations = []
    for gname in list(pending):
        g = np.sort(tensors[gname])
        for name in (n for n in params if n not in used and params[n].size == g.size):
            how = next((label for label, fn in TRANSFORMS.items()
                        if np.allclose(g, np.sort(_transformed(fn, params[name])), rtol=1e-6, atol=1e-6)), None)
            if how:  # the sum of squares torch's values give, in float64
                stored = _transformed(TRANSFORMS[how], params[name].astype(np.float64))
                relations.append({**_relation("transform", gname, tensors[gname], [name]), "how": how,
                                  "expected_sum_sq": float(np.dot(stored, stored))})
                used.add(name)
                pending.remove(gname)
                break
    return relations


def _merges(params: dict, tensors: dict, pending: list[str], used: set[str]) -> list[dict]:
    """Tensors holding several whole parameters (every value of each found in it)."""
    import numpy as np

    relations = []
    for gname in list(pending):
        g = tensors[gname]
        parts = [n for n in params if n not in used and params[n].size < g.size and np.isin(params[n], g).all()]
        if parts and sum(params[n].size for n in parts) == g.size:
            relations.append(_relation("merge", gname, g, parts))
            used.update(parts)
            pending.remove(gname)
    return relations


def _relation(kind: str, gname: str, g: Any, names: list[str]) -> dict:
    import numpy as np

    return {"kind": kind, "gguf": gname, "torch": names, "count": int(g.size),
            "expected_sum_sq": float(np.dot(g.astype(np.float64), g))}


def _parts_and_leftovers(params: dict, tensors: dict, pending: list[str], used: set[str]) -> list[dict]:
    """GGUF tensors that are part of one parameter (split, sliced, or a
    second copy of a parameter stored whole), computed ones, dropped parameters."""
    import numpy as np

    relations, covered = [], {}
    for gname in pending:
        g = tensors[gname]
        host = next((n for n in params if params[n].size > g.size and np.isin(g, params[n]).all()), None)
        if host is None:
            relations.append(_relation("computed", gname, g, []))
            continue
        kind = "copy" if host in used else "part"
        relations.append(_relation(kind, gname, g, [host]))
        covered[host] = covered.get(host, 0) + g.size
    for host, count in covered.items():
        if host not in used and count < params[host].size:
            relations.append({"kind": "slice", "gguf": None, "torch": [host], "count": params[host].size - count,
                              "expected_sum_sq": None})
        used.add(host)
    relations += [{"kind": "dropped", "gguf": None, "torch": [n], "count": int(params[n].size), "expected_sum_sq":
                   None} for n in params if n not in used]
    return relations


# ---------------------------------------------------------------------------
# the driver: reglint on every file, checks, one line per architecture
# ---------------------------------------------------------------------------
def reglint_json(paths: list[Path]) -> dict[str, dict]:
    """reglint's model (or its error) per path, by path."""
    done = subprocess.run([*REGLINT, "-f", "json", "--fail-on", "none", *map(str, paths)], capture_output=True,
                          text=True)
    try:
        files = json.loads(done.stdout)["files"]
    except (json.JSONDecodeError, KeyError):
        return {str(p): {"error": f"reglint exit {done.returncode}: {done.stderr.strip()[:200]}"} for p in paths}
    return {f["path"]: f for f in files}


def variables(model: dict) -> dict[str, dict]:
    """location -> reglint's variable (role, count, sum_sq): a GGUF tensor's
    name, a saved folder's parameter name."""
    found = {}
    for layer in model["layers"]:
        for var in layer["variables"]:
            location = layer["path"] if layer["path"] == var["name"] else f"{layer['path']}.{var['name']}"
            count = 1
            for d in var["shape"]:
                count *= d
            found[location] = {**var, "count": count, "class": layer["class"], "layer": layer["path"]}
    return found


def reason(kind: str, arch: str, torch_names: list[str]) -> str | None:
    for rkind, rarch, pattern, why in REASONS:
        if rkind == kind and re.fullmatch(rarch, arch) and all(re.search(pattern, n) for n in torch_names):
            return why
    return None


def check_file(found: dict[str, dict], tensors: dict, relations: list[dict], exact: bool) -> list[str]:
    """reglint's variables against the file: which tensors it counts, their
    counts and sums of squares (gguf-py's; ``exact`` (f32): torch's values' too)."""
    problems = []
    computed = {r["gguf"] for r in relations if r["kind"] in ("computed", "buffer")}
    for name, t in tensors.items():
        var = found.get(name)
        if name in computed:  # a buffer reglint keeps must be non-trainable state
            if var is not None and var["trainable"]:
                problems.append(f"counts {name} as a parameter: no parameter in torch")
            continue
        if var is None or not var["trainable"]:
            problems.append(f"does not count {name}" + ("" if var is None else " (non-trainable)"))
        elif var["count"] != t["count"] or not _close(var.get("sum_sq"), t["sum_sq"]):
            problems.append(f"{name}: {var['count']} values, sum w^2 {var.get('sum_sq')} (file: {t['count']}, "
                            f"{t['sum_sq']:.6g})")
    problems += [f"counts {name}, not in the file" for name in found if name not in tensors]
    for r in relations if exact else []:
        var = found.get(r["gguf"] or "")
        if var is not None and r["expected_sum_sq"] is not None and not _close(var.get("sum_sq"),
                                                                                r["expected_sum_sq"]):
            problems.append(f"{r['gguf']}: sum w^2 {var.get('sum_sq')} (torch's values: {r['expected_sum_sq']:.6g})")
    return problems


def _close(got: float | None, want: float) -> bool:
    return got is not None and abs(got - want) <= 1e-6 * max(abs(want), 1e-30)


def check_roles(found: dict[str, dict], row: dict, saved: dict[str, dict]) -> list[str]:
    """Each GGUF tensor's role is that of the parameters it holds: by the
    class of their module in torch where it says, else as reglint reads
    the saved folder."""
    problems = []
    for r in row["relations"]:
        var = found.get(r["gguf"] or "")
        if var is None or r["kind"] in ("buffer", "computed"):
            continue
        want = {row["roles"].get(n) or saved.get(n, {}).get("role") for n in r["torch"]} - {None}
        if want and var["role"] not in want:
            problems.append(f"{r['gguf']} is {var['role']}, {'/'.join(sorted(want))} in torch ({r['torch'][0]})")
    return problems


def differences(row: dict, arch: str) -> tuple[list[str], list[str]]:
    """(explained, unexplained) differences between torch's parameters and
    the file, one line per kind and reason."""
    groups: dict[tuple[str, str, str | None], list[dict]] = {}
    for r in row["relations"]:
        if r["kind"] in ("same", "merge", "part"):
            continue  # the same values: no difference to explain
        why = NO_PARAMETER.get(r["kind"]) or reason(r["kind"], arch, r["torch"])
        groups.setdefault((r["kind"], r.get("how", ""), why), []).append(r)
    explained, unexplained = [], []
    for (kind, how, why), found in groups.items():
        first = found[0]
        example = " -> ".join(x for x in (", ".join(first["torch"][:2]), first["gguf"]) if x)
        what = (f"{kind}{f' ({how})' if how else ''}: {len(found)} tensor{'s' * (len(found) > 1)}, "
                f"{sum(r['count'] for r in found):,} values, e.g. {example}")
        (explained if why else unexplained).append(what + (f": {why}" if why else ""))
    return explained, unexplained


def check_grouping(found: dict[str, dict], relations: list[dict]) -> list[str]:
    """A torch module's parameters stored whole (weight and bias) stay in one GGUF layer."""
    layers: dict[str, set[str]] = {}
    for r in relations:
        if r["kind"] in ("same", "transform") and r["gguf"] in found:
            layers.setdefault(r["torch"][0].rpartition(".")[0], set()).add(found[r["gguf"]]["layer"])
    return [f"{module}'s parameters fall in {len(paths)} layers: {', '.join(sorted(paths))}"
            for module, paths in layers.items() if len(paths) > 1]


def compare(row: dict, models: dict[str, dict]) -> tuple[bool, str, list[str]]:
    """(a problem, the line to print, detail lines) for one converted architecture."""
    head = f"{row['type']:17} {row['arch']:26}"
    f32 = row["files"]["f32"]
    lint = models.get(f32["path"], {})
    if lint.get("model") is None:
        return True, f"{head} reglint failed: {lint.get('error')}", []
    found = variables(lint["model"])
    problems = file_problems(row, models, found)
    explained, unexplained = differences(row, f32["arch"] or "")
    sum_sq = sum(v.get("sum_sq") or 0.0 for v in found.values() if v["trainable"])
    file_count = sum(t["count"] for t in f32["tensors"].values())
    verdict = "DIFFERENT" if problems or unexplained else ("explained" if explained else "exact")
    expected = sum(r["expected_sum_sq"] or 0.0 for r in row["relations"] if r["kind"] not in ("computed", "buffer"))
    line = (f"{head} torch {row['params']:>9,} file {file_count:>9,} reglint {lint['model']['params']['trainable']:>9,}"
            f"  sum w^2 torch {row['sum_sq']:.6g} expected {expected:.6g} reglint {sum_sq:.6g}  {verdict}")
    details = [f"    problem: {p}" for p in problems] + [f"    unexplained: {d}" for d in unexplained] + \
        [f"    {d}" for d in explained]
    return bool(problems or unexplained), line, details


def file_problems(row: dict, models: dict[str, dict], found: dict[str, dict]) -> list[str]:
    """Every check of reglint's reading of this architecture's files."""
    saved = models.get(row["folder"], {}).get("model")
    problems = check_file(found, row["files"]["f32"]["tensors"], row["relations"], True)
    problems += check_roles(found, row, variables(saved)) if saved else ["the saved folder: no model"]
    problems += check_grouping(found, row["relations"])
    for outtype, entry in row["files"].items():
        other = models.get(entry["path"], {})
        if outtype == "f32":
            continue
        if other.get("model") is None:
            problems.append(f"{outtype}: reglint failed: {other.get('error')}")
            continue
        problems += [f"{outtype}: {p}"
                     for p in check_file(variables(other["model"]), entry["tensors"], row["relations"], False)]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "gguf_arch")
    parser.add_argument("--types", nargs="*", default=[*TYPES, *VARIANTS])
    parser.add_argument("--q8-0", action="store_true", help="convert at q8_0 too (counts and gguf-py's sums)")
    parser.add_argument("--llama-cpp", type=Path, default=LLAMA_CPP)
    parser.add_argument("--torch-side", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    outtypes = ["f32", "q8_0"] if args.q8_0 else ["f32"]
    if args.torch_side:
        torch_side(args.out, args.llama_cpp, args.types, outtypes)
        return 0
    done = subprocess.run([TORCH_PY, __file__, "--torch-side", "--out", str(args.out), "--llama-cpp",
                           str(args.llama_cpp), *(["--q8-0"] if args.q8_0 else []), "--types", *args.types],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"the torch side failed ({TORCH_PY}): {done.stderr.strip()[-1500:]}")
        return 2
    return report(json.loads((args.out / "manifest.json").read_text()), args.out)


def report(rows: list[dict], out: Path) -> int:
    converted = [r for r in rows if "error" not in r]
    for r in converted:
        r["folder"] = str(out / r["type"])
    paths = [Path(p) for r in converted for p in [r["folder"], *(e["path"] for e in r["files"].values())]]
    models = reglint_json(paths) if paths else {}
    failures, explained = 0, 0
    for row in rows:
        if "error" in row:
            why = NOT_CONVERTED.get(row["type"])
            print(f"{row['type']:17} {row['error']}" + (f" ({why})" if why else ""))
            continue
        problem, line, details = compare(row, models)
        failures += problem
        explained += not problem and "explained" in line
        print(line)
        for d in details:
            print(d)
    n = len(converted)
    print(f"\n{n} of {len(rows)} architectures converted; {n - failures - explained} read exactly, {explained} "
          f"with explained differences, {failures} not")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
