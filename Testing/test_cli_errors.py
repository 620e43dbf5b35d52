"""Command-line errors are one clear line and a non-zero exit, never a traceback."""
import subprocess
import sys

import pytest

from FuseVisLib.registry import get_method


def _fusevis(*args, env=None):
    return subprocess.run([sys.executable, "-m", "FuseVisLib", *args], capture_output=True, text=True, env=env, timeout=300)


def test_evaluate_on_a_folder_without_pairs(tmp_path):
    (tmp_path / "MRI").mkdir()
    (tmp_path / "PET").mkdir()
    result = _fusevis("evaluate", "--data", str(tmp_path), "--json")
    assert result.returncode != 0
    assert "no MRI/PET image pairs" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_with_an_unknown_method(pair_folder):
    result = _fusevis("evaluate", "--data", str(pair_folder), "--methods", "NoSuchNet")
    assert result.returncode != 0
    assert "unknown fusion method 'NoSuchNet'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_evaluate_with_missing_or_corrupt_weights(pair_folder, tmp_path, damage):
    import os
    import shutil

    models = tmp_path / "models"
    models.mkdir()
    source = get_method("DeepFuse").weights_file
    if damage == "corrupt":
        (models / "DeepFuse.safetensors").write_bytes(b"not a safetensors file")
    elif source.is_file():
        shutil.copy(source, models / "unrelated.safetensors")
    result = _fusevis("evaluate", "--data", str(pair_folder), "--methods", "DeepFuse", env={**os.environ, "FUSEVIS_MODELS_DIR": str(models)})
    assert result.returncode != 0
    expected = "is missing" if damage == "missing" else "not a readable safetensors file"
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_methods_json_lists_all_five():
    import json

    result = _fusevis("methods", "--json")
    assert result.returncode == 0
    listed = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert {"WeightedAveraging", "FunFuseAn", "MaskNet", "DeepFuse", "DeepPedestrian"} <= set(listed)
    assert listed["DeepPedestrian"]["receptive_radius"] == 17 and listed["MaskNet"]["parameters"] == 754_275


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "meta"])
def test_an_unknown_device_is_one_clear_line(pair_folder, device):
    result = _fusevis("evaluate", "--data", str(pair_folder), "--methods", "WeightedAveraging", "--device", device)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"device {device!r} is not" in result.stderr and "use cpu, cuda, cuda:N or auto" in result.stderr


@pytest.mark.parametrize("threads", ["0", "-1"])
def test_bench_threads_must_be_positive(threads):
    result = _fusevis("bench", "--size", "16", "--methods", "WeightedAveraging", "--threads", threads)
    assert result.returncode == 2 and "--threads must be at least 1" in result.stderr and "Traceback" not in result.stderr
