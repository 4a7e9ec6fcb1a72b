"""Sweep: tiny KerasHub backbones of many architectures, saved as ``.keras``,
read by reglint; parameter counts against Keras' own.

A script, not a test (keras-hub and TensorFlow are not test dependencies).
Run it with a Python that has keras-hub (reglint need not be installed
there: it is run as a subprocess)::

    /work/khub/bin/python bench/keras_hub_sweep.py [--out bench/out/keras_hub] [--only bert gpt2 ...]
        [--reglint "/work/main/.venv/bin/reglint"]
    # this checkout's code, with reglint's own venv:
    /work/khub/bin/python bench/keras_hub_sweep.py \
        --reglint "env PYTHONPATH=src /work/main/.venv/bin/python -m reglint"

It builds each KerasHub backbone from constructor arguments at a tiny size
(no preset downloads; seeded random weights), saves it with
``model.save(path)`` and records Keras' numbers: ``count_params()`` and the
summed sizes of ``trainable_weights`` and ``non_trainable_weights``. A
KerasHub backbone is a custom class to reglint (its config holds
constructor arguments, not a layer graph), so everything it reports comes
from ``model.weights.h5``'s ``vars`` groups: the layout rules of
``src/reglint/readers/keras_custom.py`` and, for a file saved after
training, the optimizer's slots (``keras_slots.py``). Besides the plain
backbones, a few variants:

- ``.quantize("int8")`` (integer kernels and their scales are frozen);
- task models (``...TextClassifier``, ``...CausalLM``, ``...ImageClassifier``,
  ``preprocessor=None``) compiled with AdamW and fit one step on random
  data, some after ``enable_lora(rank=2)`` (``save`` merges the factors
  into the kernels: only the optimizer's slots still record them);
- the DINOv2 backbone fit the same way (its ``position_embeddings`` are
  created frozen: untrained, the file does not say so; trained, the
  slots do).

Then it lints every file with ``<reglint> FILE --format json --no-cache``
and compares ``files[0].model.params`` (total, trainable) with Keras'.
Prints a table and writes ``summary.json`` under the output folder.
Architectures whose constructor fails here are listed as skipped with the
error. Exit 0 when the sweep ran: mismatches are data, not failures.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
REGLINT = os.environ.get("REGLINT", "/work/main/.venv/bin/reglint")

# Tiny sizes shared by the text models.
V, L, H, D, F, S = 64, 2, 2, 16, 32, 16  # vocabulary, layers, heads, hidden, intermediate, sequence


def _hub():
    import keras_hub

    return keras_hub.models


def text_builders() -> dict[str, Callable[[], Any]]:
    m = _hub()
    enc = {"vocabulary_size": V, "num_layers": L, "num_heads": H, "hidden_dim": D, "intermediate_dim": F}
    dec = {"vocabulary_size": V, "num_layers": L, "num_query_heads": H, "num_key_value_heads": 1, "hidden_dim": D,
           "intermediate_dim": F}
    return {
        "bert": lambda: m.BertBackbone(**enc, max_sequence_length=S),
        "roberta": lambda: m.RobertaBackbone(**enc, max_sequence_length=S),
        "xlm_roberta": lambda: m.XLMRobertaBackbone(**enc, max_sequence_length=S),
        "distil_bert": lambda: m.DistilBertBackbone(**enc, max_sequence_length=S),
        "albert": lambda: m.AlbertBackbone(**enc, embedding_dim=8, max_sequence_length=S),
        "deberta_v3": lambda: m.DebertaV3Backbone(**enc, max_sequence_length=S, bucket_size=8),
        "electra": lambda: m.ElectraBackbone(vocab_size=V, num_layers=L, num_heads=H, hidden_dim=D, embedding_dim=8,
                                             intermediate_dim=F, max_sequence_length=S),
        "f_net": lambda: m.FNetBackbone(vocabulary_size=V, num_layers=L, hidden_dim=D, intermediate_dim=F,
                                        max_sequence_length=S),
        "roformer_v2": lambda: m.RoformerV2Backbone(**enc, head_size=8),
        "esm2": lambda: m.ESM2Backbone(**enc, max_sequence_length=S),
        "xlnet": lambda: m.XLNetBackbone(**enc),
        "gpt2": lambda: m.GPT2Backbone(**enc, max_sequence_length=S),
        "opt": lambda: m.OPTBackbone(**enc, max_sequence_length=S),
        "gpt_neo_x": lambda: m.GPTNeoXBackbone(**enc, max_sequence_length=S),
        "bloom": lambda: m.BloomBackbone(**enc),
        "falcon": lambda: m.FalconBackbone(vocabulary_size=V, num_layers=L, num_attention_heads=H, hidden_dim=D,
                                           intermediate_dim=F),
        "llama": lambda: m.LlamaBackbone(**dec),
        "llama3": lambda: m.Llama3Backbone(**dec),
        "mistral": lambda: m.MistralBackbone(**dec),
        "mixtral": lambda: m.MixtralBackbone(**dec, num_experts=4, top_k=2),
        "gemma": lambda: m.GemmaBackbone(**dec, head_dim=8),
        "gemma3_text": lambda: m.Gemma3Backbone(**dec, head_dim=8, image_size=16, vision_encoder=None),
        "qwen": lambda: m.QwenBackbone(**dec),
        "qwen_moe": lambda: m.QwenMoeBackbone(**dec, moe_intermediate_dim=8, shared_expert_intermediate_dim=16,
                                              num_experts=4, top_k=2),
        "qwen3": lambda: m.Qwen3Backbone(**dec, head_dim=8),
        "qwen3_moe": lambda: m.Qwen3MoeBackbone(**dec, moe_intermediate_dim=8, num_experts=4, top_k=2, head_dim=8),
        "phi3": lambda: m.Phi3Backbone(**dec),
        "gpt_oss": lambda: m.GptOssBackbone(**dec, num_experts=4, top_k=2, head_dim=8),
        "t5": lambda: m.T5Backbone(**enc),
        "bart": lambda: m.BartBackbone(**enc, max_sequence_length=S),
        "whisper": lambda: m.WhisperBackbone(**enc, num_mels=8, max_encoder_sequence_length=32,
                                             max_decoder_sequence_length=S),
    }


def vision_builders() -> dict[str, Callable[[], Any]]:
    m = _hub()
    img = (32, 32, 3)

    def clip():
        from keras_hub.src.models.clip.clip_text_encoder import CLIPTextEncoder
        from keras_hub.src.models.clip.clip_vision_encoder import CLIPVisionEncoder

        return m.CLIPBackbone(
            CLIPVisionEncoder(patch_size=8, hidden_dim=D, num_layers=L, num_heads=H, intermediate_dim=F,
                              image_shape=img),
            CLIPTextEncoder(vocabulary_size=V, embedding_dim=D, hidden_dim=D, num_layers=L, num_heads=H,
                            intermediate_dim=F, max_sequence_length=S),
            projection_dim=8)

    def siglip():
        from keras_hub.src.models.siglip.siglip_text_encoder import SigLIPTextEncoder
        from keras_hub.src.models.siglip.siglip_vision_encoder import SigLIPVisionEncoder

        return m.SigLIPBackbone(
            SigLIPVisionEncoder(patch_size=8, hidden_dim=D, num_layers=L, num_heads=H, intermediate_dim=F,
                                image_shape=img),
            SigLIPTextEncoder(vocabulary_size=V, embedding_dim=D, hidden_dim=D, num_layers=L, num_heads=H,
                              intermediate_dim=F, max_sequence_length=S))

    def mit():
        return m.MiTBackbone(layerwise_depths=[1, 1], num_layers=2, layerwise_num_heads=[1, 2],
                             layerwise_sr_ratios=[2, 1], max_drop_path_rate=0.0, layerwise_patch_sizes=[7, 3],
                             layerwise_strides=[4, 2], image_shape=img, hidden_dims=[8, 16])

    mobilenet = {
        "stackwise_expansion": [[16], [24, 32]], "stackwise_num_blocks": [1, 2],
        "stackwise_num_filters": [[8], [16, 16]],
        "stackwise_kernel_size": [[3], [3, 5]], "stackwise_num_strides": [[2], [2, 1]],
        "stackwise_se_ratio": [[None], [0.25, 0.25]], "stackwise_activation": [["relu"], ["hard_swish", "hard_swish"]],
        "stackwise_padding": [[1], [1, 2]], "output_num_filters": 32, "depthwise_filters": 8, "depthwise_stride": 2,
        "depthwise_residual": False, "last_layer_filter": 32, "squeeze_and_excite": 0.5, "image_shape": img,
        "input_num_filters": 8}
    efficientnet = {
        "stackwise_kernel_sizes": [3, 3], "stackwise_num_repeats": [1, 1], "stackwise_input_filters": [8, 8],
        "stackwise_output_filters": [8, 16], "stackwise_expansion_ratios": [1, 4],
        "stackwise_squeeze_and_excite_ratios": [0.0, 0.25], "stackwise_strides": [1, 2],
        "stackwise_block_types": ["fused", "unfused"], "stackwise_width_coefficients": [1.0, 1.0],
        "stackwise_depth_coefficients": [1.0, 1.0], "num_features": 32, "input_shape": img,
        "include_stem_padding": False}
    return {
        # basic_block's first stack has no shortcut conv: the stem must give 64 channels
        "resnet": lambda: m.ResNetBackbone(input_conv_filters=[64], input_conv_kernel_sizes=[3],
                                           stackwise_num_filters=[64], stackwise_num_blocks=[1],
                                           stackwise_num_strides=[1], block_type="basic_block", image_shape=img),
        "resnet_bottleneck_vd": lambda: m.ResNetBackbone(
            input_conv_filters=[8, 8], input_conv_kernel_sizes=[3, 3], stackwise_num_filters=[64, 16],
            stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="bottleneck_block_vd",
            use_pre_activation=False, image_shape=img),
        "efficientnet": lambda: m.EfficientNetBackbone(**efficientnet),
        "mobilenet": lambda: m.MobileNetBackbone(**mobilenet),
        "densenet": lambda: m.DenseNetBackbone(stackwise_num_repeats=[1, 1], growth_rate=4, image_shape=img),
        "vgg": lambda: m.VGGBackbone(stackwise_num_repeats=[1, 1], stackwise_num_filters=[4, 8], image_shape=img),
        "xception": lambda: m.XceptionBackbone(stackwise_conv_filters=[[8, 16], [16, 16]],
                                               stackwise_pooling=[True, False], image_shape=img),
        "cspnet": lambda: m.CSPNetBackbone(stem_filters=8, stem_kernel_size=3, stem_strides=1, stackwise_depth=[1, 1],
                                           stackwise_strides=[1, 2], stackwise_num_filters=[8, 16],
                                           block_type="dark_block", stage_type="dark", image_shape=img),
        "vit": lambda: m.ViTBackbone(image_shape=img, patch_size=8, num_layers=L, num_heads=H, hidden_dim=D,
                                     mlp_dim=F),
        "deit": lambda: m.DeiTBackbone(image_shape=img, patch_size=8, num_layers=L, num_heads=H, hidden_dim=D,
                                       intermediate_dim=F),
        "dinov2": lambda: m.DINOV2Backbone(patch_size=8, num_layers=L, hidden_dim=D, num_heads=H, intermediate_dim=F,
                                           image_shape=img, position_embedding_shape=img),
        "mit": mit,
        "segformer": lambda: m.SegFormerBackbone(image_encoder=mit(), projection_filters=8),
        "swin": lambda: m.SwinTransformerBackbone(image_shape=img, embed_dim=8, depths=[1, 1], num_heads=[1, 2],
                                                  window_size=4, patch_size=4, drop_path=0.0),
        "clip": clip,
        "siglip": siglip,
        "hgnetv2": lambda: m.HGNetV2Backbone(
            depths=[1, 1], embedding_size=8, hidden_sizes=[16, 32], stem_channels=[3, 8, 8], hidden_act="relu",
            use_learnable_affine_block=True, stackwise_stage_filters=[(8, 8, 16, 1, 1, 3), (16, 8, 32, 1, 1, 3)],
            apply_downsample=[False, True], use_lightweight_conv_block=[False, False], image_shape=img),
    }


def _random_text(rs, batch=4, seq=S, segments=True):
    import numpy as np

    x = {"token_ids": rs.randint(0, V, (batch, seq)), "padding_mask": np.ones((batch, seq), "bool")}
    if segments:
        x["segment_ids"] = np.zeros((batch, seq), "int32")
    return x


def _fit(model, x, y):
    import keras

    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    return model


def variant_builders() -> dict[str, Callable[[], Any]]:
    """int8-quantized backbones and task models fit one AdamW step."""
    import numpy as np

    m = _hub()
    text, vision = text_builders(), vision_builders()
    rs = np.random.RandomState(0)

    def quantized(builder):
        def build():
            model = builder()
            model.quantize("int8")
            return model

        return build

    def bert_clf(lora):
        def build():
            clf = m.BertTextClassifier(backbone=text["bert"](), num_classes=3, preprocessor=None)
            if lora:
                clf.backbone.enable_lora(rank=2)
            return _fit(clf, _random_text(rs), rs.randint(0, 3, 4))

        return build

    def causal_lm(task, key, lora):
        def build():
            lm = getattr(m, task)(backbone=text[key](), preprocessor=None)
            if lora:
                lm.backbone.enable_lora(rank=2)
            return _fit(lm, _random_text(rs, segments=False), rs.randint(0, V, (4, S)))

        return build

    def image_clf(task, key):
        def build():
            clf = getattr(m, task)(backbone=vision[key](), num_classes=3, preprocessor=None)
            return _fit(clf, rs.rand(4, 32, 32, 3).astype("float32"), rs.randint(0, 3, 4))

        return build

    def dinov2_fit():  # a frozen variable (position_embeddings) the slots should leave out
        import keras

        model = vision["dinov2"]()
        x = rs.rand(4, 32, 32, 3).astype("float32")
        model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.01), loss="mse")
        model.fit(x, np.zeros(model.predict(x, verbose=0).shape, "float32"), batch_size=4, epochs=1, verbose=0)
        return model

    return {
        "bert+int8": quantized(text["bert"]),
        "llama+int8": quantized(text["llama"]),
        "mixtral+int8": quantized(text["mixtral"]),
        "vit+int8": quantized(vision["vit"]),
        "bert_clf+adamw": bert_clf(False),
        "bert_clf+lora+adamw": bert_clf(True),
        "llama3_lm+lora+adamw": causal_lm("Llama3CausalLM", "llama3", True),
        "gpt2_lm+lora+adamw": causal_lm("GPT2CausalLM", "gpt2", True),
        "gemma_lm+lora+adamw": causal_lm("GemmaCausalLM", "gemma", True),
        "resnet_clf+adamw": image_clf("ResNetImageClassifier", "resnet"),
        "vit_clf+adamw": image_clf("ViTImageClassifier", "vit"),
        "dinov2+adamw": dinov2_fit,
    }


def sizes(weights) -> int:
    import numpy as np

    return int(sum(np.prod(w.shape) for w in weights))


def generate(name: str, builder: Callable[[], Any], out: Path) -> dict:
    """Build, save and count one model; a row with an error on failure."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    row: dict = {"name": name}
    start = time.perf_counter()
    try:
        model = builder()
        path = out / f"{name.replace('+', '_')}.keras"
        model.save(path)
        opt = getattr(model, "optimizer", None)
        row.update(
            cls=type(model).__name__, file=str(path), keras_total=int(model.count_params()),
            keras_trainable=sizes(model.trainable_weights), keras_non_trainable=sizes(model.non_trainable_weights),
            optimizer=type(opt).__name__ if opt is not None and getattr(opt, "built", False) else None)
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        if os.environ.get("SWEEP_DEBUG"):
            traceback.print_exc()
    row["build_s"] = round(time.perf_counter() - start, 2)
    return row


