"""Where VTK's and Slicer's own messages go while the viewer runs."""
from __future__ import annotations

from pathlib import Path


def send_vtk_messages_to(path: Path) -> None:
    """Send VTK's and Slicer's messages to the log file ``path`` instead of the terminal.

    Rendering off screen, VTK warns about the missing X display and
    trame-slicer's deprecated resize event at every start, and Slicer's
    bundle writer reports each file it zips on every save: dozens of lines
    that hid FuseVis's own few. Errors land in the same file. Called after
    trame-slicer's SlicerApp, which points VTK's output at the terminal.
    """
    import vtk

    path.parent.mkdir(parents=True, exist_ok=True)
    window = vtk.vtkFileOutputWindow()
    window.SetFileName(str(path))
    window.SetFlush(True)
    window.SetAppend(True)
    vtk.vtkOutputWindow.SetInstance(window)
    # VTK's logger writes its own copy of each message to the terminal.
    vtk.vtkLogger.SetStderrVerbosity(vtk.vtkLogger.VERBOSITY_OFF)
    vtk.vtkLogger.LogToFile(str(path), vtk.vtkLogger.APPEND, vtk.vtkLogger.VERBOSITY_INFO)
