"""Turning slice views to the MRI's own slice planes.

FuseVis fuses and explains the MRI's axial slices one by one: the fused,
guidance and Jacobian volumes share the MRI's grid, and a Jacobian layer
is a single slice of it. A slice view cut along the scanner's axial plane
crosses an oblique MRI (acquired along the AC-PC line, say) at an angle:
it shows the one-slice Jacobian layer as a thin band and mixes several of
the MRI's slices. Rotated to the volume's plane (Slicer's own "rotate to
volume plane"), each view shows exactly one of those slices.
"""
from __future__ import annotations


def align_with_volume(slice_nodes, volume_node) -> None:
    """Rotate every slice node to the plane of ``volume_node``'s slices nearest its current orientation."""
    for node in slice_nodes:
        node.RotateToVolumePlane(volume_node)
