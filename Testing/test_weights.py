"""Weights as safetensors: round trip, and clear errors for missing, corrupt or foreign files."""
import pickle

import pytest
import torch

import FuseVisLib
from FuseVisLib.errors import FuseVisError
from FuseVisLib.registry import get_method
from FuseVisLib.weights import load_weights, read_model_card, save_weights


def test_round_trip_keeps_every_tensor_and_the_model_card(tmp_path):
    torch.manual_seed(3)
    module = get_method("FunFuseAn").build()
    for norm in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        norm.running_mean.uniform_(-1, 1)
    path = save_weights(module, tmp_path / "f.safetensors", "FunFuseAn", {"epochs": 3})
    loaded = FuseVisLib.load_method("FunFuseAn", weights_file=path)
    for key, value in module.state_dict().items():
        assert torch.equal(loaded.state_dict()[key].cpu(), value), key
    assert read_model_card(path) == {"epochs": 3}
    assert not loaded.training


def test_missing_weights_file_says_how_to_get_it(tmp_path):
    with pytest.raises(FuseVisError, match="missing; train it with `fusevis train`"):
        FuseVisLib.load_method("MaskNet", weights_file=tmp_path / "absent.safetensors")


def test_corrupt_file_is_refused(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(FuseVisError, match="not a readable safetensors file"):
        FuseVisLib.load_method("MaskNet", weights_file=path)


def test_pickle_is_never_loaded(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps({"weight": [1, 2, 3]}))
    with pytest.raises(FuseVisError, match="not a readable safetensors file"):
        FuseVisLib.load_method("DeepFuse", weights_file=path)


def test_weights_of_another_network_are_refused(tmp_path):
    path = save_weights(get_method("DeepFuse").build(), tmp_path / "deepfuse.safetensors", "DeepFuse")
    with pytest.raises(FuseVisError, match="does not fit MaskNet"):
        load_weights(path, get_method("MaskNet").build())
