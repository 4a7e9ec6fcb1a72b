"""A sharded training checkpoint for bench/run.py's ``dcp`` group: what FSDP
training writes with ``torch.distributed.checkpoint``.

    /work/torchenv/bin/python bench/make_dcp.py OUT_DIR [--ranks N] [--layers N] [--hidden D]

A ``LlamaForCausalLM`` from a config (default 4 layers, hidden 768,
intermediate 2048, vocabulary 32,000: 77M parameters), sharded by FSDP2 over
``--ranks`` (default 4) CPU ranks (``gloo``), one AdamW step, then
``dcp.save({"model": ..., "optimizer": ...})`` from ``get_state_dict``:
``.metadata`` and one ``.distcp`` file per rank, the weights and both Adam
moments in float32 (about 0.9 GB). Needs torch and transformers (the torch
environment, never the core install). Writes ``OUT_DIR/manifest.json`` with
torch's parameter count.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _rank(rank: int, args, port: int) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from transformers import LlamaConfig, LlamaForCausalLM

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=args.ranks)
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=args.hidden, intermediate_size=args.hidden * 8 // 3, num_hidden_layers=args.layers,
                         num_attention_heads=args.hidden // 64, num_key_value_heads=args.hidden // 64,
                         vocab_size=32_000)
    model = LlamaForCausalLM(config)
    params = sum(p.numel() for p in model.parameters())
    mesh = init_device_mesh("cpu", (args.ranks,))
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    ids = torch.randint(0, 32_000, (2, 32))
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optimizer": optim_sd}, checkpoint_id=str(args.out))
    if rank == 0:
        size = sum(p.stat().st_size for p in args.out.iterdir())
        (args.out / "manifest.json").write_text(json.dumps({"params": params, "bytes": size, "ranks": args.ranks}))
    dist.barrier()
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--ranks", type=int, default=4)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=768)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_rank, args=(args, port), nprocs=args.ranks)


if __name__ == "__main__":
    main()
