"""Sweep: the tiny transformers models of ``hf_arch_sweep.py`` exported to
ONNX by both of torch's exporters, read by reglint; counts against torch's.

A script, not a test (torch, transformers and onnxscript are not test
dependencies)::

    .venv/bin/python bench/hf_arch_sweep.py --out bench/out/hf_arch       # the saved folders first
    .venv/bin/python bench/hf_onnx_sweep.py [--models bench/out/hf_arch] [--types llama bert ...]

For each architecture the torch environment (``REGLINT_TORCH_PYTHON``)
loads the saved folder and exports its logits (``use_cache=False``; the
decoder fed the same ids for encoder-decoders) at a fixed sequence length
of 8, once with the TorchScript exporter (opset 17) and once with the
dynamo exporter (``dynamo=True``, onnxscript's optimizer). reglint then
reads each file, and the check is

    reglint's parameters + the values its notes say the export merged == torch's parameters

An export can change what a file holds beyond merging equal tensors: a
learned position table sliced at the fixed length is folded into a smaller
constant, an unused pooler is dropped, a common-subexpression pass fuses
two LayerNorms of the same input. Such files are listed with their
difference, as the export's, not as reglint's: the script prints the
numbers and does not judge them. What it does judge, on every file: no
reglint failure, no parameter holding a value at float extremes (a mask
counted as a weight), and reglint's count never above torch's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH_PY = os.environ.get("REGLINT_TORCH_PYTHON", "/work/torchenv/bin/python")
REGLINT = [sys.executable, "-m", "reglint"]
TYPES = ["bert", "distilbert", "albert", "deberta-v2", "gpt2", "gpt_neox", "bloom", "opt", "llama", "mistral",
         "qwen2", "phi", "gemma", "olmo", "starcoder2", "t5", "bart"]
# |w| at or above this is a mask or a fill, never a trained weight.
EXTREME = 1e30

EXPORT = r"""
import json, os, sys, warnings
warnings.filterwarnings("ignore")
import torch
from transformers import AutoModel, AutoModelForCausalLM
from transformers.utils import logging
logging.set_verbosity_error()
src, out, types = sys.argv[1], sys.argv[2], sys.argv[3:]


class Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.m = model

    def forward(self, ids):
        extra = {"decoder_input_ids": ids} if self.m.config.is_encoder_decoder else {}
        return self.m(input_ids=ids, use_cache=False, **extra)[0]


rows = []
for t in types:
    try:
        try:
            model = AutoModelForCausalLM.from_pretrained(os.path.join(src, t))
        except Exception:
            model = AutoModel.from_pretrained(os.path.join(src, t))
        model.eval()
        params = sum(p.numel() for p in model.parameters())
    except Exception as e:
        rows.append({"type": t, "error": f"load: {type(e).__name__}: {str(e)[:120]}"})
        continue
    for exporter, dynamo in (("torchscript", False), ("dynamo", True)):
        path = os.path.join(out, f"{t}.{exporter}.onnx")
        row = {"type": t, "exporter": exporter, "params": params, "file": path}
        try:
            with torch.no_grad():
                kwargs = {"external_data": False} if dynamo else {"opset_version": 17}
                torch.onnx.export(Logits(model), (torch.randint(1, 90, (1, 8)),), path, dynamo=dynamo, **kwargs)
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
        rows.append(row)
json.dump(rows, open(os.path.join(out, "manifest.json"), "w"), indent=1)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=ROOT / "bench" / "out" / "hf_arch")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "hf_onnx")
    parser.add_argument("--types", nargs="*", default=TYPES)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([TORCH_PY, "-c", EXPORT, str(args.models), str(args.out), *args.types],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"export failed ({TORCH_PY}): {done.stderr.strip()[-600:]}")
        return 2
    problems = exact = read = 0
    for row in json.loads((args.out / "manifest.json").read_text()):
        if "error" in row:
            print(f"{row['type']:12} {row.get('exporter', ''):11} not exported: {row['error']}")
            continue
        read += 1
        problem, same, line = compare(row)
        problems += problem
        exact += same
        print(line)
    print(f"\n{read} files read: {exact} equal torch's count (with the merged values), {problems} with a problem")
    return 1 if problems else 0


def compare(row: dict) -> tuple[bool, bool, str]:
    """(a problem, equal counts, the line to print)."""
    head = f"{row['type']:12} {row['exporter']:11}"
    done = subprocess.run([*REGLINT, "-f", "json", "--fail-on", "none", row["file"]], capture_output=True, text=True)
    if done.returncode != 0:
        return True, False, f"{head} reglint exit {done.returncode}: {done.stderr.strip()[:200]}"
    model = json.loads(done.stdout)["files"][0]["model"]
    counted = model["params"]["trainable"]
    merged = sum(int(m.group(1).replace(",", "")) for note in model["notes"]
                 if (m := re.search(r"\(([\d,]+) values more\)", note)))
    folded = any("attention mask, position bias or rotary" in note for note in model["notes"])
    extreme = [f"{layer['name']}/{v['name']}" for layer in model["layers"] for v in layer["variables"]
               if (v.get("sum_sq") or 0.0) >= EXTREME]
    same = counted + merged == row["params"]
    problem = bool(extreme) or counted > row["params"]
    changed = row["params"] - counted - merged
    verdict = "= torch" if same else f"({changed:+,} the export changed)"
    line = (f"{head} torch {row['params']:>8,} reglint {counted:>8,} + merged {merged:>6,} {verdict}"
            + ("; folded tables left out" if folded else "")
            + (f"  EXTREME VALUES COUNTED: {', '.join(extreme[:3])}" if extreme else "")
            + ("  MORE THAN TORCH" if counted > row["params"] else ""))
    return problem, same, line


if __name__ == "__main__":
    sys.exit(main())
