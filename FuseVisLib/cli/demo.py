"""fusevis demo: build the demo pair, fuse it with every method, write a PNG sheet and the fused volumes."""
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="fuse the built-in demo pair with every method (headless)")
    parser.add_argument("--out", type=Path, default=Path("fusevis-output/demo"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=run)


def run(args) -> int:
    import numpy as np

    from ..demo_data import build_demo, refuse_to_overwrite
    from ..demo_sheet import write_fusion_sheet
    from ..intensity import robust_normalise
    from ..registration import resample_to_reference
    from ..registry import load_method, method_names
    from ..volume_fusion import axial_axis, axial_slices, fuse_volume
    from ..volume_io import read_volume, write_nifti
    from . import print_json

    refuse_to_overwrite(args.out / "inputs")
    files = build_demo(args.out / "inputs")
    mri, pet = read_volume(files.mri), read_volume(files.pet)
    pet = resample_to_reference(pet, mri, np.eye(4))
    mri, pet = mri.with_array(robust_normalise(mri.array)), pet.with_array(robust_normalise(pet.array))
    axis = axial_axis(mri)
    middle = mri.array.shape[axis] // 2
    fused_files, middle_slices = {}, {}
    for name in method_names():
        fused = fuse_volume(load_method(name, device=args.device), mri, pet)
        fused_files[name] = str(write_nifti(fused, args.out / f"fused_{name}.nii.gz"))
        middle_slices[name] = axial_slices(fused.array, axis)[middle]
    sheet = write_fusion_sheet(
        axial_slices(mri.array, axis)[middle], axial_slices(pet.array, axis)[middle], middle_slices, args.out / "fusion_sheet.png"
    )
    summary = {"inputs": {"mri": str(files.mri), "pet": str(files.pet)}, "fused_volumes": fused_files, "sheet": str(sheet), "middle_axial_slice": middle}
    if args.json:
        print_json(summary)
    else:
        print(f"Demo inputs (simulated PET) in {args.out / 'inputs'}")
        print(f"Fused volumes: {args.out}/fused_<method>.nii.gz")
        print(f"Middle axial slice of every method: {sheet}")
    return 0
