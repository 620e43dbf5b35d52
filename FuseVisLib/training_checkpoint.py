"""Resumable training checkpoints without pickles: tensors in safetensors, the rest in JSON.

``checkpoint.safetensors`` holds the model state (``model.<name>``) and the
optimiser's per-parameter state (``optimiser.<index>.<name>``);
``checkpoint.json`` holds the optimiser's hyperparameters, the epoch, the
elapsed time and the loss history.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .errors import FuseVisError

TENSORS = "checkpoint.safetensors"
RECORD = "checkpoint.json"


@dataclass
class TrainingState:
    epoch: int
    elapsed_s: float
    history: list[dict]


def save_checkpoint(run_dir: Path, model: torch.nn.Module, optimiser: torch.optim.Optimizer, state: TrainingState) -> None:
    tensors = {f"model.{key}": value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    optimiser_state = optimiser.state_dict()
    for index, entries in optimiser_state["state"].items():
        for name, value in entries.items():
            tensors[f"optimiser.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    record = {"epoch": state.epoch, "elapsed_s": state.elapsed_s, "history": state.history, "param_groups": optimiser_state["param_groups"]}
    # Write both under temporary names first so an interruption never leaves a mismatched pair.
    save_file(tensors, str(run_dir / (TENSORS + ".tmp")))
    (run_dir / (RECORD + ".tmp")).write_text(json.dumps(record))
    (run_dir / (TENSORS + ".tmp")).replace(run_dir / TENSORS)
    (run_dir / (RECORD + ".tmp")).replace(run_dir / RECORD)


def has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / TENSORS).is_file() and (run_dir / RECORD).is_file()


def load_checkpoint(run_dir: Path, model: torch.nn.Module, optimiser: torch.optim.Optimizer, device: torch.device) -> TrainingState:
    try:
        tensors = load_file(str(run_dir / TENSORS), device=str(device))
        record = json.loads((run_dir / RECORD).read_text())
        model.load_state_dict({key[len("model.") :]: value for key, value in tensors.items() if key.startswith("model.")})
        optimiser_state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optimiser."):
                _, index, name = key.split(".", 2)
                optimiser_state.setdefault(int(index), {})[name] = value
        optimiser.load_state_dict({"state": optimiser_state, "param_groups": record["param_groups"]})
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise FuseVisError(f"the training checkpoint in {run_dir} cannot be resumed ({error}); start afresh without --resume or with another --workdir") from None
    return TrainingState(epoch=int(record["epoch"]), elapsed_s=float(record["elapsed_s"]), history=record["history"])
