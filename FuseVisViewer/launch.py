"""Starting the viewer: the demo or a given pair, on a chosen address, saying where to open it."""
from __future__ import annotations

import socket
import sys
from pathlib import Path

from trame.app import get_server

from .app import DEFAULT_RENDER_SCALE, FuseVisViewerApp, PairRequest

DEFAULT_HOST = "127.0.0.1"
UPLOAD_LIMIT_BYTES = 512 * 1024 * 1024


def demo_request(out_dir: Path, resolution: float):
    """A function building the (aligned) demo pair into ``out_dir`` and returning it as a request."""

    def build() -> PairRequest:
        from FuseVisLib.demo_data import build_demo

        files = build_demo(out_dir, misalign=False, resolution=resolution)
        # The demo PET is simulated in the MRI's space (on its own grid): no registration needed.
        return PairRequest(files.mri, files.pet, already_registered=True)

    return build


def serve(
    pair: PairRequest | None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 8080,
    method: str = "WeightedAveraging",
    output_dir: Path = Path("fusevis-output"),
    demo_resolution: float = 2.0,
    render_scale: float = DEFAULT_RENDER_SCALE,
) -> None:
    """Run the viewer until interrupted: ``pair`` if given, else the built-in demo."""
    vtk_log = Path(output_dir) / "viewer-vtk.log"
    demo = demo_request(Path(output_dir) / "demo-inputs", demo_resolution)
    # Uploads arrive as one websocket message: allow a DICOM series of a few hundred MB.
    server = get_server("fusevis", client_type="vue3", ws_max_msg_size=UPLOAD_LIMIT_BYTES)
    app = FuseVisViewerApp(
        server, upload_dir=Path(output_dir) / "viewer-uploads", initial=pair, demo=demo, method=method,
        render_scale=render_scale, save_dir=Path(output_dir), vtk_log=vtk_log,
    )

    def announce(**_) -> None:
        shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
        if ":" in shown:
            shown = f"[{shown}]"
        print(f"FuseVis viewer running: open http://{shown}:{app.server.port}/ in a browser (Ctrl-C stops it)", flush=True)
        print(f"(VTK's and Slicer's own messages go to {vtk_log})", flush=True)

    app.ctrl.on_server_ready.add(announce)
    # trame parses the command line too; the fusevis arguments are not for it.
    del sys.argv[1:]
    app.server.start(host=host, port=port, open_browser=False, show_connection_info=False, timeout=0)

