"""Imported weights as methods of their own: ``FunFuseAn@mycheckpoint`` beside ``FunFuseAn``.

``fusevis import-checkpoint`` writes a safetensors file plus a model card
naming its base network into the user models directory (FUSEVIS_USER_MODELS,
default ``~/.local/share/fusevis/models``). Importing FuseVisLib registers
every such file as ``<base>@<file stem>``: the base network's builder and
receptive radius with the imported weights, so saliency, the Slicer module,
the viewer and ``fusevis analyze`` offer it like any other method. Files
elsewhere join with :func:`register_weights_file`.
"""
from __future__ import annotations

import os
from pathlib import Path
import warnings

from safetensors import SafetensorError, safe_open

from .errors import FuseVisError, FuseVisWarning
from .registry import FusionMethod, get_method, method_names, register_method
from .weights import read_model_card

USER_MODELS_ENV = "FUSEVIS_USER_MODELS"
SEPARATOR = "@"


def user_models_dir() -> Path:
    """Where imported weights live: FUSEVIS_USER_MODELS, else ~/.local/share/fusevis/models."""
    override = os.environ.get(USER_MODELS_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".local" / "share" / "fusevis" / "models"


def base_method_name(name: str) -> str:
    """The network behind a method: ``FunFuseAn`` for ``FunFuseAn@mycheckpoint`` and for ``FunFuseAn``."""
    return get_method(name).extra.get("base_method", name)


def _check_tensor_shapes(path: Path, base: FusionMethod) -> None:
    """Compare the file's header (names and shapes, no tensor data) with the base network."""
    expected = {name: tuple(tensor.shape) for name, tensor in base.build().state_dict().items()}
    try:
        with safe_open(str(path), framework="pt") as weights:
            found = {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}
    except (SafetensorError, OSError) as error:
        raise FuseVisError(f"{path} is not a readable safetensors file ({error}); import the checkpoint again") from None
    if found != expected:
        differing = sorted(set(found) ^ set(expected)) + [n for n in expected if n in found and found[n] != expected[n]]
        raise FuseVisError(
            f"{path} does not fit {base.name} (first differing tensors: {', '.join(differing[:5])}); "
            "import the checkpoint again with the right --method"
        )


def register_weights_file(path: str | Path, *, replace: bool = False) -> FusionMethod:
    """Register a weights file whose model card names its base network, as ``<base>@<file stem>``.

    Registering the same file again returns the existing entry; a different
    file under a name already taken needs ``replace=True``.
    """
    path = Path(path).expanduser().resolve()
    if path.suffix != ".safetensors" or not path.is_file():
        raise FuseVisError(f"{path} is not a .safetensors weights file; convert checkpoints with `fusevis import-checkpoint`")
    try:
        card = read_model_card(path)
    except (OSError, ValueError) as error:
        raise FuseVisError(f"the model card of {path} is unreadable ({error}); import the checkpoint again") from None
    named = (card.get("base_method") or card.get("method")) if isinstance(card, dict) else None
    if not isinstance(named, str):
        raise FuseVisError(
            f"{path} has no model card ({path.with_suffix('.json').name}) naming its base method; "
            "import it with `fusevis import-checkpoint --method NAME`"
        )
    base = get_method(base_method_name(named))
    if base.weights_file is None:
        raise FuseVisError(f"{path}'s model card names {base.name}, which has no weights; name a trainable network")
    _check_tensor_shapes(path, base)
    name = f"{base.name}{SEPARATOR}{path.stem}"
    if name in method_names():
        current = get_method(name)
        if current.weights_file is not None and current.weights_file.resolve() == path:
            return current
        if not replace:
            raise FuseVisError(f"{name} is already registered for {current.weights_file}; rename {path.name} or pass replace=True")
    source = card.get("source_name", path.name)
    method = register_method(
        name,
        base.build,
        base.receptive_radius,
        path,
        # The authors' notebooks train with the same recipe, so scores use the base's loss weights.
        training=base.training,
        description=f"{base.name} with weights imported from {source}",
        replace=True,
    )
    method.extra["base_method"] = base.name
    return method


def register_imported_methods(directory: str | Path | None = None) -> list[FusionMethod]:
    """Register every weights file in ``directory`` (default: the user models directory).

    Runs when FuseVisLib is imported, so a bad file is skipped with a warning
    instead of stopping FuseVis.
    """
    try:
        directory = Path(directory) if directory is not None else user_models_dir()
        files = sorted(directory.glob("*.safetensors")) if directory.is_dir() else []
    except (OSError, RuntimeError) as error:  # RuntimeError: no home directory to be found
        warnings.warn(f"cannot list imported models ({error}); set FUSEVIS_USER_MODELS to a readable folder", FuseVisWarning, stacklevel=2)
        return []
    registered = []
    for path in files:
        try:
            registered.append(register_weights_file(path))
        except Exception as error:  # any bad user file: skip it, FuseVis must still import
            warnings.warn(f"skipping imported model {path}: {error}", FuseVisWarning, stacklevel=2)
    return registered
