"""Training a fusion network with equation 4 on random patches, resumable.

One epoch draws ``patches_per_pair`` random PxP patches from every training
pair. Validation runs on the held-out series' whole slices in eval mode.
Checkpoints hold only tensors and plain numbers and are read back with
``weights_only=True``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .device import pick_device
from .errors import FuseVisError
from .fusion_loss import LossWeights, partial_losses, total_loss
from .pair_folder import SlicePair, read_pair_folder, split_by_series
from .registry import get_method
from .training_checkpoint import TrainingState, has_checkpoint, load_checkpoint, save_checkpoint
from .weights import load_weights, save_weights


# Per-epoch validation uses this many evenly spaced held-out slices; the
# model card's final figures use all of them.
_EPOCH_VALIDATION_SLICES = 16
_STATISTICS_PATCHES_PER_PAIR = 4


@dataclass
class TrainingPlan:
    method: str
    data: Path
    epochs: int = 30
    patch: int = 64
    patches_per_pair: int = 4
    batch_size: int | None = None
    learning_rate: float | None = None
    workdir: Path = Path("training-runs")
    out: Path | None = None
    seed: int = 0
    device: str | None = None
    validation_series: list[str] | None = None
    # "batch": BatchNorm normalises with batch statistics while training (the authors' way).
    # "frozen": BatchNorm keeps fixed statistics, so training optimises exactly the
    # function used at evaluation; with small patches this is what lets the network
    # pin black background to 0 (batch statistics of patches vary with their content).
    batchnorm: str = "batch"
    init_weights: Path | None = None
    # The gammas of equation 4 to train with (default: the method's, paper Table 1). The paper tuned
    # them per network until the two modalities' loss curves balanced; on other data the balancing
    # values differ (see the README), so they can be chosen here. Evaluation keeps Table 1's.
    gamma_ssim: float | None = None
    gamma_l2: float | None = None


def stack(images: list[np.ndarray], device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)[:, None]).to(device)


def random_patches(pairs: list[SlicePair], patch: int, count: int, generator: np.random.Generator):
    """``count`` random patches per pair, shuffled, as (mri, pet) arrays."""
    patches = []
    for pair in pairs:
        height, width = pair.mri.shape
        size_y, size_x = min(patch, height), min(patch, width)
        for _ in range(count):
            # Uniform positions on purpose: SSIM's luminance term punishes any
            # offset in black background hard, so the background must be seen
            # as often as it occurs in whole slices.
            y = int(generator.integers(0, height - size_y + 1))
            x = int(generator.integers(0, width - size_x + 1))
            patches.append((pair.mri[y : y + size_y, x : x + size_x], pair.pet[y : y + size_y, x : x + size_x]))
    generator.shuffle(patches)
    return patches


def training_loss_weights(defaults: LossWeights, gamma_ssim: float | None, gamma_l2: float | None) -> LossWeights:
    """The method's loss weights with the requested gammas replaced (each must lie in [0, 1])."""
    for name, value in (("--gamma-ssim", gamma_ssim), ("--gamma-l2", gamma_l2)):
        if value is not None and not 0 <= value <= 1:
            raise FuseVisError(f"{name} must lie between 0 and 1 (it weights the MRI term against the PET term), got {value}")
    return LossWeights(
        defaults.gamma_ssim if gamma_ssim is None else gamma_ssim,
        defaults.gamma_l2 if gamma_l2 is None else gamma_l2,
        defaults.lam,
    )


@torch.no_grad()
def evaluate_pairs(model: torch.nn.Module, pairs: list[SlicePair], device: torch.device) -> dict[str, float]:
    """Mean partial losses over whole slices (one at a time: any size)."""
    sums: dict[str, float] = {}
    for pair in pairs:
        mri, pet = stack([pair.mri], device), stack([pair.pet], device)
        for key, value in partial_losses(model(mri, pet), mri, pet).items():
            sums[key] = sums.get(key, 0.0) + float(value)
    return {key: value / len(pairs) for key, value in sums.items()}


