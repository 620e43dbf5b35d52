"""Safe import of checkpoints written by the authors' original code (issue 7).

Fixtures are built here: our networks with random weights and BatchNorm
statistics, their classes re-homed in a throwaway module ``notebook_main``
(as the authors' notebooks defined them in ``__main__``) that is gone again
before anything is imported.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
import hashlib
import importlib.util
import io
import json
import os
from pathlib import Path
import pickle
import subprocess
import sys
import types
import warnings
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn
import torch.nn.backends.thnn as thnn

from FuseVisLib import FuseVisError, load_method, method_names, networks, registry
from FuseVisLib.checkpoint_import import import_checkpoint
from FuseVisLib.checkpoint_import.restricted_unpickler import ADMITTED, RecordedOrderedDict, load_restricted
from FuseVisLib.cli import main
from FuseVisLib.imported_methods import register_imported_methods, register_weights_file

NETWORKS = ("FunFuseAn", "MaskNet", "DeepFuse", "DeepPedestrian")
NOTEBOOK = "notebook_main"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch, tmp_path):
    """Imports go to a temporary user models directory and leave the process-wide registry as it was."""
    monkeypatch.setenv("FUSEVIS_USER_MODELS", str(tmp_path / "user-models"))
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))


class LegacyBackend:
    """What PyTorch < 1.0 kept in every module's ``_backend``: pickled as a call into torch.nn.backends.thnn."""

    def __reduce__(self):
        return (thnn._get_thnn_function_backend, ())


