"""fusevis bench-viewer: how fast the browser viewer's Jacobian layers follow the mouse, in a real chromium.

Starts ``fusevis serve`` on the demo, opens it in Debian's chromium and
measures, in the page's own clock:

* latency: from a mouse-move event over the fused view to the next frame
  of the PET view, which (with the crosshair off) changes only when the
  Jacobian PET layer does; the mouse rests between moves;
* while dragging (button held, moving continuously): how many new
  Jacobian frames per second reach the page, and how many principal-pixel
  updates per second the server makes (the goal is at least 20).

Also reported: the server's CPU time per update, chromium's CPU time per
Jacobian frame (it decodes every view's frames) and the machine's load,
since on a busy machine the figures say more about the machine.
"""
from __future__ import annotations

from pathlib import Path

GOAL_UPDATES_PER_SECOND = 20.0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench-viewer",
        help="measure mouse-to-Jacobian latency and updates per second of the browser viewer (needs Debian's chromium)",
        description="Starts `fusevis serve` on the demo, drives it in Debian's chromium and prints the latency from a "
        "mouse move to the updated Jacobian layer in the page and the updates per second while dragging.",
    )
    parser.add_argument("--method", default="WeightedAveraging", help="fusion method to measure (default WeightedAveraging)")
    parser.add_argument("--demo-resolution", type=float, default=2.0, help="demo MRI voxel size in mm (default 2)")
    parser.add_argument("--render-scale", type=float, default=0.6, help="the server's --render-scale (default 0.6)")
    parser.add_argument("--moves", type=int, default=30, help="single mouse moves for the latency (default 30)")
    parser.add_argument("--drag-seconds", type=float, default=6.0, help="length of the drag (default 6 s)")
    parser.add_argument("--settle-seconds", type=float, default=180.0,
                        help="wait up to this long for every slice to be fused and have guidance before measuring (default 180)")
    parser.add_argument("--out", type=Path, default=Path("fusevis-output/bench-viewer"), help="folder for the server log and screenshot")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(run=run)


def run(args) -> int:
    import asyncio

    from ..errors import FuseVisError
    from . import print_json

    if args.moves < 2 or args.drag_seconds <= 0:
        raise FuseVisError("--moves must be at least 2 and --drag-seconds positive")
    from FuseVisViewer.browser_driver import ViewerProcess, chromium_path  # needs playwright; FuseVisLib does not

    if chromium_path() is None:
        raise FuseVisError("Debian's chromium is not installed; install it with `apt-get install chromium` (as root)")
    args.out.mkdir(parents=True, exist_ok=True)
    server = ViewerProcess(
        [
            "--port", "0", "--out", str(args.out), "--demo-resolution", str(args.demo_resolution), "--method", args.method,
            "--render-scale", str(args.render_scale),
        ],
        args.out / "server.log",
    )
    server.start()
    try:
        server.wait_for_output("fusevis serve: showing MRI", timeout=300)
        figures = asyncio.run(_measure(server, args))
    finally:
        server.stop()
    if args.json:
        print_json(figures)
    else:
        latency, drag = figures["latency_ms"], figures["drag"]
        print(f"FuseVis viewer, {figures['method']}, demo at {figures['demo_resolution_mm']:g} mm, in chromium:")
        print(f"  mouse move -> Jacobian layer in the page: median {latency['median']:.0f} ms (p90 {latency['p90']:.0f} ms, n={latency['n']})")
        print(f"  dragging: {drag['page_jacobian_frames_per_s']:.1f} Jacobian frames/s in the page, "
              f"{drag['principal_updates_per_s']:.1f} principal-pixel updates/s on the server "
              f"(goal {GOAL_UPDATES_PER_SECOND:g}/s: {'met' if figures['goal_met'] else 'not met'})")
        print(f"  server CPU per update {figures['server_cpu_ms_per_update']:.0f} ms, chromium CPU per Jacobian frame "
              f"{figures['browser_cpu_ms_per_frame']:.0f} ms; load average {figures['load_average']}")
    return 0


# Page-side probes: frames of the PET view and mouse-move times, in performance.now() milliseconds.
_PROBES = """() => {
  window.fvBench = {frames: [], moves: []};
  const img = document.querySelector('#fusevis-view-PET img');
  new MutationObserver(() => window.fvBench.frames.push(performance.now()))
    .observe(img, {attributes: true, attributeFilter: ['src']});
  document.addEventListener('mousemove', (event) => window.fvBench.moves.push(event.timeStamp), true);
}"""


