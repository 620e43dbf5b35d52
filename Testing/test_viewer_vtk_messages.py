"""VTK's and Slicer's messages go to the viewer's log file once each, however many viewers a process makes.

Real viewers (FuseVisViewerApp on trame-slicer, not served) in this
process, and real VTK errors: a reslice filter updated without an input.
"""
from __future__ import annotations

import pytest

pytest.importorskip("trame_slicer")
import vtk  # noqa: E402
from trame.app import get_server  # noqa: E402

from FuseVisViewer.app import FuseVisViewerApp  # noqa: E402

ERROR_TEXT = "Input port 0 of algorithm vtkImageReslice"


@pytest.fixture()
def terminal_output_afterwards():
    """The output window and logger as trame-slicer leaves them, for the tests that run next in this process."""
    verbosity = vtk.vtkLogger.GetCurrentVerbosityCutoff()  # the terminal's, as long as the logger has no file
    yield
    window = vtk.vtkOutputWindow()
    window.SetDisplayModeToAlwaysStdErr()
    vtk.vtkOutputWindow.SetInstance(window)
    vtk.vtkLogger.SetStderrVerbosity(verbosity)


def vtk_error() -> None:
    vtk.vtkImageReslice().Update()


def test_each_vtk_error_is_one_entry_in_the_log_with_two_viewers_in_the_process(tmp_path, capfd, terminal_output_afterwards):
    log = tmp_path / "out" / "viewer-vtk.log"
    counts = []
    for name in ("first", "second"):
        FuseVisViewerApp(get_server(f"vtk-messages-{name}", client_type="vue3"), upload_dir=tmp_path / "uploads", vtk_log=log)
        vtk_error()
        counts.append(log.read_text().count(ERROR_TEXT))
    assert counts == [1, 2]
    assert ERROR_TEXT not in capfd.readouterr().err
