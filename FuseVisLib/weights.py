"""Trained weights as safetensors (never pickles) with a JSON model card beside them."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import FuseVisError

FORMAT_TAG = "fusevis-weights-1"


def models_dir() -> Path:
    """Where shipped weights live; FUSEVIS_MODELS_DIR overrides it."""
    override = os.environ.get("FUSEVIS_MODELS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "Resources" / "Models"


def model_card_path(weights_file: Path) -> Path:
    return weights_file.with_suffix(".json")


def save_weights(module: nn.Module, weights_file: str | Path, method_name: str, card: dict | None = None) -> Path:
    """Write the state dict (parameters and BatchNorm buffers) and, if given, the model card."""
    weights_file = Path(weights_file)
    weights_file.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in module.state_dict().items()}
    temporary = weights_file.with_suffix(".tmp")
    save_file(state, str(temporary), metadata={"format": FORMAT_TAG, "method": method_name})
    temporary.replace(weights_file)
    if card is not None:
        model_card_path(weights_file).write_text(json.dumps(card, indent=2) + "\n")
    return weights_file


def load_weights(weights_file: str | Path, module: nn.Module) -> dict[str, torch.Tensor]:
    """Read a safetensors file and check every tensor against ``module``'s state dict."""
    weights_file = Path(weights_file)
    if not weights_file.is_file():
        raise FuseVisError(
            f"weights file {weights_file} is missing; train it with `fusevis train` or restore Resources/Models from the repository"
        )
    try:
        state = load_file(str(weights_file), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise FuseVisError(
            f"weights file {weights_file} is not a readable safetensors file ({error}); "
            "convert other checkpoints with `fusevis import-checkpoint`"
        ) from None
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong_shape = [
        f"{key}: expected {tuple(expected[key].shape)}, found {tuple(state[key].shape)}"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    if missing or unexpected or wrong_shape:
        details = "; ".join(
            part
            for part in (
                f"missing {missing[:5]}" if missing else "",
                f"unexpected {unexpected[:5]}" if unexpected else "",
                f"wrong shapes {wrong_shape[:5]}" if wrong_shape else "",
            )
            if part
        )
        raise FuseVisError(
            f"weights file {weights_file} does not fit {type(module).__name__}: {details}; "
            "check that the file belongs to this method"
        )
    check_finite(state, str(weights_file))
    return state


def check_finite(state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights holding NaN or infinite values: every image fused with them would be NaN."""
    broken = [key for key, tensor in state.items() if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if broken:
        raise FuseVisError(
            f"{source} holds NaN or infinite values in {len(broken)} tensor(s) ({', '.join(broken[:5])}); "
            "the training that wrote it diverged or the file is damaged: retrain, or use an earlier checkpoint"
        )


def read_model_card(weights_file: Path | None) -> dict | None:
    if weights_file is None:
        return None
    card = model_card_path(Path(weights_file))
    return json.loads(card.read_text()) if card.is_file() else None
