"""The files of one case: inputs as the networks saw them, and per method fused, guidance and Jacobian images.

2-D images give PNGs (renders) beside .npy arrays (raw values). Volumes
give NIfTI files on the MRI's grid: the fused volume whole, the guidance
volumes over the analysed slab (with the geometry of those slices), and the
guidance RGB over the slab as an RGB24 NIfTI (Slicer loads it as a vector
volume). Jacobian images are 2-D in both cases (the networks fuse slice by
slice): .npy arrays, and with ``--views`` the saliency engine's zoomed
neighbourhood view (inputs, fused and Jacobian images beside their zooms).
"""
from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np

from ..saliency import guidance_rgb, render_neighbourhood_view, render_scatter, scatter_data, signed_rgb
from ..saliency.rendering import save_png
from ..volume_io import write_nifti
from .case_inputs import LoadedCase
from .method_result import MethodResult
from .pixels_of_interest import PixelOfInterest
from .settings import AnalysisSettings

RGB24 = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])


def folder_name(name: str) -> str:
    """A method or case name made safe as one folder name."""
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", name) or "_"


class CaseWriter:
    """Writes into ``folder``; every method returns name -> path of what it wrote (paths relative to ``folder``)."""

    def __init__(self, folder: Path, loaded: LoadedCase, slab: range, settings: AnalysisSettings) -> None:
        self.folder, self.loaded, self.slab, self.settings = folder, loaded, slab, settings

    def inputs(self) -> dict[str, str]:
        """The normalised MRI and the PET on the MRI's grid, as the networks received them."""
        folder = self.folder / "inputs"
        if self.loaded.is_volume:
            return {
                "mri": self._relative(write_nifti(self.loaded.slab(self.loaded.mri, 0), folder / "mri.nii.gz")),
                "pet": self._relative(write_nifti(self.loaded.slab(self.loaded.pet, 0), folder / "pet_on_mri.nii.gz")),
            }
        return {
            "mri": self._relative(save_png(self.loaded.mri[0], folder / "mri.png")),
            "pet": self._relative(save_png(self.loaded.pet[0], folder / "pet.png")),
        }

    def method(self, result: MethodResult, pixels: list[PixelOfInterest]) -> tuple[dict[str, str], dict[PixelOfInterest, Path]]:
        """(files, scatterplot per pixel) of one method."""
        folder = self.folder / "methods" / folder_name(result.name)
        folder.mkdir(parents=True, exist_ok=True)
        files = self._volume_files(result, folder) if self.loaded.is_volume else self._image_files(result, folder)
        scatter_files = {}
        for number, pixel in enumerate(pixels, start=1):
            files.update(self._jacobian_files(result, pixel, folder))
            g_mri, g_pet = result.guidance(pixel.slice)
            tag = pixel.tag(self.loaded.is_volume)
            scatter = render_scatter(
                folder / f"scatter_{tag}.png",
                scatter_data(g_mri, g_pet, (pixel.row, pixel.col), self.settings.neighbourhood),
                title=f"{result.name}: P{number}" + (f", slice {pixel.slice}" if self.loaded.is_volume else ""),
            )
            files[f"scatter_{tag}"] = self._relative(scatter)
            scatter_files[pixel] = scatter
        return files, scatter_files

    def _image_files(self, result: MethodResult, folder: Path) -> dict[str, str]:
        gamma = self.settings.gamma_guidance
        fused, (g_mri, g_pet) = result.fused[0], result.guidance(0)
        files = {"fused": save_png(np.clip(fused, 0.0, 1.0), folder / "fused.png"), "fused_array": folder / "fused.npy"}
        np.save(files["fused_array"], fused)
        for modality, image in (("mri", g_mri), ("pet", g_pet)):
            files[f"guidance_{modality}_array"] = folder / f"guidance_{modality}.npy"
            np.save(files[f"guidance_{modality}_array"], image)
            files[f"guidance_{modality}"] = save_png(signed_rgb(image, gamma), folder / f"guidance_{modality}.png")
        files["guidance_rgb"] = save_png(guidance_rgb(g_mri, g_pet, fused, gamma), folder / "guidance_rgb.png")
        return {name: self._relative(path) for name, path in files.items()}

    def _volume_files(self, result: MethodResult, folder: Path) -> dict[str, str]:
        loaded, first = self.loaded, self.slab.start
        files = {"fused": write_nifti(loaded.slab(result.fused, 0), folder / "fused.nii.gz")}
        for modality, stack in (("mri", result.guidance_mri), ("pet", result.guidance_pet)):
            files[f"guidance_{modality}"] = write_nifti(loaded.slab(stack, first), folder / f"guidance_{modality}.nii.gz")
        rgb = np.stack(
            [
                guidance_rgb(*result.guidance(index), result.fused[index], self.settings.gamma_guidance)
                for index in self.slab
            ]
        )
        files["guidance_rgb"] = _write_rgb_nifti(loaded.volume_order(rgb), loaded.slab_matrix(first), folder / "guidance_rgb.nii.gz")
        return {name: self._relative(path) for name, path in files.items()}

    def _jacobian_files(self, result: MethodResult, pixel: PixelOfInterest, folder: Path) -> dict[str, str]:
        """Raw Jacobian images (.npy) and, if asked for, the saliency engine's zoomed neighbourhood view (PNG)."""
        jacobians = result.jacobians[pixel]
        stem = f"jacobian_{pixel.tag(self.loaded.is_volume)}"
        files = {}
        for modality, image in zip(("mri", "pet"), jacobians):
            path = folder / f"{stem}_{modality}.npy"
            np.save(path, image)
            files[f"{stem}_{modality}"] = self._relative(path)
        if not self.settings.views:
            return files
        # As stored, not turned like the sheets: the view's title names the pixel, which must match summary.json.
        view = render_neighbourhood_view(
            folder / f"{stem}_view.png",
            self.loaded.mri[pixel.slice],
            self.loaded.pet[pixel.slice],
            result.fused[pixel.slice],
            *jacobians,
            (pixel.row, pixel.col),
            self.settings.neighbourhood,
            self.settings.gamma_jacobian,
        )
        files[f"{stem}_view"] = self._relative(view)
        return files

    def _relative(self, path: Path) -> str:
        return str(Path(path).relative_to(self.folder))


def _write_rgb_nifti(rgb: np.ndarray, ijk_to_ras: np.ndarray, path: Path) -> Path:
    """``[k, j, i, 3]`` values in [0, 1] as an RGB24 NIfTI with the given voxel-to-RAS matrix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    voxels = np.empty(pixels.shape[:3], dtype=RGB24)
    for index, channel in enumerate("RGB"):
        voxels[channel] = pixels[..., index]
    # nibabel indexes [i, j, k].
    image = nib.Nifti1Image(np.ascontiguousarray(voxels.transpose(2, 1, 0)), ijk_to_ras)
    image.set_sform(ijk_to_ras, code="scanner")
    image.set_qform(ijk_to_ras, code="scanner")
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, str(path))
    return path
