"""The loss frontier: optimised fused images bound what networks reach, and trade one modality for the other."""
import json

import torch

from FuseVisLib.cli import main
from FuseVisLib.fusion_loss import LossWeights, partial_losses, total_loss
from FuseVisLib.loss_frontier import optimal_fused_images
from FuseVisLib.pair_folder import read_pair_folder
from FuseVisLib.training import stack


def test_optimal_images_beat_the_plain_average_and_both_copies(pair_folder):
    pairs = read_pair_folder(pair_folder)
    mri, pet = stack([p.mri for p in pairs], torch.device("cpu")), stack([p.pet for p in pairs], torch.device("cpu"))
    weights = LossWeights(0.5, 0.5)
    fused = optimal_fused_images(mri, pet, weights, steps=150)
    best = float(total_loss(partial_losses(fused, mri, pet), weights))
    for candidate in ((mri + pet) / 2, mri, pet):
        assert best < float(total_loss(partial_losses(candidate, mri, pet), weights))
    assert float(fused.min()) >= 0 and float(fused.max()) <= 1


def test_command_sweeps_gamma_and_weighting_mri_lowers_its_loss(pair_folder, capsys):
    assert main(["loss-frontier", "--data", str(pair_folder), "--gammas", "0.1", "0.9", "--steps", "150", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    low, high = report["frontier"]
    assert report["pairs"] == 6 and low["gamma_ssim"] == 0.1
    assert high["ssim_loss_mri"] < low["ssim_loss_mri"] and high["ssim_loss_pet"] > low["ssim_loss_pet"]


def test_a_gamma_outside_zero_one_is_refused(pair_folder, capsys):
    assert main(["loss-frontier", "--data", str(pair_folder), "--gammas", "1.2", "--steps", "1"]) != 0
    assert "outside [0, 1]" in capsys.readouterr().err
