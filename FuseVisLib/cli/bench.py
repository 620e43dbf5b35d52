"""fusevis bench: time the saliency engine against the paper's per-pixel method, and check it is exact.

Each method runs in a fresh process (so its peak memory is its own) on one
slice pair: a real one from the AANLIB folder if present, else the built-in
demo slice. All figures of a method come from the same run; at 256x256 on
the CPU they are judged against the goals (:mod:`FuseVisLib.saliency.bench_goals`).
"""
import os
from pathlib import Path

DEFAULT_DATA = Path(os.environ.get("FUSEVIS_AANLIB", Path(__file__).resolve().parents[3] / "shared" / "data" / "aanlib-pet-mri"))


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmark Jacobian and guidance images against the per-pixel method, and judge the goals")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--size", type=int, default=256, help="side of the square slice (px); real slices are resampled")
    parser.add_argument("--methods", nargs="+", help="default: every registered method")
    parser.add_argument("--data", type=Path, help=f"folder with MRI/ and PET/ slices (default {DEFAULT_DATA} if present, else the demo)")
    parser.add_argument("--jacobian-pixels", type=int, default=50, help="pixels timed for the Jacobian median")
    parser.add_argument("--reference-pixels", type=int, default=12, help="pixels of the per-pixel reference (timing and error)")
    parser.add_argument("--full-jacobian-pixels", type=int, default=3, help="pixels timed with the whole-image backward pass")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args) -> int:
    import tempfile

    import numpy as np
    import torch

    from ..device import pick_device
    from ..errors import FuseVisError
    from ..registry import method_names
    from ..saliency.bench_goals import GOAL_SIZE, judged
    from ..saliency.benchmark import load_slice_pair, machine_speed
    from ..saliency.cancellation import progress_bar
    from ..saliency.threads import JACOBIAN_THREADS
    from . import print_json

    if args.size < 8:
        raise FuseVisError(f"--size must be at least 8 pixels, got {args.size}")
    for option in ("jacobian_pixels", "reference_pixels", "full_jacobian_pixels"):
        if getattr(args, option) < 1:
            raise FuseVisError(f"--{option.replace('_', '-')} must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise FuseVisError(f"--threads must be at least 1 (or left out for torch's choice), got {args.threads}")
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
        bar = progress_bar(len(methods), "fusevis bench", not args.no_progress, unit="method")
        for name in methods:
            bar.set_postfix_str(name)
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
            figures["goals"] = judged(name, figures, args.size, request["device"])
            report["methods"][name] = figures
            bar.update(1)
            if not args.json:
                bar.write("\n".join(describe(name, figures)))
        bar.close()
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["machine_speed_end"] = machine_speed()
    report["goals_met"] = {name: _all_met(figures["goals"]) for name, figures in report["methods"].items()}
    if args.json:
        print_json(report)
    elif all(met is None for met in report["goals_met"].values()):
        print(f"Goals apply at --size {GOAL_SIZE} on the CPU only: none judged.")
    else:
        print("Goals met: " + ", ".join(f"{name} {'yes' if met else 'no'}" for name, met in report["goals_met"].items() if met is not None))
    return 0


def _all_met(goals: dict | None) -> bool | None:
    return None if goals is None else all(verdict["met"] for verdict in goals.values())


WEIGHTS = {"trained": "trained weights", "untrained": "untrained: its weights file is missing", "none needed": "no weights"}


def describe(name: str, figures: dict) -> list[str]:
    """One method's figures for reading: each of ours beside the paper's way of doing the same work, and its goal."""
    goals = figures.get("goals") or {}

    def goal(figure: str, unit: str) -> str:
        if figure not in goals:
            return ""
        verdict = goals[figure]
        return f"goal {verdict['relation']} {verdict['goal']:g}{unit}: {'met' if verdict['met'] else 'MISSED'}"

    errors, float64, speed = figures["max_abs_error"], figures["max_abs_error_float64"], figures["machine_speed"]
    probe_cost = figures["guidance_probe_cost"]
    threads = ", ".join(f"{value} on {key.split('_')[1]}" for key, value in speed.items() if key.startswith("gflops_"))
    rows = [
        ("Jacobian, jacobian_images()", f"{figures['jacobian_ms_median']:.2f} ms", goal("jacobian_ms_median", " ms"),
         f"whole-image forward+backward {figures['jacobian_full_ms_median']:.1f} ms"),
        ("Jacobian, viewer session", f"{figures['jacobian_session_ms_median']:.2f} ms", "",
         f"retained-graph backward (original tool) {figures['jacobian_retained_backward_ms_median']:.1f} ms"),
        ("guidance images", f"{figures['guidance_s']:.3g} s", goal("guidance_s", " s"),
         f"per-pixel loop ~{figures['naive_guidance_s_estimate']:.0f} s ({figures['guidance_speedup']:.0f}x)"
         + ("" if probe_cost is None else f", a probe costs {probe_cost:.3g} backward passes")),
        ("max abs error vs per-pixel", f"{max(errors.values()):.1e}", goal("max_abs_error", ""),
         f"Jacobian {errors['jacobian']:.1e}, guidance {errors['guidance']:.1e}; vs float64: ours {float64['ours']:.1e}, "
         f"autograd float32 {float64['autograd_float32']:.1e}"),
        ("peak memory", f"{figures['peak_rss_mb']:.0f} MB", goal("peak_rss_mb", " MB"), ""),
        ("machine", f"{speed['gflops']} GFLOP/s", "", f"one thread; {threads}; memory fill {speed['fill_gb_per_s']} GB/s"),
    ]
    radius = figures["radius"]
    header = (
        f"{name} ({WEIGHTS.get(figures['weights'], figures['weights'])}): Jacobian path {figures['paths']['jacobian']}, guidance path {figures['paths']['guidance']}; "
        + ("no finite receptive radius" if radius is None else f"receptive radius {radius} px, {figures['probes']} probe{'s' if figures['probes'] != 1 else ''}")
    )
    return [header] + [f"  {label:<30}{value:>12}   {target:<24}{context}".rstrip() for label, value, target, context in rows]


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
