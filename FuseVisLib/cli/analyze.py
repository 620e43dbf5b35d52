"""fusevis analyze: compare fusion methods on one MRI/PET pair or a folder of cases, headless, with a report."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _pixel(text: str):
    from ..analysis.settings import RequestedPixel

    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3) or min(numbers) < 0:
        raise argparse.ArgumentTypeError(f"--pixel takes ROW,COL or ROW,COL,SLICE (non-negative integers), got {text!r}")
    return RequestedPixel(*numbers)


def _slices(text: str) -> tuple[int, int]:
    try:
        first, _, last = text.partition("..")
        bounds = (int(first), int(last or first))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--slices takes K..L (axial slice indices, inclusive) or K, got {text!r}") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"--slices {text}: need 0 <= K <= L")
    return bounds


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="compare fusion methods on MRI/PET cases: fused, guidance and Jacobian images, figure sheets, report.html",
        description="For each case: fused images (PNG for 2-D pairs, NIfTI for volumes), guidance MRI/PET and guidance RGB, "
        "Jacobian images at the principal pixels (default: found automatically, the darkest PET pixel in the brain that is "
        "bright on MRI and the brightest PET pixel that is dark on MRI, paper section 5.3), scatterplots, sheets like the "
        "paper's Figures 4-8, summary.json (partial losses, SSIM, per-pixel Jacobian measures, timing per stage) and a "
        "self-contained report.html. Exit status 1 when some case failed.",
    )
    inputs = parser.add_argument_group("inputs (either --mri and --pet, or --cases)")
    inputs.add_argument("--mri", type=Path, help="MRI: 2-D image (PNG, .npy) or volume (NIfTI file, DICOM series folder)")
    inputs.add_argument("--pet", type=Path, help="PET, the same kind as the MRI (a PNG may be colour-mapped)")
    inputs.add_argument(
        "--cases", type=Path, help="folder of cases: one sub-folder per case holding mri.* and pet.*, or MRI/ and PET/ with matching names"
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (one sub-folder per case with --cases)")
    parser.add_argument(
        "--methods", nargs="+", default=["all"], metavar="NAME",
        help="methods to compare (names, or 'all': every registered method; 'all' skips methods without trained weights)",
    )
    parser.add_argument("--register", action="store_true", help="register PET to MRI (rigid then affine) before fusing volumes")
    parser.add_argument(
        "--pixel", type=_pixel, action="append", default=[], metavar="ROW,COL[,SLICE]",
        help="principal pixel (repeatable): row and column of the (axial) slice array, and for a volume the axial slice "
        "index (for an axial volume: J, I and K of Slicer's IJK). Default: found automatically",
    )
    parser.add_argument(
        "--slices", type=_slices, metavar="K..L",
        help="volumes: axial slices to analyse (guidance images, pixel search), inclusive. Default: the slices holding the pixels",
    )
    parser.add_argument("--gamma1", type=float, default=0.3, help="gamma of the Jacobian renders, 0.1-2.0 (paper Figure 7: 0.3)")
    parser.add_argument("--gamma2", type=float, default=0.5, help="gamma of the guidance renders, 0.1-2.0 (paper Figure 5: 0.5)")
    parser.add_argument("--neighbourhood", type=int, default=10, help="half-width (px) of the zoomed region and the Jacobian mass measures")
    parser.add_argument(
        "--views", action="store_true",
        help="also write the zoomed neighbourhood view (inputs, fused, Jacobian images) per method and pixel, 1-2 s each",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA if present)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run)


def run(args) -> int:
    import json

    from ..analysis import AnalysisSettings, discover_cases, run_analysis, select_methods, single_case
    from ..analysis.run_case import SUMMARY_FILE
    from ..errors import FuseVisError
    from . import print_json

    single = args.mri is not None or args.pet is not None
    if single == (args.cases is not None):
        raise FuseVisError("give either --mri and --pet (one pair) or --cases DIR (a folder of cases)")
    if single and (args.mri is None or args.pet is None):
        raise FuseVisError("--mri and --pet go together; give both files of the pair")
    settings = AnalysisSettings(
        pixels=tuple(args.pixel),
        slices=args.slices,
        register=args.register,
        gamma_jacobian=args.gamma1,
        gamma_guidance=args.gamma2,
        neighbourhood=args.neighbourhood,
        views=args.views,
        progress=not args.no_progress,
    )
    cases = [single_case(args.mri, args.pet)] if single else discover_cases(args.cases, ignore=args.out)
    selection = select_methods(args.methods, device=args.device)
    for name, reason in selection.skipped.items():
        print(f"fusevis analyze: warning: method {name} skipped: {reason}", file=sys.stderr)
    run_summary = run_analysis(cases, selection, settings, args.out, nested=not single)
    failed = [entry for entry in run_summary["cases"] if entry["status"] == "failed"]
    if args.json:
        print_json(json.loads((args.out / SUMMARY_FILE).read_text()) if single else run_summary)
    else:
        counts = run_summary["counts"]
        print(f"{counts['done']} case(s) analysed, {counts['resumed']} already complete, {counts['failed']} failed; methods: {', '.join(run_summary['methods'])}")
        for entry in failed:
            print(f"  {entry['case']} failed ({entry['stage']}): {entry['reason']}")
        if not single:
            print(f"Reports: {args.out / 'index.html'}")
        elif not failed:
            print(f"Report: {args.out / 'report.html'}")
    return 1 if failed else 0
