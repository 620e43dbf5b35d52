"""Training: a step lowers the loss; the command trains, checkpoints, resumes and logs curves."""
import json

import torch

from FuseVisLib.cli import main
from FuseVisLib.fusion_loss import partial_losses, total_loss
from FuseVisLib.pair_folder import read_pair_folder
from FuseVisLib.registry import get_method
from FuseVisLib.training import stack
from FuseVisLib.weights import read_model_card


def test_one_training_step_lowers_the_loss(pair_folder):
    pairs = read_pair_folder(pair_folder)
    method = get_method("FunFuseAn")
    torch.manual_seed(0)
    model = method.build().train()
    mri, pet = stack([p.mri for p in pairs], torch.device("cpu")), stack([p.pet for p in pairs], torch.device("cpu"))
    optimiser = torch.optim.Adam(model.parameters(), lr=method.training.learning_rate)

    def loss():
        return total_loss(partial_losses(model(mri, pet), mri, pet), method.training.loss_weights)

    before = loss()
    optimiser.zero_grad()
    before.backward()
    optimiser.step()
    with torch.no_grad():
        after = loss()
    assert float(after) < float(before.detach())


def test_train_command_checkpoints_resumes_and_writes_curves(pair_folder, tmp_path):
    workdir, out = tmp_path / "runs", tmp_path / "deepfuse.safetensors"
    common = ["train", "--method", "DeepFuse", "--data", str(pair_folder), "--patch", "32", "--patches-per-pair", "1", "--workdir", str(workdir), "--out", str(out)]
    assert main([*common, "--epochs", "1"]) == 0
    assert main([*common, "--epochs", "2", "--resume"]) == 0
    history = json.loads((workdir / "DeepFuse" / "loss_curves.json").read_text())
    assert [entry["epoch"] for entry in history] == [1, 2]
    assert set(history[0]["validation"]) >= {"ssim_loss_mri", "ssim_loss_pet", "l2_loss_mri", "l2_loss_pet", "total"}
    assert (workdir / "DeepFuse" / "loss_curves.png").stat().st_size > 0
    card = read_model_card(out)
    assert card["epochs"] == 2 and card["patch"] == 32
    assert set(card["data"]["training_series"]).isdisjoint(card["data"]["validation_series"])
    assert card["final_validation_losses"]["total"] > 0


def test_chosen_gammas_train_and_are_recorded_while_validation_keeps_table_1(pair_folder, tmp_path):
    out = tmp_path / "deepfuse.safetensors"
    args = ["train", "--method", "DeepFuse", "--data", str(pair_folder), "--patch", "32", "--patches-per-pair", "1",
            "--epochs", "1", "--workdir", str(tmp_path / "runs"), "--out", str(out), "--gamma-ssim", "0.3"]
    assert main(args) == 0
    card = read_model_card(out)
    table_1 = get_method("DeepFuse").training.loss_weights
    assert card["loss_weights"]["gamma_ssim"] == 0.3 and card["loss_weights"]["gamma_l2"] == table_1.gamma_l2
    assert card["validation_loss_weights"]["gamma_ssim"] == table_1.gamma_ssim


def test_a_gamma_outside_zero_one_is_refused_by_name(pair_folder, tmp_path, capsys):
    args = ["train", "--method", "DeepFuse", "--data", str(pair_folder), "--workdir", str(tmp_path), "--gamma-ssim", "1.5"]
    assert main(args) != 0
    assert "--gamma-ssim must lie between 0 and 1" in capsys.readouterr().err
