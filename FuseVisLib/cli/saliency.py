"""fusevis saliency: guidance images, guidance RGB, Jacobian images and the scatterplot of one slice pair."""
from pathlib import Path


def _pixel(text: str) -> tuple[int, int]:
    import argparse

    try:
        row, col = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--pixel takes ROW,COL (two integers), got {text!r}") from None
    return row, col


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "saliency",
        help="exact guidance and Jacobian images of one MRI/PET slice pair",
        description="Write guidance images, the guidance RGB image, Jacobian images (raw .npy and PNG renders with "
        "the zoomed neighbourhood view) and the scatterplot for one slice pair. Image and NIfTI files are min-max "
        "normalised; .npy arrays are used as they are and must lie in [0, 1].",
    )
    parser.add_argument("--mri", required=True, type=Path, help="MRI slice: PNG (greyscale), a one-slice NIfTI or .npy (2-D)")
    parser.add_argument("--pet", required=True, type=Path, help="PET slice: PNG (greyscale or colour-mapped), a one-slice NIfTI or .npy")
    parser.add_argument("--method", required=True, help="fusion method (see `fusevis methods`)")
    parser.add_argument("--pixel", type=_pixel, action="append", default=[], metavar="ROW,COL", help="principal pixel (repeatable)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--gamma1", type=float, default=0.5, help="gamma of the Jacobian renders, 0.1-2.0")
    parser.add_argument("--gamma2", type=float, default=0.5, help="gamma of the guidance renders, 0.1-2.0")
    parser.add_argument("--neighbourhood", type=int, default=10, help="half-width (px) of the zoom and scatter neighbourhood")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA if present)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(run=run)


def run(args) -> int:
    import time

    import numpy as np

    from ..errors import FuseVisError
    from ..registry import load_method
    from ..saliency import SaliencySession, guidance_rgb, render_neighbourhood_view, render_scatter, scatter_data, signed_rgb
    from ..saliency.inputs import check_pixel
    from ..saliency.rendering import check_gamma, save_png
    from ..saliency.slice_files import read_slice
    from . import print_json

    check_gamma(args.gamma1)
    check_gamma(args.gamma2)
    if args.neighbourhood < 0:
        raise FuseVisError(f"--neighbourhood must be a non-negative number of pixels, got {args.neighbourhood}")
    mri, pet = read_slice(args.mri, "MRI"), read_slice(args.pet, "PET")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)  # before the long guidance computation: a bad --out fails at once
    model = load_method(args.method, device=args.device)
    started = time.perf_counter()
    session = SaliencySession(model, mri, pet)
    for row, col in args.pixel:
        check_pixel(row, col, *session.fused.shape)  # before the long guidance computation
    guidance = session.guidance(progress=not args.no_progress)
    guidance_seconds = time.perf_counter() - started
    files: dict[str, str] = {}

    def keep(name: str, path: Path) -> None:
        files[name] = str(path)

    np.save(out / "fused.npy", session.fused)
    keep("fused", save_png(np.clip(session.fused, 0, 1), out / "fused.png"))
    for modality, image in zip(("mri", "pet"), guidance):
        np.save(out / f"guidance_{modality}.npy", image)
        keep(f"guidance_{modality}", save_png(signed_rgb(image, args.gamma2), out / f"guidance_{modality}.png"))
    keep("guidance_rgb", save_png(guidance_rgb(guidance.mri, guidance.pet, session.fused, args.gamma2), out / "guidance_rgb.png"))
    first = args.pixel[0] if args.pixel else None
    keep("scatter", render_scatter(out / "scatter.png", scatter_data(guidance.mri, guidance.pet, first, args.neighbourhood)))
    jacobian_paths = set()
    for row, col in args.pixel:
        jacobians = session.jacobian(row, col)
        jacobian_paths.add(jacobians.path)
        stem = f"jacobian_r{row}_c{col}"
        for modality, image in zip(("mri", "pet"), jacobians):
            np.save(out / f"{stem}_{modality}.npy", image)
            keep(f"{stem}_{modality}", save_png(signed_rgb(image, args.gamma1), out / f"{stem}_{modality}.png"))
        view = render_neighbourhood_view(
            out / f"{stem}_view.png", mri, pet, session.fused, jacobians.mri, jacobians.pet, (row, col), args.neighbourhood, args.gamma1
        )
        keep(f"{stem}_view", view)
    summary = {
        "method": args.method,
        "size": list(session.fused.shape),
        "jacobian_path": session.path[0],
        "guidance_path": guidance.path,
        "reason": guidance.reason,
        "radius": guidance.radius,
        "seconds": round(guidance_seconds, 3),
        "files": files,
    }
    if args.json:
        print_json(summary)
    else:
        print(f"{args.method}: guidance images by the {guidance.path} path in {guidance_seconds:.1f} s ({guidance.reason})")
        print(f"Wrote {len(files)} images to {out}")
    return 0
