"""A 4-bit Hugging Face checkpoint for bench/run.py's ``hf_int4`` group: how
quantized LLMs are published on the Hub.

    /work/torchenv/bin/python bench/make_hf_int4.py OUT_DIR [--layers N] [--hidden D]

A ``LlamaForCausalLM`` from a config (default 8 layers, hidden 1024,
intermediate 2816, vocabulary 32,000: 155M parameters) in float16,
every decoder Linear quantized by compressed-tensors to its W4A16 format
(``pack-quantized``, int4, symmetric, groups of 128; scales from each
group's min and max) and saved with ``save_pretrained`` (about 150 MB).
Needs torch, transformers and compressed-tensors (the torch environment,
never the core install). Writes ``OUT_DIR/manifest.json`` with torch's
float parameter count before quantization.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn as nn


def main() -> None:
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import (
        QuantizationArgs,
        QuantizationConfig,
        QuantizationScheme,
        apply_quantization_config,
    )
    from compressed_tensors.quantization.utils import calculate_qparams
    from transformers import LlamaConfig, LlamaForCausalLM

    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=1024)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=args.hidden, intermediate_size=args.hidden * 11 // 4,
                         num_hidden_layers=args.layers, num_attention_heads=args.hidden // 64,
                         num_key_value_heads=args.hidden // 256, vocab_size=32000, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).half().eval()
    float_params = sum(p.numel() for p in model.parameters())
    weights = QuantizationArgs(num_bits=4, type="int", symmetric=True, strategy="group", group_size=128)
    apply_quantization_config(model, QuantizationConfig(
        config_groups={"group_0": QuantizationScheme(targets=["Linear"], weights=weights)}, ignore=["lm_head"]))
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and ".layers." in name:
            grouped = module.weight.data.float().reshape(module.weight.shape[0], -1, 128)
            scale, _ = calculate_qparams(grouped.amin(dim=2), grouped.amax(dim=2), weights)
            module.weight_scale.data.copy_(scale.reshape(module.weight_scale.shape))
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format="pack-quantized")
    compressor.compress_model(model)
    model.save_pretrained(args.out)
    compressor.update_config(str(args.out))
    manifest = {"path": str(args.out), "float_params": float_params,
                "bytes": sum(p.stat().st_size for p in args.out.iterdir())}
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(manifest)


if __name__ == "__main__":
    main()
