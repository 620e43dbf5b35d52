"""Where VTK's and Slicer's own messages go while the viewer runs."""
from __future__ import annotations

from pathlib import Path

_window = None  # the process's one file output window (VTK keeps a single output window per process)


def send_vtk_messages_to(path: Path) -> None:
    """Send VTK's and Slicer's messages to the log file ``path`` instead of the terminal, one entry per message.

    Rendering off screen, VTK warns about the missing X display and
    trame-slicer's deprecated resize event at every start, and Slicer's
    bundle writer reports each file it zips on every save: dozens of lines
    that hid FuseVis's own few. Errors land in the same file.

    The file has one writer, VTK's output window, which every message
    reaches (errors and warnings, and plain text such as the bundle
    writer's). VTK's logger also gets each error and warning: its own copy
    to the terminal is switched off and it is given no file, which would
    write every message a second time. Called after each trame-slicer
    SlicerApp, which points the output window at the terminal; the window
    is made once per process and put back, so the file is opened once
    however many viewers the process makes.
    """
    import vtk

    global _window
    path = Path(path).resolve()
    if _window is None or Path(_window.GetFileName()) != path:
        path.parent.mkdir(parents=True, exist_ok=True)
        window = vtk.vtkFileOutputWindow()
        window.SetFileName(str(path))
        window.SetFlush(True)
        window.SetAppend(True)
        _window = window
    vtk.vtkOutputWindow.SetInstance(_window)
    vtk.vtkLogger.SetStderrVerbosity(vtk.vtkLogger.VERBOSITY_OFF)
