"""The zoomed view around the principal pixel and the red neighbourhood box in every view (paper 3.3).

The box outlines the neighbourhood (the pixels drawn green in the
scatterplot) on the principal pixel's slice. It is drawn as a 2-D outline
on top of each slice view, placed through the view's slice-to-screen
geometry, and redrawn when the view pans, zooms or changes slice; a view
showing another slice does not show it. (A markups ROI node would draw
the same square, but its 2-D pipeline costs more per mouse move than the
Jacobian itself.) The zoom view is centred on the principal pixel and
shows :data:`ZOOM_MARGIN` times the box.
"""
from __future__ import annotations

import numpy as np
import vtk

BOX_COLOUR = (0.95, 0.1, 0.1)
BOX_LINE_WIDTH = 2.0
# The zoom view's field of view, in neighbourhood sides.
ZOOM_MARGIN = 1.4


class NeighbourhoodBox:
    """The red square around the principal pixel in each of ``views``."""

    def __init__(self, views) -> None:
        self._corners: np.ndarray | None = None  # 4 x RAS, in order around the square
        self._centre: np.ndarray | None = None
        self._thickness = 1.0
        self._outlines = [_Outline(view, self) for view in views]

    def place(self, mri_node, axis: int, ijk, side_pixels: int) -> None:
        """Centre the box on voxel ``ijk`` of the MRI, ``side_pixels`` wide, on its axial slice."""
        ijk_to_ras = vtk.vtkMatrix4x4()
        mri_node.GetIJKToRASMatrix(ijk_to_ras)
        matrix = np.array([[ijk_to_ras.GetElement(r, c) for c in range(4)] for r in range(4)])
        in_plane = [a for a in range(3) if a != 2 - axis]
        half = side_pixels / 2
        centre = np.array([*map(float, ijk), 1.0])
        corners = []
        for du, dv in ((-half, -half), (half, -half), (half, half), (-half, half)):
            corner = centre.copy()
            corner[in_plane[0]] += du
            corner[in_plane[1]] += dv
            corners.append((matrix @ corner)[:3])
        self._corners = np.array(corners)
        self._centre = (matrix @ centre)[:3]
        self._thickness = float(np.linalg.norm(matrix[:3, 2 - axis]))
        self.redraw()

    def hide(self) -> None:
        self._corners = None
        self.redraw()

    def redraw(self) -> None:
        for outline in self._outlines:
            outline.update()


class _Outline:
    """The box in one view: a closed 2-D polyline in screen pixels."""

    def __init__(self, view, box: NeighbourhoodBox) -> None:
        self.view = view
        self.box = box
        self.points = vtk.vtkPoints()
        self.points.SetNumberOfPoints(5)
        lines = vtk.vtkCellArray()
        lines.InsertNextCell(5, list(range(5)))
        polydata = vtk.vtkPolyData()
        polydata.SetPoints(self.points)
        polydata.SetLines(lines)
        mapper = vtk.vtkPolyDataMapper2D()
        mapper.SetInputData(polydata)
        self.actor = vtk.vtkActor2D()
        self.actor.SetMapper(mapper)
        self.actor.GetProperty().SetColor(*BOX_COLOUR)
        self.actor.GetProperty().SetLineWidth(BOX_LINE_WIDTH)
        self.actor.SetVisibility(False)
        view.first_renderer().AddViewProp(self.actor)
        view.get_view_node().AddObserver(vtk.vtkCommand.ModifiedEvent, lambda *_: self.update())

    def update(self) -> None:
        corners, centre = self.box._corners, self.box._centre
        visible = corners is not None
        if visible:
            node = self.view.get_view_node()
            slice_to_ras = node.GetSliceToRAS()
            normal = np.array([slice_to_ras.GetElement(row, 2) for row in range(3)])
            origin = np.array([slice_to_ras.GetElement(row, 3) for row in range(3)])
            distance = abs(float(np.dot(centre - origin, normal / np.linalg.norm(normal))))
            visible = distance < self.box._thickness / 2
            ras_to_xy = vtk.vtkMatrix4x4()
            vtk.vtkMatrix4x4.Invert(node.GetXYToRAS(), ras_to_xy)
            for index in range(5):
                x, y = ras_to_xy.MultiplyPoint([*map(float, corners[index % 4]), 1.0])[:2]
                self.points.SetPoint(index, x, y, 0.0)
            self.points.Modified()
        if visible != bool(self.actor.GetVisibility()) or visible:
            self.actor.SetVisibility(visible)
            self.view.schedule_render()


def centre_zoom(view, ras, side_mm: float) -> None:
    """Centre ``view`` on ``ras`` showing ``ZOOM_MARGIN`` box sides across its shorter edge."""
    node = view.get_view_node()
    width, height = node.GetDimensions()[:2]
    shorter = max(min(width, height), 1)
    field = side_mm * ZOOM_MARGIN
    disabled = node.StartModify()
    node.SetFieldOfView(field * width / shorter, field * height / shorter, node.GetFieldOfView()[2])
    node.JumpSliceByCentering(*map(float, ras))
    node.EndModify(disabled)
