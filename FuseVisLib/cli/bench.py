"""fusevis bench: time the saliency engine against the paper's per-pixel method, and check it is exact.

Each method runs in a fresh process (so its peak memory is its own) on one
slice pair: a real one from the AANLIB folder if present, else the built-in
demo slice. All figures of a method come from the same run.
"""
import os
from pathlib import Path

DEFAULT_DATA = Path(os.environ.get("FUSEVIS_AANLIB", Path(__file__).resolve().parents[3] / "shared" / "data" / "aanlib-pet-mri"))


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmark Jacobian and guidance images against the per-pixel method")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--size", type=int, default=256, help="side of the square slice (px); real slices are resampled")
    parser.add_argument("--methods", nargs="+", help="default: every registered method")
    parser.add_argument("--data", type=Path, help=f"folder with MRI/ and PET/ slices (default {DEFAULT_DATA} if present, else the demo)")
    parser.add_argument("--jacobian-pixels", type=int, default=50, help="pixels timed for the Jacobian median")
    parser.add_argument("--reference-pixels", type=int, default=12, help="pixels of the per-pixel reference (timing and error)")
    parser.add_argument("--full-jacobian-pixels", type=int, default=3, help="pixels timed with the whole-image backward pass")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(run=run)


def run(args) -> int:
    import tempfile

    import numpy as np
    import torch

    from ..device import pick_device
    from ..errors import FuseVisError
    from ..registry import method_names
    from ..saliency.benchmark import load_slice_pair, machine_speed
    from ..saliency.threads import JACOBIAN_THREADS
    from . import print_json

    if args.size < 8:
        raise FuseVisError(f"--size must be at least 8 pixels, got {args.size}")
    for option in ("jacobian_pixels", "reference_pixels", "full_jacobian_pixels"):
        if getattr(args, option) < 1:
            raise FuseVisError(f"--{option.replace('_', '-')} must be at least 1")
    methods = args.methods or method_names()
    unknown = [m for m in methods if m not in method_names()]
    if unknown:
        raise FuseVisError(f"unknown methods {unknown}; choose from {', '.join(method_names())}")
    data = args.data if args.data is not None else (DEFAULT_DATA if (DEFAULT_DATA / "MRI").is_dir() else None)
    mri, pet, source = load_slice_pair(data, args.size)
    report = {
        "size": args.size,
        "data": source,
        "device": pick_device(args.device).type,
        "threads": args.threads or torch.get_num_threads(),
        "jacobian_threads": JACOBIAN_THREADS,
        "torch": torch.__version__,
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "jacobian_timings": {
            "jacobian_ms_median": "jacobian_images(): forward and reverse pass over the pixel's rectangles",
            "jacobian_full_ms_median": "the same work the paper's way: whole-image forward and backward pass",
            "jacobian_session_ms_median": "SaliencySession.jacobian(): reverse pass only, the whole-image forward pass cached (the viewer's cost per mouse move)",
            "jacobian_retained_backward_ms_median": "the same work the paper's way: whole-image backward pass, forward retained (the original tool's cost per mouse move)",
        },
        "machine_speed_start": machine_speed(),
        "methods": {},
    }
    with tempfile.TemporaryDirectory(prefix="fusevis-bench-") as folder:
        pair = {"mri": str(Path(folder) / "mri.npy"), "pet": str(Path(folder) / "pet.npy")}
        np.save(pair["mri"], mri)
        np.save(pair["pet"], pet)
        for name in methods:
            request = {
                "method": name,
                **pair,
                "device": pick_device(args.device).type,
                "threads": args.threads,
                "jacobian_pixels": args.jacobian_pixels,
                "reference_pixels": args.reference_pixels,
                "full_jacobian_pixels": args.full_jacobian_pixels,
            }
            figures = _bench_in_fresh_process(request)
            report["methods"][name] = figures
            if not args.json:
                print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["machine_speed_end"] = machine_speed()
    if args.json:
        print_json(report)
    return 0


def _bench_in_fresh_process(request: dict) -> dict:
    """One method in its own Python process, so that its peak memory is its own."""
    import json
    import subprocess
    import sys

    from ..errors import FuseVisError

    completed = subprocess.run(
        [sys.executable, "-c", "from FuseVisLib.saliency.benchmark import bench_from_stdin; bench_from_stdin()"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        raise FuseVisError(f"benchmarking {request['method']} failed: {completed.stderr.strip().splitlines()[-1:]}")
    return json.loads(completed.stdout)