def train(plan: TrainingPlan, resume: bool = False) -> dict:
    method = get_method(plan.method)
    if method.training is None:
        raise FuseVisError(f"{plan.method} has no trainable parameters; nothing to train")
    recipe = method.training
    loss_weights = training_loss_weights(recipe.loss_weights, plan.gamma_ssim, plan.gamma_l2)
    batch_size = plan.batch_size or recipe.batch_size
    learning_rate = plan.learning_rate or recipe.learning_rate
    device = pick_device(plan.device)
    pairs = read_pair_folder(plan.data)
    training_pairs, validation_pairs = split_by_series(pairs, plan.validation_series)
    if not training_pairs:
        raise FuseVisError("every series is held out for validation; leave at least one for training")

    torch.manual_seed(plan.seed)
    model = method.build().to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    run_dir = Path(plan.workdir) / plan.method
    run_dir.mkdir(parents=True, exist_ok=True)
    history: list[dict] = []
    start_epoch, elapsed = 0, 0.0
    if plan.batchnorm not in ("batch", "frozen"):
        raise FuseVisError(f"--batchnorm must be batch or frozen, got {plan.batchnorm!r}")
    if plan.init_weights is not None:
        model.load_state_dict(load_weights(plan.init_weights, model))
    if resume and has_checkpoint(run_dir):
        resumed = load_checkpoint(run_dir, model, optimiser, device)
        history, start_epoch, elapsed = resumed.history, resumed.epoch, resumed.elapsed_s
    elif resume:
        print(f"no checkpoint in {run_dir}; starting from scratch")

    generator = np.random.default_rng(plan.seed + start_epoch)
    started = time.monotonic() - elapsed
    for epoch in range(start_epoch, plan.epochs):
        model.train(plan.batchnorm == "batch")
        patches = random_patches(training_pairs, plan.patch, plan.patches_per_pair, generator)
        sums: dict[str, float] = {}
        steps = 0
        progress = tqdm(range(0, len(patches) - batch_size + 1, batch_size), desc=f"{plan.method} epoch {epoch + 1}/{plan.epochs}", leave=False)
        for first in progress:
            batch = patches[first : first + batch_size]
            mri = stack([p[0] for p in batch], device)
            pet = stack([p[1] for p in batch], device)
            partials = partial_losses(model(mri, pet), mri, pet)
            loss = total_loss(partials, loss_weights)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            steps += 1
            for key, value in partials.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            sums["total"] = sums.get("total", 0.0) + float(loss.detach())
            progress.set_postfix(loss=f"{float(loss.detach()):.4f}")
        train_losses = {key: value / max(steps, 1) for key, value in sums.items()}
        model.eval()
        last = epoch + 1 == plan.epochs
        validation_losses = _validation_losses(model, validation_pairs if last else _spread(validation_pairs), device, recipe.loss_weights)
        history.append({"epoch": epoch + 1, "train": train_losses, "validation": validation_losses})
        elapsed = time.monotonic() - started
        tqdm.write(
            f"{plan.method} epoch {epoch + 1}: train {train_losses['total']:.4f}"
            + (f" validation {validation_losses['total']:.4f}" if validation_losses else "")
            + f" ({elapsed:.0f} s)"
        )
        save_checkpoint(run_dir, model, optimiser, TrainingState(epoch + 1, elapsed, history))
        write_loss_curves(history, run_dir, plan.method)

    model.eval()
    if plan.batchnorm == "batch":
        statistics_patches = random_patches(training_pairs, plan.patch, _STATISTICS_PATCHES_PER_PAIR, np.random.default_rng(plan.seed))
        precise_batchnorm(
            model,
            [
                (stack([p[0] for p in chunk], device), stack([p[1] for p in chunk], device))
                for chunk in (statistics_patches[i : i + batch_size] for i in range(0, len(statistics_patches) - batch_size + 1, batch_size))
            ],
        )
    final_validation = _validation_losses(model, validation_pairs, device, recipe.loss_weights)
    card = {
        "method": plan.method,
        "data": {
            "folder": Path(plan.data).name,
            "training_series": sorted({p.series for p in training_pairs}),
            "validation_series": sorted({p.series for p in validation_pairs}),
            "training_pairs": len(training_pairs),
            "validation_pairs": len(validation_pairs),
        },
        "epochs": len(history),
        "patch": plan.patch,
        "patches_per_pair": plan.patches_per_pair,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "loss_weights": vars(loss_weights),
        "validation_loss_weights": vars(recipe.loss_weights),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "training_time_s": round(elapsed, 1),
        "final_train_losses": history[-1]["train"] if history else {},
        "final_validation_losses": final_validation,
        "batchnorm": plan.batchnorm,
        "initialised_from": Path(plan.init_weights).name if plan.init_weights else None,
    }
    out = Path(plan.out) if plan.out else method.weights_file
    save_weights(model, out, plan.method, card)
    return card


@torch.no_grad()
def precise_batchnorm(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> bool:
    """Replace BatchNorm's running averages by exact averages over many training batches.

    The running statistics are an exponential average of the last few
    batches; evaluation should use the statistics the network was trained
    under, so they are re-estimated as a plain mean over ``batches`` drawn
    exactly like training batches (same patch size and sampling).
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not norms or not batches:
        return False
    saved_momentum = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    for mri, pet in batches:
        model(mri, pet)
    for norm, momentum in zip(norms, saved_momentum):
        norm.momentum = momentum
    model.eval()
    return True


def _spread(pairs: list[SlicePair]) -> list[SlicePair]:
    step = max(1, len(pairs) // _EPOCH_VALIDATION_SLICES)
    return pairs[::step]


def _validation_losses(model, pairs: list[SlicePair], device: torch.device, loss_weights) -> dict[str, float]:
    if not pairs:
        return {}
    losses = evaluate_pairs(model, pairs, device)
    losses["total"] = float(total_loss({key: torch.tensor(value) for key, value in losses.items()}, loss_weights))
    return losses


def write_loss_curves(history: list[dict], run_dir: Path, method: str) -> None:
    """Loss curves as JSON and a PNG plot like the paper's Figure 3."""
    (run_dir / "loss_curves.json").write_text(json.dumps(history, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, style in (("ssim_loss_mri", "C0"), ("ssim_loss_pet", "C1"), ("l2_loss_mri", "C2"), ("l2_loss_pet", "C3")):
        axis = axes[0] if key.startswith("ssim") else axes[1]
        axis.plot(epochs, [h["train"][key] for h in history], style, label=f"{key} (train)")
        if history[-1]["validation"]:
            axis.plot(epochs, [h["validation"][key] for h in history], style + "--", label=f"{key} (validation)")
    for axis, title in zip(axes, ("SSIM losses", "l2 losses")):
        axis.set_xlabel("epoch")
        axis.set_title(f"{method}: {title}")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(run_dir / "loss_curves.png", dpi=100)
    plt.close(figure)