def notebook_model(name: str, seed: int = 0) -> nn.Module:
    """A trained-looking network: random weights and BatchNorm statistics, in train mode."""
    torch.manual_seed(seed)
    model = getattr(networks, name)()
    with torch.no_grad():
        for module in model.modules():
            module._backend = LegacyBackend()
            if isinstance(module, nn.BatchNorm2d):
                module.weight.normal_(1.0, 0.2)
                module.bias.normal_(0.0, 0.2)
                module.running_mean.normal_(0.0, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(1234)
    return model.train()


@contextmanager
def classes_in_module(model: nn.Module, module_name: str = NOTEBOOK):
    """While saving, every FuseVis class in ``model`` lives in a module ``module_name`` that exists only meanwhile."""
    namespace = types.ModuleType(module_name)
    sys.modules[module_name] = namespace
    original_classes = {}
    try:
        for module in model.modules():
            cls = type(module)
            if cls.__module__.startswith("FuseVisLib"):
                stand_in = vars(namespace).get(cls.__name__) or type(cls.__name__, (cls,), {"__module__": module_name})
                setattr(namespace, cls.__name__, stand_in)
                original_classes[module] = cls
                module.__class__ = stand_in
        yield
    finally:
        for module, cls in original_classes.items():
            module.__class__ = cls
        del sys.modules[module_name]


def save_whole_model(model: nn.Module, path: Path, *, legacy: bool = True, protocol: int = 2, module_name: str = NOTEBOOK) -> Path:
    with classes_in_module(model, module_name), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch cannot find source text for the stand-in classes
        torch.save(model, path, _use_new_zipfile_serialization=not legacy, pickle_protocol=protocol)
    assert module_name not in sys.modules
    return path


def reference_network(model: nn.Module, name: str) -> nn.Module:
    """The same weights loaded directly into our network, in eval mode."""
    reference = getattr(networks, name)()
    reference.load_state_dict(model.state_dict())
    return reference.eval()


def inputs(seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 1, 20, 20, generator=generator), torch.rand(1, 1, 20, 20, generator=generator)


def max_difference(first: nn.Module, second: nn.Module) -> float:
    mri, pet = inputs()
    with torch.no_grad():
        return (first(mri, pet) - second(mri, pet)).abs().max().item()


def import_with_cli(capsys, method: str, checkpoint: Path, *extra: str) -> dict:
    code = main(["import-checkpoint", "--method", method, "--checkpoint", str(checkpoint), "--json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def weights_written(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.rglob("*.safetensors"))


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("form", ["whole model, legacy format", "state dict, zip format"])
def test_original_checkpoint_imports_with_identical_outputs(name, form, tmp_path, capsys):
    model = notebook_model(name)
    path = tmp_path / f"{name}_trained.pth"
    if form.startswith("whole"):
        save_whole_model(model, path)
    else:
        torch.save(model.state_dict(), path)
    reference = reference_network(model, name)

    result = import_with_cli(capsys, name, path)

    assert result["method"] == f"{name}@{name}_trained"
    assert result["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result["tensors_mapped"] == len(reference.state_dict())
    assert Path(result["out"]) == (tmp_path / "user-models" / f"{name}_trained.safetensors").resolve()
    assert result["registered_at_start"] is True
    imported = load_method(result["method"], device="cpu")
    assert not imported.training
    assert imported.receptive_radius == registry.get_method(name).receptive_radius
    assert max_difference(imported, reference) <= 1e-6
    assert NOTEBOOK not in sys.modules


@pytest.mark.parametrize("name", ["FunFuseAn", "MaskNet", "DeepFuse"])
def test_stored_batchnorm_statistics_decide_the_output(name, tmp_path):
    """Evaluation uses the checkpoint's running statistics: fresh statistics or train mode give other images."""
    model = notebook_model(name)
    imported = load_method(import_checkpoint(save_whole_model(model, tmp_path / "m.pth"), name).method, device="cpu")
    fresh_statistics = reference_network(model, name)
    for module in fresh_statistics.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
    assert max_difference(imported, fresh_statistics) > 1e-3
    assert max_difference(imported, reference_network(model, name).train()) > 1e-3


def _checkpoint_dictionary(model: nn.Module, path: Path) -> None:
    # Adam's state_dict layout, written out (a real first Adam step costs seconds of lazy imports).
    adam_state = {
        index: {"step": torch.tensor(30.0), "exp_avg": torch.randn_like(p), "exp_avg_sq": torch.rand_like(p)}
        for index, p in enumerate(model.parameters())
    }
    optimizer = {"state": adam_state, "param_groups": [{"lr": 2e-4, "params": list(adam_state)}]}
    checkpoint = {"epoch": 30, "model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)


VARIANTS = {
    "whole model, zip format": ("MaskNet", lambda model, path: save_whole_model(model, path, legacy=False)),
    "whole model, legacy format, pickle protocol 1": ("FunFuseAn", lambda model, path: save_whole_model(model, path, protocol=1)),
    "training checkpoint dictionary with optimizer state": ("DeepFuse", _checkpoint_dictionary),
    "DataParallel state dict": ("FunFuseAn", lambda model, path: torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)),
    "npz": ("DeepPedestrian", lambda model, path: np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_other_checkpoint_layouts_import(variant, tmp_path):
    name, save = VARIANTS[variant]
    model = notebook_model(name, seed=3)
    path = tmp_path / ("weights.npz" if variant == "npz" else "weights.pt")
    save(model, path)
    reference = reference_network(model, name)

    imported = import_checkpoint(path, name)

    assert max_difference(load_method(imported.method, device="cpu"), reference) <= 1e-6


def test_model_card_states_source_and_counts(tmp_path):
    path = save_whole_model(notebook_model("FunFuseAn"), tmp_path / "epoch30.pth")
    imported = import_checkpoint(path, "FunFuseAn")

    card = json.loads(imported.weights_file.with_suffix(".json").read_text())
    assert card["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert card["base_method"] == "FunFuseAn"
    assert card["method"] == imported.method == "FunFuseAn@epoch30"
    assert card["source_name"] == "epoch30.pth"
    assert card["tensors"] == 72 and card["tensors_from_file"] == 72
    assert "notebook_main.FunFuseAn" in card["source_classes"]
    assert datetime.fromisoformat(card["imported"]).date() == datetime.now(timezone.utc).date()


def _payloads(marker: Path) -> dict:
    return {
        "os.system": (os.system, (f"touch {marker}",)),
        "builtins.exec": (exec, (f"open({str(marker)!r}, 'w').close()",)),
        "subprocess.call": (subprocess.call, (["touch", str(marker)],)),
        "numpy.save": (np.save, (str(marker), np.zeros(1))),
    }


class Payload:
    def __init__(self, reduce):
        self.reduce = reduce

    def __reduce__(self):
        return self.reduce


@pytest.mark.parametrize("payload", ["os.system", "builtins.exec", "subprocess.call", "numpy.save"])
@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_checkpoint_that_runs_code_is_refused_and_nothing_runs(payload, legacy, tmp_path):
    control = tmp_path / "control.npy"
    pickle.loads(pickle.dumps(Payload(_payloads(control)[payload])))
    assert control.exists(), "the payload must really create a file when unpickled the usual way"

    marker = tmp_path / "created.npy"
    function, _ = reduce = _payloads(marker)[payload]
    path = tmp_path / "evil.pt"
    checkpoint = {"model_state_dict": notebook_model("FunFuseAn").state_dict(), "note": Payload(reduce)}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)

    with pytest.raises(FuseVisError) as refusal:
        import_checkpoint(path, "FunFuseAn")

    message = str(refusal.value)
    assert "refused" in message and "Nothing from the file was executed" in message
    assert f"{function.__module__}.{function.__name__}" in message
    assert not marker.exists()
    assert not weights_written(tmp_path / "user-models")


@pytest.mark.parametrize(
    "target",
    [b"ctorch._utils\n_rebuild_tensor_v2\n", b"ctorch\nFloatStorage\n", b"ccollections\nOrderedDict\n"],
    ids=["admitted function", "storage type", "container class"],
)
def test_file_cannot_alter_what_the_unpickler_admits(target):
    """Pickle's BUILD sets state on an object: aimed at an admitted object it fails, and later loads are unaffected."""
    # <target> (None, {"__defaults__": (1,)}) BUILD: set __defaults__ as a slot attribute.
    crafted = b"\x80\x02" + target + b"N}X\x0c\x00\x00\x00__defaults__K\x01\x85s\x86b."
    with pytest.raises((ValueError, TypeError, AttributeError)):
        load_restricted(io.BytesIO(crafted))
    assert ADMITTED[("torch._utils", "_rebuild_tensor_v2")].function.__defaults__ == (False, None, None)
    assert ADMITTED[("torch", "FloatStorage")].dtype == torch.float32
    assert "__defaults__" not in vars(RecordedOrderedDict)


def test_loader_never_imports_the_modules_a_file_names(tmp_path, monkeypatch):
    """A notebook module that does exist on sys.path is still not imported (its import would leave a file)."""
    model = notebook_model("DeepFuse")
    path = save_whole_model(model, tmp_path / "deepfuse.pth", module_name="sneaky_notebook")
    marker = tmp_path / "imported.txt"
    (tmp_path / "sneaky_notebook.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert importlib.util.find_spec("sneaky_notebook") is not None

    imported = import_checkpoint(path, "DeepFuse")

    assert not marker.exists() and "sneaky_notebook" not in sys.modules
    assert imported.card["source_content"] == "the whole model (sneaky_notebook.DeepFuse)"
    assert max_difference(load_method(imported.method, device="cpu"), reference_network(model, "DeepFuse")) <= 1e-6


@pytest.mark.parametrize("keep", [10, 200, 0.5, -3], ids=["magic", "pickle", "storages", "last-bytes"])
def test_truncated_legacy_file_is_reported(keep, tmp_path):
    whole = save_whole_model(notebook_model("FunFuseAn"), tmp_path / "whole.pth").read_bytes()
    cut = int(len(whole) * keep) if isinstance(keep, float) else keep % len(whole)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(whole[:cut])

    with pytest.raises(FuseVisError, match="truncated or damaged"):
        import_checkpoint(truncated, "FunFuseAn")
    assert not weights_written(tmp_path / "user-models")


def test_truncated_or_inconsistent_zip_file_is_reported(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(notebook_model("MaskNet").state_dict(), path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FuseVisError, match="truncated or damaged"):
        import_checkpoint(truncated, "MaskNet")

    # A storage entry shorter than the tensor it backs: rewritten archive, everything else intact.
    short = tmp_path / "short.pt"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(short, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data[:-4] if info.filename.endswith("/data/0") else data)
    with pytest.raises(FuseVisError, match=r"damaged .*data/0 holds \d+ bytes, its storage needs"):
        import_checkpoint(short, "MaskNet")


def test_wrong_method_lists_mismatches_and_names_the_fitting_network(tmp_path, capsys):
    path = save_whole_model(notebook_model("MaskNet"), tmp_path / "masknet.pth")

    code = main(["import-checkpoint", "--method", "FunFuseAn", "--checkpoint", str(path)])

    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert "does not fit FunFuseAn" in error
    assert "mri_lf.0.weight: expected (16, 1, 9, 9), not in the file" in error
    assert "it fits MaskNet: run again with --method MaskNet" in error
    assert not weights_written(tmp_path / "user-models")


def test_a_checkpoint_of_no_known_network_points_to_registering_ones_own(tmp_path, capsys):
    own = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))
    path = tmp_path / "own.pth"
    torch.save(own.state_dict(), path)

    code = main(["import-checkpoint", "--method", "DeepFuse", "--checkpoint", str(path)])

    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "does not fit DeepFuse" in error
    assert "it fits" not in error and "FuseVisLib.register_method" in error
    assert not weights_written(tmp_path / "user-models")


def test_wrong_shape_is_listed_with_both_shapes(tmp_path):
    state = notebook_model("FunFuseAn").state_dict()
    state["mri_lf.0.weight"] = torch.zeros(16, 1, 7, 7)
    path = tmp_path / "reshaped.pt"
    torch.save(state, path)

    with pytest.raises(FuseVisError, match=r"1 mismatch, first: mri_lf\.0\.weight: expected \(16, 1, 9, 9\), found \(16, 1, 7, 7\)"):
        import_checkpoint(path, "FunFuseAn")


def test_a_safetensors_name_without_its_header_says_so(tmp_path):
    path = tmp_path / "random.safetensors"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(FuseVisError, match="is not a valid safetensors file"):
        import_checkpoint(path, "FunFuseAn")


def test_weights_with_nan_are_refused_on_import_and_on_load(tmp_path):
    from safetensors.torch import save_file

    from FuseVisLib.weights import load_weights

    state = notebook_model("FunFuseAn").state_dict()
    state["recon1.0.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "diverged.pt"
    torch.save(state, path)
    with pytest.raises(FuseVisError, match=r"holds NaN or infinite values in 1 tensor\(s\) \(recon1\.0\.weight\); the training that wrote it diverged"):
        import_checkpoint(path, "FunFuseAn")
    assert not weights_written(tmp_path / "user-models")
    written = tmp_path / "diverged.safetensors"  # written by other tools, or imported before this check existed
    save_file({key: value.contiguous() for key, value in state.items()}, str(written))
    with pytest.raises(FuseVisError, match="holds NaN or infinite values"):
        load_weights(written, registry.get_method("FunFuseAn").build())


def test_imported_methods_are_registered_when_fusevis_starts(tmp_path):
    user_models = tmp_path / "user-models"
    import_checkpoint(save_whole_model(notebook_model("DeepFuse"), tmp_path / "mine.pth"), "DeepFuse")
    (user_models / "garbage.safetensors").write_bytes(b"not safetensors at all")
    (user_models / "garbage.json").write_text(json.dumps({"base_method": "FunFuseAn"}))
    save_file({"x": torch.zeros(1)}, str(user_models / "no-card.safetensors"))
    save_file(networks.MaskNet().state_dict(), str(user_models / "unknown-base.safetensors"))
    (user_models / "unknown-base.json").write_text(json.dumps({"base_method": "NoSuchNet"}))

    script = "import json, FuseVisLib; print(json.dumps(FuseVisLib.method_names())); print(FuseVisLib.load_method('DeepFuse@mine').receptive_radius)"
    environment = {**os.environ, "FUSEVIS_USER_MODELS": str(user_models)}
    started = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, cwd=REPO, timeout=120)

    assert started.returncode == 0, started.stderr
    names_line, radius_line = started.stdout.strip().splitlines()[-2:]
    names = json.loads(names_line)
    assert "DeepFuse@mine" in names and not any(name.endswith(("@garbage", "@no-card", "@unknown-base")) for name in names)
    assert radius_line == "12"
    assert started.stderr.count("FuseVisWarning: skipping imported model") == 3


def test_methods_table_stays_aligned_for_long_imported_names(tmp_path):
    user_models = tmp_path / "user-models"
    long_name = "deepfuse-fine-tuned-on-our-glioma-cases"
    import_checkpoint(save_whole_model(notebook_model("DeepFuse"), tmp_path / "mine.pth"), "DeepFuse", user_models / f"{long_name}.safetensors")
    environment = {**os.environ, "FUSEVIS_USER_MODELS": str(user_models)}
    listed = subprocess.run([sys.executable, "-m", "FuseVisLib", "methods"], capture_output=True, text=True, env=environment, cwd=REPO, timeout=120)

    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.strip().splitlines()
    assert any(row.startswith(f"DeepFuse@{long_name} ") for row in rows)
    assert len({row.index(" parameters") for row in rows}) == 1, listed.stdout


def test_weights_file_anywhere_can_be_registered(tmp_path):
    out = tmp_path / "elsewhere" / "custom.safetensors"
    imported = import_checkpoint(save_whole_model(notebook_model("MaskNet"), tmp_path / "m.pth"), "MaskNet", out)
    assert imported.method == "MaskNet@custom" and imported.weights_file == out.resolve()
    del registry._METHODS["MaskNet@custom"]
    assert register_imported_methods() == []  # it is not in the user models directory

    method = register_weights_file(out)

    assert method.name == "MaskNet@custom" and method.receptive_radius == 8
    assert method.training == registry.get_method("MaskNet").training
    assert register_weights_file(out) is method
    assert "MaskNet@custom" in method_names()
    other = tmp_path / "other" / "custom.safetensors"
    import_checkpoint(save_whole_model(notebook_model("MaskNet", seed=5), tmp_path / "m5.pth"), "MaskNet", other)
    assert registry.get_method("MaskNet@custom").weights_file == other.resolve()  # a fresh import takes the name
    with pytest.raises(FuseVisError, match="already registered"):
        register_weights_file(out)


def test_existing_weights_from_another_checkpoint_are_not_overwritten(tmp_path):
    out = tmp_path / "user-models" / "shared.safetensors"
    import_checkpoint(save_whole_model(notebook_model("DeepPedestrian", seed=1), tmp_path / "a.pth"), "DeepPedestrian", out)
    second = save_whole_model(notebook_model("DeepPedestrian", seed=2), tmp_path / "b.pth")

    with pytest.raises(FuseVisError, match="already exists .*imported from a.pth"):
        import_checkpoint(second, "DeepPedestrian", out)
    replaced = import_checkpoint(second, "DeepPedestrian", out, replace=True)

    assert replaced.card["source_name"] == "b.pth"
