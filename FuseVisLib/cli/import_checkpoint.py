"""fusevis import-checkpoint: bring weights trained with the authors' code (or any torch.save) into FuseVis."""
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "import-checkpoint",
        help="import a trained checkpoint safely (nothing in it is executed) as a method NAME@stem",
    )
    parser.add_argument("--method", required=True, help="the network the checkpoint was trained as, e.g. FunFuseAn")
    parser.add_argument("--checkpoint", required=True, type=Path, help=".pt/.pth (whole model or state_dict, zip or legacy), .npz or .safetensors")
    parser.add_argument(
        "--out",
        type=Path,
        help="weights file to write (default: <checkpoint stem>.safetensors in FUSEVIS_USER_MODELS, "
        "~/.local/share/fusevis/models, where FuseVis finds it at every start)",
    )
    parser.add_argument("--replace", action="store_true", help="overwrite an existing --out that came from another file")
    parser.add_argument("--json", action="store_true", help="print the result and model card as JSON")
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..checkpoint_import import import_checkpoint
    from ..imported_methods import user_models_dir
    from . import print_json

    imported = import_checkpoint(args.checkpoint, args.method, args.out, replace=args.replace)
    card = imported.card
    found_at_start = imported.weights_file.parent == user_models_dir().expanduser().resolve()
    if args.json:
        print_json(
            {
                "method": imported.method,
                "out": str(imported.weights_file),
                "sha256": card["source_sha256"],
                "tensors_mapped": card["tensors_from_file"],
                "registered_at_start": found_at_start,
                "card": card,
            }
        )
        return 0
    print(f"{imported.method}: {card['tensors_from_file']} tensors from {card['source_name']} ({card['source_content']})")
    print(f"  sha256 {card['source_sha256']}")
    print(f"  weights {imported.weights_file}")
    if not found_at_start:
        print(
            "  outside the user models directory: register it in each session with "
            "FuseVisLib.imported_methods.register_weights_file(path)"
        )
    return 0
