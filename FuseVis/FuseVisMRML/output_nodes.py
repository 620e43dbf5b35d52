"""The output nodes: volumes on the MRI grid, single-slice Jacobian overlays, the scatterplot's table and chart.

Volumes that cover the MRI (fused, guidance MRI/PET, guidance RGB, PET on
the MRI grid) are made once with the MRI's geometry and then written a few
axial slices at a time. The Jacobian overlays hold one slice only and are
moved to the slice of the principal pixel, so following the mouse touches
one slice, never the volume.
"""
from __future__ import annotations

import numpy as np
from slicer.util import vtkMatrixFromArray

from FuseVisLib.volume_io import Volume

from .colour_maps import add_colour_node, set_symmetric_window, update_colour_node
from .volume_nodes import add_volume_node, array_modified, ijk_to_ras, node_array, set_volume

NAMES = {
    "petOnMriGrid": "FuseVis PET on MRI grid",
    "fusedVolume": "FuseVis fused",
    "guidanceMriVolume": "FuseVis guidance MRI",
    "guidancePetVolume": "FuseVis guidance PET",
    "guidanceRgbVolume": "FuseVis guidance RGB",
    "jacobianMriVolume": "FuseVis Jacobian MRI",
    "jacobianPetVolume": "FuseVis Jacobian PET",
    "scatterTable": "FuseVis scatter slice",
    "neighbourhoodTable": "FuseVis scatter neighbourhood",
    "scatterChart": "FuseVis guidance scatterplot",
    "jacobianColors": "FuseVis Jacobian colours",
    "guidanceColors": "FuseVis guidance colours",
}
SCATTER_COLUMNS = ("Guidance MRI", "Guidance PET")
PET_COLOUR_NODE_ID = "vtkMRMLPETProceduralColorNodePET-Heat"
GREY_COLOUR_NODE_ID = "vtkMRMLColorTableNodeGrey"


def ensure_outputs(scene, params, mri: Volume, pet_on_mri: Volume) -> None:
    """Make (or reset) every output node for ``mri``'s grid and reference it from ``params``."""
    colours = {}
    for role, gamma in (("jacobianColors", params.gamma1), ("guidanceColors", params.gamma2)):
        node = getattr(params, role)
        if node is None:
            node = add_colour_node(scene, NAMES[role], gamma)
            setattr(params, role, node)
        else:
            update_colour_node(node, gamma)
        colours[role] = node

    zeros = np.zeros(mri.array.shape, dtype=np.float32)
    scalar_outputs = {
        "petOnMriGrid": pet_on_mri.array,
        "fusedVolume": zeros,
        "guidanceMriVolume": zeros,
        "guidancePetVolume": zeros,
    }
    for role, array in scalar_outputs.items():
        node = _volume_node(scene, params, role, "vtkMRMLScalarVolumeNode", array, mri.ijk_to_ras)
        display = node.GetDisplayNode()
        if role == "fusedVolume":
            display.SetAndObserveColorNodeID(GREY_COLOUR_NODE_ID)
            display.SetAutoWindowLevel(0)
            display.SetWindowLevelMinMax(0.0, 1.0)
        elif role == "petOnMriGrid" and scene.GetNodeByID(PET_COLOUR_NODE_ID) is not None:
            display.SetAndObserveColorNodeID(PET_COLOUR_NODE_ID)
        elif role != "petOnMriGrid":
            display.SetAndObserveColorNodeID(colours["guidanceColors"].GetID())
            set_symmetric_window(display, 1.0)
    _volume_node(scene, params, "guidanceRgbVolume", "vtkMRMLVectorVolumeNode", np.zeros((*mri.array.shape, 3), np.uint8), mri.ijk_to_ras)
    for role in ("jacobianMriVolume", "jacobianPetVolume"):
        single = np.zeros((1, *mri.array.shape[1:]), dtype=np.float32)
        node = _volume_node(scene, params, role, "vtkMRMLScalarVolumeNode", single, mri.ijk_to_ras)
        node.GetDisplayNode().SetAndObserveColorNodeID(colours["jacobianColors"].GetID())
        set_symmetric_window(node.GetDisplayNode(), 1.0)
    _ensure_scatter(scene, params)


