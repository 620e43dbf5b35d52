"""fusevis demo-data: write the simulated MRI/PET demo pair (and the true misalignment) to a folder."""
from __future__ import annotations

from pathlib import Path


def add_parser(subparsers) -> None:
    from ..demo_data import DEFAULT_RESOLUTION_MM

    parser = subparsers.add_parser(
        "demo-data",
        help="build the demo T2 MRI and simulated FDG-PET (NIfTI or DICOM) from nilearn's MNI152 templates",
        description="Writes mri.nii.gz and pet.nii.gz (simulated FDG-PET with a glioma-like lesion) into --out, or with "
        "--dicom the DICOM series mri/ and pet/; with --misalign the PET is moved and true_transform.json records the motion.",
    )
    parser.add_argument("--out", required=True, type=Path, help="folder to write into (created if needed)")
    parser.add_argument("--misalign", action="store_true", help="move the PET by a few degrees and mm and write true_transform.json")
    parser.add_argument("--resolution", type=float, default=DEFAULT_RESOLUTION_MM, help=f"MRI voxel size in mm, 1-4 (default {DEFAULT_RESOLUTION_MM:g})")
    parser.add_argument("--dicom", action="store_true", help="write DICOM series (folders mri/ and pet/, one study) instead of NIfTI")
    parser.add_argument("--json", action="store_true", help="print the written paths (and the true transform) as JSON")
    parser.set_defaults(run=run)


def run(args) -> int:
    import json

    from ..demo_data import build_demo, refuse_to_overwrite
    from . import print_json

    if not args.dicom:  # the DICOM demo refuses any used mri/ or pet/ folder itself
        refuse_to_overwrite(args.out)
    files = build_demo(args.out, misalign=args.misalign, resolution=args.resolution, dicom=args.dicom)
    if args.json:
        payload = {"mri": str(files.mri), "pet": str(files.pet), "true_transform": str(files.true_transform) if files.true_transform else None}
        if files.true_transform:
            payload["true_transform_record"] = json.loads(files.true_transform.read_text())
        print_json(payload)
    else:
        print(f"demo MRI: {files.mri}")
        print(f"demo PET (simulated): {files.pet}")
        if files.true_transform:
            print(f"true PET misalignment: {files.true_transform}")
    return 0
