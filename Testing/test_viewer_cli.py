"""``fusevis serve`` and ``fusevis bench-viewer`` on the command line, without starting a server (issue 5).

Arguments that cannot work are refused at once with a clear message and
exit status 2; FuseVisLib's command line stays importable without slicer,
trame or a browser (the viewer is imported only when it runs).
"""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from FuseVisLib import registry
from FuseVisLib.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_half_a_pair_is_refused(capsys, tmp_path):
    code, err = run_cli(capsys, "serve", "--mri", str(tmp_path / "mri.nii.gz"))
    assert code == 2 and "give both --mri and --pet" in err


def test_unknown_method_and_missing_weights_are_refused(capsys, tmp_path, monkeypatch):
    code, err = run_cli(capsys, "serve", "--method", "NoSuchNet")
    assert code == 2 and "unknown fusion method 'NoSuchNet'" in err
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    registry.register_method("UntrainedNet", registry.get_method("FunFuseAn").build, 11, weights_file=tmp_path / "absent.safetensors")
    code, err = run_cli(capsys, "serve", "--method", "UntrainedNet")
    assert code == 2 and "absent.safetensors" in err


def test_bad_port_and_busy_port_are_refused(capsys):
    code, err = run_cli(capsys, "serve", "--port", "70000")
    assert code == 2 and "--port 70000" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # In a subprocess with a time limit: were the port not checked, the server would run on.
        result = subprocess.run(
            [sys.executable, "-m", "FuseVisLib", "serve", "--port", str(port)], capture_output=True, text=True, timeout=180
        )
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_bench_viewer_checks_its_arguments(capsys):
    code, err = run_cli(capsys, "bench-viewer", "--moves", "1")
    assert code == 2 and "--moves" in err


def test_the_command_line_does_not_import_the_viewer():
    code = (
        "import sys; from FuseVisLib.cli import build_parser; build_parser().parse_args(['serve']); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'trame', 'trame_slicer', 'slicer', 'FuseVisViewer', 'playwright'}); "
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("scale", ["0", "5"])
def test_render_scale_out_of_range_is_refused(capsys, scale):
    code, err = run_cli(capsys, "serve", "--render-scale", scale)
    assert code == 2 and "--render-scale" in err


@pytest.mark.parametrize("resolution", ["0.1", "10"])
def test_demo_resolution_out_of_range_is_refused(capsys, resolution):
    code, err = run_cli(capsys, "serve", "--demo-resolution", resolution)
    assert code == 2 and f"--demo-resolution {resolution} mm is outside 1-4 mm" in err


def test_an_output_folder_that_cannot_be_made_is_refused(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in ("/proc/fusevis-nope", str(blocker / "under-a-file")):
        code, err = run_cli(capsys, "serve", "--out", out)
        assert code == 2 and f"cannot make the folder --out {out}" in err and "Traceback" not in err