def _volume_node(scene, params, role: str, class_name: str, array: np.ndarray, matrix: np.ndarray):
    node = getattr(params, role)
    if node is None or not node.IsA(class_name):
        node = add_volume_node(scene, class_name, scene.GenerateUniqueName(NAMES[role]), array, matrix)
        setattr(params, role, node)
    else:
        set_volume(node, array, matrix)
        if node.GetDisplayNode() is None:
            node.CreateDefaultDisplayNodes()
    return node


def _ensure_scatter(scene, params) -> None:
    from slicer.util import updateTableFromArray

    tables = {}
    for role in ("scatterTable", "neighbourhoodTable"):
        table = getattr(params, role)
        if table is None:
            table = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(NAMES[role]))
            setattr(params, role, table)
        updateTableFromArray(table, [np.zeros(0, np.float32), np.zeros(0, np.float32)], list(SCATTER_COLUMNS))
        tables[role] = table
    if params.scatterChart is not None:
        return
    chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName(NAMES["scatterChart"]))
    chart.SetTitle("Guidance MRI vs guidance PET")
    chart.SetXAxisTitle(SCATTER_COLUMNS[0])
    chart.SetYAxisTitle(SCATTER_COLUMNS[1])
    for role, series_name, colour, size in (
        ("scatterTable", "Slice", (0.1, 0.1, 0.1), 4),
        ("neighbourhoodTable", "Neighbourhood", (0.0, 0.8, 0.0), 7),
    ):
        series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", scene.GenerateUniqueName(f"FuseVis {series_name}"))
        series.SetAndObserveTableNodeID(tables[role].GetID())
        series.SetXColumnName(SCATTER_COLUMNS[0])
        series.SetYColumnName(SCATTER_COLUMNS[1])
        series.SetPlotType(series.PlotTypeScatter)
        series.SetLineStyle(series.LineStyleNone)
        series.SetMarkerStyle(series.MarkerStyleCircle)
        series.SetMarkerSize(size)
        series.SetColor(*colour)
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
    params.scatterChart = chart


def write_slices(node, axis: int, slices: list[int], values: np.ndarray) -> None:
    """Put ``values`` ((len(slices), rows, cols[, components])) into axial slices ``slices`` of ``node``."""
    array = node_array(node)
    np.moveaxis(array, axis, 0)[slices] = values
    array_modified(node)


def write_all_slices(node, axis: int, values: np.ndarray) -> None:
    """Replace every axial slice of ``node`` with ``values`` (slices first)."""
    array = node_array(node)
    np.moveaxis(array, axis, 0)[...] = values
    array_modified(node)


def place_single_slice(node, mri_matrix: np.ndarray, axis: int, index: int, image: np.ndarray) -> None:
    """Make ``node`` a one-slice volume holding ``image`` exactly where axial slice ``index`` of the MRI lies.

    This runs on every mouse move: when the node already holds a float
    slice of that shape, the voxels are overwritten in place and the
    geometry is set only if the slice changed, so the views' pipelines see
    modified scalars rather than a new image (no reallocation, no new
    reslice transform).
    """
    ijk_axis = 2 - axis
    matrix = np.array(mri_matrix, dtype=np.float64)
    matrix[:3, 3] += matrix[:3, ijk_axis] * index
    values = np.expand_dims(np.asarray(image, dtype=np.float32), axis)
    image_data = node.GetImageData()
    current = node_array(node) if image_data is not None and image_data.GetPointData().GetScalars() is not None else None
    if current is None or current.shape != values.shape or current.dtype != values.dtype:
        set_volume(node, values, matrix)
        return
    if not np.array_equal(ijk_to_ras(node), matrix):
        node.SetIJKToRASMatrix(vtkMatrixFromArray(matrix))
    current[...] = values
    array_modified(node)


def set_overlay_window(node, magnitude: float) -> None:
    """Symmetric window of a saliency overlay: its colour table spans -magnitude..magnitude."""
    set_symmetric_window(node.GetDisplayNode(), magnitude)


def fill_table(table, x: np.ndarray, y: np.ndarray) -> None:
    """Replace a scatter table's two columns."""
    from slicer.util import updateTableFromArray

    updateTableFromArray(table, [np.asarray(x, np.float32).ravel(), np.asarray(y, np.float32).ravel()], list(SCATTER_COLUMNS))