async def _measure(server, args) -> dict:
    import os
    import time

    import numpy as np
    from playwright.async_api import async_playwright

    from FuseVisViewer.browser_driver import ViewerPage, launch_chromium

    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        try:
            viewer = ViewerPage(await browser.new_page(viewport={"width": 1600, "height": 900}))
            await viewer.open(server.url, timeout=300)
            settled = await _wait_for_all_slices(viewer, timeout=args.settle_seconds)
            await viewer.set_state("fv_crosshair", False)
            await viewer.page.evaluate(_PROBES)
            box = await viewer.view_box("Fused")
            points = _points(box, args.moves)
            latencies = []
            for x, y in points:
                await _wait_for_quiet(viewer)
                seq = await viewer.readout_seq()
                frames_before = await viewer.page.evaluate("window.fvBench.frames.length")
                await viewer.page.mouse.move(x, y)
                # A frame sent before the move may still arrive after it was counted: wait for one after the move.
                await viewer.page.wait_for_function(
                    "([n, seq]) => { const b = window.fvBench; const moved = b.moves[b.moves.length - 1];"
                    " return b.frames.slice(n).some(t => t >= moved) && window.trame.state.get('fv_readout_seq') > seq; }",
                    arg=[frames_before, seq], timeout=30_000,
                )
                latencies.append(await viewer.page.evaluate(
                    "(n) => { const b = window.fvBench; const moved = b.moves[b.moves.length - 1];"
                    " return b.frames.slice(n).find(t => t >= moved) - moved; }", frames_before,
                ))
            drag = await _drag(viewer, box, args.drag_seconds, server.process.pid)
            await viewer.page.screenshot(path=str(args.out / "bench-viewer.png"))
        finally:
            await browser.close()
    values = np.array(latencies, dtype=float)
    return {
        "method": args.method,
        "demo_resolution_mm": args.demo_resolution,
        "render_scale": args.render_scale,
        "all_slices_computed_before_measuring": settled,
        "latency_ms": {
            "median": float(np.median(values)), "p90": float(np.percentile(values, 90)),
            "min": float(values.min()), "max": float(values.max()), "n": int(values.size),
        },
        "drag": drag,
        "server_cpu_ms_per_update": drag.pop("server_cpu_ms_per_update"),
        "browser_cpu_ms_per_frame": drag.pop("browser_cpu_ms_per_frame"),
        "goal_updates_per_s": GOAL_UPDATES_PER_SECOND,
        "goal_met": drag["page_jacobian_frames_per_s"] >= GOAL_UPDATES_PER_SECOND,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


async def _wait_for_all_slices(viewer, timeout: float) -> bool:
    """Background fusion and guidance compete for the CPU: measure once they are done (or after ``timeout``)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        total = await viewer.state("fv_total")
        if total and await viewer.state("fv_fused_done") == total and await viewer.state("fv_guidance_done") == total:
            return True
        await asyncio.sleep(1.0)
    return False


async def _wait_for_quiet(viewer, quiet_ms: float = 300.0) -> None:
    """Until the PET view has sent no frame for ``quiet_ms``, so the next frame answers the next move."""
    await viewer.page.wait_for_function(
        "(quiet) => { const f = window.fvBench.frames; return !f.length || performance.now() - f[f.length - 1] > quiet; }",
        arg=quiet_ms, timeout=30_000,
    )


def _points(box: dict, count: int) -> list[tuple[float, float]]:
    """Mouse positions inside the head in the fused view, far enough apart to change the principal pixel."""
    import numpy as np

    rng = np.random.default_rng(7)
    fractions = rng.uniform(0.3, 0.7, size=(count, 2))
    return [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in fractions]


async def _drag(viewer, box: dict, seconds: float, server_pid: int) -> dict:
    """Hold the button and move along a figure eight for ``seconds``; rates of moves, frames and updates."""
    import math
    import time

    page = viewer.page
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    radius_x, radius_y = box["width"] * 0.2, box["height"] * 0.15
    await page.mouse.move(centre_x, centre_y)
    await _wait_for_quiet(viewer)
    frames_before = await page.evaluate("window.fvBench.frames.length")
    moves_before = await page.evaluate("window.fvBench.moves.length")
    seq_before = await viewer.readout_seq()
    cpu_before = _cpu_seconds(server_pid)
    browser_before = _browser_cpu_seconds()
    await page.mouse.down()
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        angle = 2 * math.pi * elapsed / 2.0  # one figure eight every 2 s
        await page.mouse.move(centre_x + radius_x * math.sin(angle), centre_y + radius_y * math.sin(2 * angle), steps=2)
    duration = time.monotonic() - started
    await page.mouse.up()
    cpu = _cpu_seconds(server_pid) - cpu_before
    browser_cpu = _browser_cpu_seconds() - browser_before
    frames = await page.evaluate("window.fvBench.frames.length") - frames_before
    moves = await page.evaluate("window.fvBench.moves.length") - moves_before
    updates = await viewer.readout_seq() - seq_before
    return {
        "seconds": round(duration, 2),
        "mouse_moves_per_s": moves / duration,
        "page_jacobian_frames_per_s": frames / duration,
        "principal_updates_per_s": updates / duration,
        "server_cpu_ms_per_update": 1000 * cpu / max(updates, 1),
        "browser_cpu_ms_per_frame": 1000 * browser_cpu / max(frames, 1),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _browser_cpu_seconds() -> float:
    """CPU time of the chromium processes this process started (the browser, its renderer, GPU and helpers)."""
    import os

    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm, rest = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:  # ended meanwhile
            continue
        parents[int(entry.name)] = int(rest.split()[1])
        names[int(entry.name)] = comm.split("(", 1)[1]

    def ours(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    total = 0.0
    for pid, name in names.items():
        if "chrom" in name and ours(pid):
            try:
                total += _cpu_seconds(pid)
            except OSError:
                pass
    return total
