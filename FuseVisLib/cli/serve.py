"""fusevis serve: the browser viewer (real Slicer views via trame-slicer) on the demo or your MRI and PET."""
from __future__ import annotations

from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="open FuseVis in a browser: Slicer slice views, Jacobians under the mouse, guidance, scatterplot",
        description="Starts a local web server showing the MRI, PET and fused slices with their saliency layers. "
        "Without --mri/--pet it opens the built-in demo (aligned, so it is not registered). Binds 127.0.0.1 unless "
        "--host says otherwise, and prints the address to open. A pair that cannot be opened is reported in the page "
        "(and here); the server keeps running so other data can be loaded there.",
    )
    parser.add_argument("--mri", type=Path, help="MRI: NIfTI file or DICOM series folder (with --pet)")
    parser.add_argument("--pet", type=Path, help="PET: NIfTI file or DICOM series folder (with --mri)")
    parser.add_argument("--already-registered", action="store_true", help="the PET is aligned with the MRI: skip registration")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--method", default="WeightedAveraging", help="fusion method to start with (default WeightedAveraging)")
    parser.add_argument("--out", type=Path, default=Path("fusevis-output"), help="folder for the demo inputs, uploads and saved scenes (default ./fusevis-output)")
    parser.add_argument("--demo-resolution", type=float, default=2.0, help="MRI voxel size of the demo in mm, 1-4 (default 2)")
    parser.add_argument("--render-scale", type=float, default=0.6,
                        help="render the views at this fraction of their size on screen (default 0.6; 1 is sharper and slower)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..errors import FuseVisError
    from ..registry import get_method, load_method

    if (args.mri is None) != (args.pet is None):
        raise FuseVisError("give both --mri and --pet (or neither, for the demo)")
    if not 0.1 <= args.render_scale <= 2.0:
        raise FuseVisError(f"--render-scale {args.render_scale:g} must be between 0.1 and 2")
    if not 0 <= args.port <= 65535:
        raise FuseVisError(f"--port {args.port} is not a port number (0-65535)")
    if args.mri is None:
        from ..demo_data import check_demo_resolution

        check_demo_resolution(args.demo_resolution, "--demo-resolution")
    try:  # demo inputs, uploads and saved scenes all go there: a folder that cannot be made fails now, not in the page
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FuseVisError(f"cannot make the folder --out {args.out} ({error.strerror}); choose another --out") from None
    get_method(args.method)
    load_method(args.method, device="cpu")  # missing weights: say so now, not in the page
    _check_port(args.host, args.port)
    from FuseVisViewer import PairRequest, serve  # needs slicer and trame; FuseVisLib does not

    pair = PairRequest(args.mri, args.pet, args.already_registered) if args.mri is not None else None
    serve(
        pair, host=args.host, port=args.port, method=args.method, output_dir=args.out,
        demo_resolution=args.demo_resolution, render_scale=args.render_scale,
    )
    return 0


def _check_port(host: str, port: int) -> None:
    """FuseVisError if ``host:port`` cannot be listened on (taken, or not an address of this machine)."""
    import socket

    from ..errors import FuseVisError

    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise FuseVisError(f"cannot listen on {host}:{port} ({error.strerror}); choose another --port or --host") from None
