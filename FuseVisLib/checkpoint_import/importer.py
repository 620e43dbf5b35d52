"""From a checkpoint file to a registered method: read safely, extract, map, save, register."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
import hashlib
from pathlib import Path

from ..errors import FuseVisError
from ..imported_methods import SEPARATOR, base_method_name, register_weights_file, user_models_dir
from ..registry import get_method
from ..weights import check_finite, read_model_card, save_weights
from .file_formats import read_checkpoint
from .mapping import map_onto_method, networks_with_weights
from .state_extraction import find_state_dicts

# The card lists at most this many class names the file recorded (whole models name dozens).
LISTED_CLASSES = 20


@dataclass
class ImportedCheckpoint:
    """The registered method, its weights file and the model card written beside it."""

    method: str
    weights_file: Path
    card: dict


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_weights_file(checkpoint: Path) -> Path:
    return user_models_dir() / f"{checkpoint.stem}.safetensors"


def _check_free(out: Path, digest: str, base: str, replace: bool) -> None:
    """Refuse to overwrite weights that did not come from this very checkpoint, unless asked to."""
    if not out.exists() or replace:
        return
    try:
        card = read_model_card(out)
    except (OSError, ValueError):
        card = None
    card = card if isinstance(card, dict) else {}
    if card.get("source_sha256") == digest and card.get("base_method") == base:
        return
    origin = f"imported from {card['source_name']}" if "source_name" in card else "not from this checkpoint"
    raise FuseVisError(f"{out} already exists ({origin}); choose another --out or pass --replace to overwrite it")


def import_checkpoint(checkpoint: str | Path, method: str, out: str | Path | None = None, *, replace: bool = False) -> ImportedCheckpoint:
    """Import the weights in ``checkpoint`` as ``<method>@<out stem>`` and register that method.

    ``checkpoint`` is a torch.save file (whole model or state dict, zip or
    legacy), an .npz or a .safetensors file; nothing in it is executed.
    ``out`` defaults to ``<user models dir>/<checkpoint stem>.safetensors``.
    """
    checkpoint = Path(checkpoint)
    base = get_method(base_method_name(method))
    if base.weights_file is None:
        raise FuseVisError(f"{base.name} has no weights to import; choose one of: {', '.join(networks_with_weights())}")
    out = Path(out).expanduser() if out is not None else default_weights_file(checkpoint)
    if out.suffix != ".safetensors":
        raise FuseVisError(f"--out {out} must end in .safetensors")

    contents = read_checkpoint(checkpoint)
    try:
        candidates = find_state_dicts(contents.root)
    # Whatever the file's structure makes the walk trip over (CorruptCheckpoint is a
    # ValueError; absurd nesting a RecursionError) means a damaged or crafted file.
    except (ValueError, TypeError, AttributeError, RuntimeError) as error:
        raise FuseVisError(f"{checkpoint} is damaged ({type(error).__name__}: {error}); copy the file again from its source") from None
    fit, candidate = map_onto_method(candidates, base.name, checkpoint.name)
    check_finite(fit.tensors, str(checkpoint))
    digest = sha256_of(checkpoint)
    _check_free(out, digest, base.name, replace)

    module = base.build()
    module.load_state_dict(fit.tensors, strict=True)
    name = f"{base.name}{SEPARATOR}{out.stem}"
    card = {
        "method": name,
        "base_method": base.name,
        "source_name": checkpoint.name,
        "source_path": str(checkpoint.resolve()),
        "source_sha256": digest,
        "source_format": contents.format,
        "source_content": candidate.where,
        "source_classes": sorted(contents.recorded_classes)[:LISTED_CLASSES],
        "imported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tensors": len(fit.tensors),
        "tensors_from_file": len(fit.tensors) - len(fit.filled),
        "tensors_filled_with_zeros": fit.filled,
        "evaluation": "eval mode: BatchNorm layers use the running statistics stored in the checkpoint",
    }
    save_weights(module, out, name, card)
    registered = register_weights_file(out, replace=True)
    return ImportedCheckpoint(registered.name, out.resolve(), card)