def lint(row: dict, reglint: list[str]) -> None:
    """Add reglint's numbers (or its failure) to a generated row."""
    done = subprocess.run([*reglint, row["file"], "--format", "json", "--no-cache"], capture_output=True,
                          text=True, timeout=120)
    try:
        report = json.loads(done.stdout)
        model = report["files"][0]["model"]
        params = model["params"]
    except Exception:
        row["reglint_error"] = f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}"
        return
    row.update(reglint_total=params.get("total"), reglint_trainable=params.get("trainable"),
               reglint_non_trainable=params.get("non_trainable"), notes=model.get("notes", []),
               files=len(report["files"]))
    row["match_total"] = row["reglint_total"] == row["keras_total"]
    row["match_trainable"] = row["reglint_trainable"] == row["keras_trainable"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "keras_hub")
    parser.add_argument("--only", nargs="*", help="names to run (default: all)")
    parser.add_argument("--reglint", default=REGLINT,
                        help="reglint command prefix (default %(default)s; env REGLINT)")
    parser.add_argument("--no-variants", action="store_true", help="plain backbones only")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    reglint = shlex.split(args.reglint)

    builders = {**text_builders(), **vision_builders(), **({} if args.no_variants else variant_builders())}
    if args.only:
        builders = {k: v for k, v in builders.items() if k in args.only}
    rows = []
    for name, builder in builders.items():
        row = generate(name, builder, args.out)
        if "error" not in row:
            lint(row, reglint)
        rows.append(row)
        print(_line(row), flush=True)

    built = [r for r in rows if "error" not in r]
    read = [r for r in built if "reglint_error" not in r]
    total_ok = sum(r["match_total"] for r in read)
    train_ok = sum(r["match_trainable"] for r in read)
    both = sum(r["match_total"] and r["match_trainable"] for r in read)
    print(f"\n{len(built)} built of {len(rows)} ({len(rows) - len(built)} skipped); reglint read {len(read)}; "
          f"total equal {total_ok}, trainable equal {train_ok}, both {both}")
    summary = {"reglint": args.reglint, "built": len(built), "skipped": len(rows) - len(built), "read": len(read),
               "match_total": total_ok, "match_trainable": train_ok, "match_both": both, "rows": rows}
    try:
        import keras
        import keras_hub

        summary.update(keras=keras.__version__, keras_hub=keras_hub.__version__)
    except ImportError:
        pass
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"summary: {args.out / 'summary.json'}")
    return 0


def _line(row: dict) -> str:
    head = f"{row['name']:22}"
    if "error" in row:
        return f"{head} skipped: {row['error'][:150]}"
    keras_part = f"{row['cls'][:28]:28} keras {row['keras_total']:>8,}/{row['keras_trainable']:>8,}"
    if "reglint_error" in row:
        return f"{head} {keras_part}  reglint failed: {row['reglint_error'][:120]}"
    match = "yes" if row["match_total"] and row["match_trainable"] else (
        "total" if row["match_total"] else "trainable" if row["match_trainable"] else "NO")
    return (f"{head} {keras_part}  reglint {row['reglint_total']:>8,}/{row['reglint_trainable']:>8,}  "
            f"match {match}")


if __name__ == "__main__":
    sys.exit(main())
