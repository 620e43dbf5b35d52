"""fusevis loss-frontier: the lowest partial losses any fusion network could reach on a folder of pairs."""
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "loss-frontier", help="optimise the fused images themselves: the best partial losses equation 4 allows on these pairs"
    )
    parser.add_argument("--data", required=True, type=Path, help="folder with MRI/ and PET/ images of matching names")
    parser.add_argument("--series", nargs="+", help="only these series")
    parser.add_argument("--every", type=int, default=1, help="use every N-th pair (the optimisation holds all chosen pairs in memory)")
    parser.add_argument("--gammas", nargs="+", type=float, default=[0.2, 0.3, 0.4, 0.5], help="gamma_ssim values to sweep")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps per gamma")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..errors import FuseVisError
    from ..loss_frontier import loss_frontier
    from ..pair_folder import read_pair_folder
    from . import print_json

    if args.every < 1 or args.steps < 1:
        raise FuseVisError("--every and --steps must be at least 1")
    pairs = read_pair_folder(args.data)
    if args.series:
        pairs = [pair for pair in pairs if pair.series in set(args.series)]
    pairs = pairs[:: args.every]
    points = loss_frontier(pairs, args.gammas, args.steps, device=args.device)
    if args.json:
        print_json({"data": str(args.data), "pairs": len(pairs), "steps": args.steps, "frontier": points})
        return 0
    columns = ("ssim_loss_mri", "ssim_loss_pet", "l2_loss_mri", "l2_loss_pet", "ssim_loss_sum")
    print(f"optimal fused images of {len(pairs)} pairs from {args.data} ({args.steps} Adam steps each)")
    print(f"{'gamma_ssim':>10}" + "".join(f"{c:>15}" for c in columns))
    for point in points:
        print(f"{point['gamma_ssim']:>10.3f}" + "".join(f"{point[c]:>15.4f}" for c in columns))
    return 0
