"""fusevis register: co-register a PET volume to an MRI volume and write the ITK transform."""
from __future__ import annotations

import signal
import threading
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "register",
        help="co-register PET (moving) to MRI (fixed): rigid then affine, Mattes mutual information",
        description="Writes an ITK transform file (load it in Slicer and apply it to the PET) and prints the 4x4 RAS "
        "matrix that maps MRI (fixed) points to PET (moving) points, as in the demo's true_transform.json.",
    )
    parser.add_argument("--fixed", required=True, type=Path, help="MRI: NIfTI file or DICOM series folder")
    parser.add_argument("--moving", required=True, type=Path, help="PET: NIfTI file or DICOM series folder")
    parser.add_argument("--out", required=True, type=Path, help="transform file to write (.tfm, .txt or .h5)")
    parser.add_argument("--rigid-only", action="store_true", help="skip the affine stage")
    parser.add_argument("--json", action="store_true", help="print matrix, rotation_deg, translation_mm and final_metric as JSON")
    parser.set_defaults(run=run)


def run(args) -> int:
    from tqdm import tqdm

    from ..errors import FuseVisError
    from ..registration import RegistrationCancelled, RegistrationSettings, register_volumes
    from ..transforms import write_transform_file
    from ..volume_io import read_volume
    from . import print_json

    if args.out.suffix not in (".tfm", ".txt", ".h5"):
        raise FuseVisError(f"--out {args.out} must end in .tfm, .txt or .h5 (an ITK transform file)")
    fixed = read_volume(args.fixed)
    moving = read_volume(args.moving)
    cancel = threading.Event()
    # Ctrl-C asks the optimiser to stop at its next iteration instead of interrupting SimpleITK mid-call.
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    bar = tqdm(desc="registering", unit="it", leave=False)

    def show(step) -> None:
        bar.set_postfix_str(f"{step.stage} level {step.level + 1}/{step.levels} metric {step.metric:.4f}")
        bar.update(1)

    try:
        result = register_volumes(
            fixed, moving, RegistrationSettings(affine=not args.rigid_only), progress=show, should_cancel=cancel.is_set
        )
    except RegistrationCancelled:
        raise KeyboardInterrupt from None
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous)
    write_transform_file(result.matrix, args.out)
    summary = result.summary()
    summary["transform_file"] = str(args.out)
    if args.json:
        print_json(summary)
    else:
        print(f"rotation {summary['rotation_deg']:.2f} deg, translation {summary['translation_mm']} mm, final metric {summary['final_metric']:.4f}")
        print(f"transform (MRI -> PET points, ITK/LPS) written to {args.out}")
    return 0
