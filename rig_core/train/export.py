"""`rig export --merge`: fold a run's LoRA adapter into its base and write a stand-alone run directory.

The result is a run whose one checkpoint holds full weights (``model.safetensors``), the run's
tokenizers and a ``config.json`` that no longer needs the base or the adapter: ``rig play`` /
``rig evaluate`` take it like any run, and ``AutoModelForCausalLM.from_pretrained`` loads its model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from rig_core.errors import RigError
from rig_core.fsutil import atomic_write_json
from rig_core.versions import versions


def export_merged(run_dir: Path, out: Path, command: str = "rig export --merge") -> dict[str, Any]:
    from rig_core.model.build import quiet_transformers
    from rig_core.model.checkpoint import find_checkpoint, run_of_checkpoint, save_checkpoint
    from rig_core.model.run_config import load_run_config
    from rig_core.model.load import load_trained

    quiet_transformers()
    run_dir, out = Path(run_dir), Path(out)
    ckpt = find_checkpoint(run_dir)
    run = run_of_checkpoint(ckpt)
    cfg = load_run_config(run)
    if not (ckpt / "model" / "adapter_config.json").exists():
        raise RigError(f"{ckpt} holds full weights, not an adapter: there is nothing to merge",
                       f"use the run as it is (rig play --checkpoint {run_dir})")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RigError(f"output {out} already exists", "choose another --out")
    if cfg.qlora:
        raise RigError("a QLoRA adapter sits on a 4-bit base and cannot be merged exactly",
                       "merge into the full-precision base yourself (peft merge_and_unload) or keep base + adapter")
    model = load_trained(cfg, ckpt / "model", trainable=False).merge_and_unload()
    tmp = out.with_name(f".{out.name}.export.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        merged = cfg.to_dict()
        merged.update(lora=False, qlora=False, finetune="full", model="scratch", base=None)
        atomic_write_json(tmp / "config.json", {**merged, "command": command, "merged_from": str(ckpt.resolve())})
        atomic_write_json(tmp / "versions.json", versions())
        step = int(ckpt.name) if ckpt.name.isdigit() else 0
        save_checkpoint(tmp, step, model, lambda d: shutil.copytree(ckpt / "tokenizer", d),
                        {"exported_from": str(ckpt.resolve())}, keep_last=0)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"run": str(out), "from": str(ckpt), "stage": cfg.stage,
            "parameters": sum(p.numel() for p in model.parameters())}
