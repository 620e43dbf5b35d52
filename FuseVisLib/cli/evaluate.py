"""fusevis evaluate: the four partial losses of Table 1 and the total, per method, on a folder of pairs."""
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="partial losses of every method on MRI/ PET/ slice pairs")
    parser.add_argument("--data", required=True, type=Path, help="folder with MRI/ and PET/ images of matching names")
    parser.add_argument("--methods", nargs="+", default=["all"], help="method names, or all")
    parser.add_argument("--series", nargs="+", help="only these series (e.g. the validation series)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..errors import FuseVisError
    from ..evaluation import evaluate_methods
    from ..pair_folder import read_pair_folder
    from ..registry import get_method, method_names
    from . import print_json

    methods = method_names() if args.methods == ["all"] else args.methods
    for name in methods:
        get_method(name)
    pairs = read_pair_folder(args.data)
    if args.series:
        pairs = [pair for pair in pairs if pair.series in set(args.series)]
        if not pairs:
            raise FuseVisError(f"no pairs of series {args.series} in {args.data}; drop --series or name a series the folder has")
    results = evaluate_methods(pairs, methods, device=args.device)
    payload = {"data": str(args.data), "pairs": len(pairs), "methods": results}
    if args.json:
        print_json(payload)
        return 0
    columns = ("ssim_loss_mri", "ssim_loss_pet", "l2_loss_mri", "l2_loss_pet", "total")
    print(f"{len(pairs)} pairs from {args.data}")
    print(f"{'method':<20}" + "".join(f"{c:>15}" for c in columns))
    for name, losses in results.items():
        print(f"{name:<20}" + "".join(f"{losses[c]:>15.4f}" for c in columns))
    return 0
