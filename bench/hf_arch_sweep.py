"""Sweep: tiny Hugging Face models of many architectures, saved by
transformers, read by reglint; counts and sums of squares against torch's.

A script, not a test (transformers and torch are not test dependencies)::

    .venv/bin/python bench/hf_arch_sweep.py [--out bench/out/hf_arch] [--types llama gpt2 ...]

It runs ``generate`` in the torch environment (``REGLINT_TORCH_PYTHON``,
default /work/torchenv/bin/python: torch and transformers), which builds
each architecture from its default config shrunk to a few thousand weights
(seeded random weights, ``AutoModelForCausalLM`` where the architecture has
one, else ``AutoModel``), saves it with ``save_pretrained`` (safetensors)
and records torch's numbers: parameters (``sum(p.numel())``) and the sum of
their squares. Then it lints every folder with this checkout's reglint
(``reglint -f json``) and compares:

- reglint's trainable parameters with torch's parameters (running
  statistics are buffers in torch, non-trainable parameters in reglint);
- the sum of squares of reglint's trainable variables with torch's
  (relative 1e-5: float32 sums in another order).

Architectures whose config cannot be shrunk this way (transformers refuses
it) are listed as not generated, not as failures. Exit 1 when any folder
read differs or reglint failed on it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH_PY = os.environ.get("REGLINT_TORCH_PYTHON", "/work/torchenv/bin/python")
REGLINT = [sys.executable, "-m", "reglint"]
TYPES = [
    "bert", "roberta", "distilbert", "albert", "electra", "deberta-v2", "xlm-roberta", "layoutlm",
    "gpt2", "gpt_neox", "gptj", "bloom", "opt", "mpt", "llama", "mistral", "mixtral", "qwen2", "qwen2_moe",
    "qwen3", "qwen3_moe", "phi", "phi3", "gemma", "gemma2", "gemma3_text", "olmo", "olmo2", "starcoder2",
    "stablelm", "cohere", "granite", "deepseek_v3", "falcon", "rwkv", "mamba", "t5", "bart", "mbart", "marian",
    "whisper", "vit", "deit", "dinov2", "convnext", "resnet", "swin", "clip", "wav2vec2", "segformer",
]
# Every size field a config may have, shrunk (only the fields a config has are passed).
SMALL = {
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
    "intermediate_size": 48, "vocab_size": 96, "max_position_embeddings": 64, "d_model": 32,
    "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
    "encoder_ffn_dim": 48, "decoder_ffn_dim": 48, "n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64,
    "num_layers": 2, "d_ff": 48, "d_kv": 16, "image_size": 32, "patch_size": 8, "embedding_size": 32,
    "hidden_sizes": [16, 32], "depths": [1, 1], "num_experts": 4, "num_local_experts": 4,
    "num_experts_per_tok": 2, "moe_intermediate_size": 16, "shared_expert_intermediate_size": 16, "head_dim": 16,
    "max_source_positions": 32, "max_target_positions": 32, "embed_dim": 32, "pad_token_id": 0,
    # DeepSeek-V3: a MoE layer in two (its router holds a buffer in the state dict)
    "first_k_dense_replace": 1, "n_routed_experts": 4, "n_group": 1, "topk_group": 1,
}

GENERATE = r"""
import json, os, sys, warnings
warnings.filterwarnings("ignore")
import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
from transformers.utils import logging
logging.set_verbosity_error()
out, small, types = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]

def shrunk(config_class, sub=None):
    defaults = config_class() if sub is None else sub
    return {k: v for k, v in small.items() if hasattr(defaults, k)}

rows = []
for t in types:
    torch.manual_seed(0)
    try:
        cls = type(AutoConfig.for_model(t))
        cfg = cls(**shrunk(cls))
        for part in ("text_config", "vision_config"):
            sub = getattr(cfg, part, None)
            if sub is not None:
                setattr(cfg, part, type(sub)(**shrunk(type(sub))))
        try:
            model = AutoModelForCausalLM.from_config(cfg)
        except Exception:
            model = AutoModel.from_config(cfg)
        model.save_pretrained(os.path.join(out, t))
        params = list(model.parameters())
        rows.append({"type": t, "class": type(model).__name__, "params": sum(p.numel() for p in params),
                     "sum_sq": sum(float((p.detach().double() ** 2).sum()) for p in params)})
    except Exception as e:
        rows.append({"type": t, "error": f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"})
json.dump(rows, open(os.path.join(out, "manifest.json"), "w"), indent=1)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "hf_arch")
    parser.add_argument("--types", nargs="*", default=list(TYPES))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([TORCH_PY, "-c", GENERATE, str(args.out), json.dumps(SMALL), *args.types],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"generate failed ({TORCH_PY}): {done.stderr.strip()[-600:]}")
        return 2
    rows = json.loads((args.out / "manifest.json").read_text())
    failures = 0
    for row in rows:
        if "error" in row:
            print(f"{row['type']:14} not generated: {row['error']}")
            continue
        problem, line = compare(row, args.out / row["type"])
        failures += problem
        print(line)
    made = sum("error" not in r for r in rows)
    print(f"\n{made} architectures generated of {len(rows)}; {made - failures} read exactly, {failures} not")
    return 1 if failures else 0


def compare(row: dict, folder: Path) -> tuple[bool, str]:
    """(a problem, the line to print) for one saved folder."""
    done = subprocess.run([*REGLINT, "-f", "json", "--fail-on", "none", str(folder)], capture_output=True,
                          text=True)
    head = f"{row['type']:14} {row['class']:30}"
    if done.returncode != 0:
        return True, f"{head} reglint exit {done.returncode}: {done.stderr.strip()[:200]}"
    files = json.loads(done.stdout)["files"]
    model = files[0]["model"]
    trainable = model["params"]["trainable"]
    sum_sq = sum(v.get("sum_sq") or 0.0 for layer in model["layers"] for v in layer["variables"] if v["trainable"])
    exact = len(files) == 1 and trainable == row["params"] and abs(sum_sq - row["sum_sq"]) <= 1e-5 * row["sum_sq"]
    line = (f"{head} torch {row['params']:>9,} reglint {trainable:>9,}  sum w^2 torch {row['sum_sq']:.6g} "
            f"reglint {sum_sq:.6g}" + ("" if exact else "  DIFFERENT"))
    return not exact, line


if __name__ == "__main__":
    sys.exit(main())
