"""fusevis train: train one network on a folder of MRI/PET pairs."""
from pathlib import Path

import torch


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a fusion network on MRI/ PET/ slice pairs")
    parser.add_argument("--method", required=True)
    parser.add_argument("--data", required=True, type=Path, help="folder with MRI/ and PET/ images of matching names")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patch", type=int, default=64, help="side of the random training patches (px)")
    parser.add_argument("--patches-per-pair", type=int, default=4)
    parser.add_argument("--batch-size", type=int, help="default: the authors' batch size for the method")
    parser.add_argument("--lr", type=float, help="default: the authors' learning rate for the method")
    parser.add_argument("--validation-series", nargs="*", help="series held out (default: the smallest)")
    parser.add_argument("--workdir", type=Path, default=Path("training-runs"), help="checkpoints and loss curves")
    parser.add_argument("--out", type=Path, help="weights file (default: the method's file in Resources/Models)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --workdir")
    parser.add_argument("--batchnorm", choices=("batch", "frozen"), default="batch", help="BatchNorm statistics while training (see the README)")
    parser.add_argument("--init", type=Path, help="start from these weights (safetensors) instead of a random initialisation")
    parser.add_argument("--gamma-ssim", type=float, help="gamma_ssim of equation 4 for training (default: the method's, paper Table 1)")
    parser.add_argument("--gamma-l2", type=float, help="gamma_l2 of equation 4 for training (default: the method's, paper Table 1)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="print the model card as JSON")
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..training import TrainingPlan, train
    from . import print_json

    if args.threads:
        torch.set_num_threads(args.threads)
    plan = TrainingPlan(
        method=args.method,
        data=args.data,
        epochs=args.epochs,
        patch=args.patch,
        patches_per_pair=args.patches_per_pair,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        workdir=args.workdir,
        out=args.out,
        device=args.device,
        validation_series=args.validation_series,
        batchnorm=args.batchnorm,
        init_weights=args.init,
        gamma_ssim=args.gamma_ssim,
        gamma_l2=args.gamma_l2,
    )
    card = train(plan, resume=args.resume)
    if args.json:
        print_json(card)
    else:
        print(f"{args.method}: trained {card['epochs']} epochs in {card['training_time_s']} s; weights in {args.out or 'Resources/Models'}")
    return 0
