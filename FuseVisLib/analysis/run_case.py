"""One case from inputs to report: load, register, choose pixels, fuse, guidance, Jacobians, files, figures.

The fused images come from each network's own forward pass (every slice);
guidance and Jacobian images from :class:`FuseVisLib.saliency.SaliencySession`
on each analysed slice, so the numbers are the saliency engine's own.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import numpy as np
from torch import nn
from tqdm import tqdm

from ..errors import FuseVisError
from ..saliency import SaliencySession
from ..volume_fusion import fuse_slices
from .case_inputs import LoadedCase, load_case
from .case_outputs import CaseWriter
from .cases import CaseInput
from .display import Display
from .figures import SheetPainter
from .method_result import MethodResult
from .method_selection import MethodSelection
from .metrics import fusion_quality, jacobian_readout
from .pixels_of_interest import RULE, PixelOfInterest
from .principal_pixels import choose_slab_and_pixels
from .report_html import write_report
from .settings import AnalysisSettings
from .stage_clock import StageClock

SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
# Always in timing_s, in this order (0 when a stage had nothing to do, e.g. register without --register).
STAGES = ("load", "register", "pixels", "fuse", "metrics", "guidance", "jacobians", "outputs")


def analyze_case(
    case: CaseInput, selection: MethodSelection, settings: AnalysisSettings, folder: Path, clock: StageClock | None = None
) -> dict:
    """Analyse one case into ``folder`` (summary.json, report.html, images); returns the summary.

    Raises FuseVisError for bad input; ``clock.current`` then names the stage that failed.
    """
    clock = clock or StageClock()
    folder.mkdir(parents=True, exist_ok=True)
    earlier_files = _files_listed(folder)
    loaded = load_case(case, settings.register, clock, settings.progress)
    with clock.stage("pixels"):
        slab, pixels = choose_slab_and_pixels(loaded, settings)
    records: dict[str, dict] = {}
    results = []
    with tqdm(
        total=len(selection.models) * len(slab), desc=f"{case.name}: methods x slices", unit="slice", leave=False, disable=not settings.progress
    ) as bar:
        for name, model in selection.models.items():
            try:
                result, records[name] = _analyse_method(name, model, loaded, slab, pixels, settings, clock, bar)
            except FuseVisError as error:
                raise FuseVisError(f"{name}: {error}") from None
            results.append(result)
    with clock.stage("outputs"):
        writer = CaseWriter(folder, loaded, slab, settings)
        input_files = writer.inputs()
        scatter_files = {}
        for result in results:
            records[result.name]["files"], scatters = writer.method(result, pixels)
            scatter_files.update({(result.name, pixel): path for pixel, path in scatters.items()})
        painter = SheetPainter(
            loaded.mri, loaded.pet, results, pixels, _display_of(loaded), settings.neighbourhood, settings.gamma_jacobian, settings.gamma_guidance
        )
        sheets = painter.write_all(folder / "figures", scatter_files)
    summary = _summary(case, loaded, slab, pixels, records, selection, settings, clock)
    summary["files"] = {
        "inputs": input_files,
        "figures": {name: str(path.relative_to(folder)) for name, path in sheets.items()},
        "report": REPORT_FILE,
    }
    write_summary(summary, folder)
    write_report(summary, folder, folder / REPORT_FILE)
    _remove_stale(folder, earlier_files - _files_listed(folder))
    return summary


def _files_listed(folder: Path) -> set[Path]:
    """The output files an earlier run of this case listed in its summary.json (none if there is none)."""
    try:
        summary = json.loads((folder / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return set()
    listed: list[str] = []

    def collect(entry) -> None:
        if isinstance(entry, str):
            listed.append(entry)
        elif isinstance(entry, dict):
            for value in entry.values():
                collect(value)

    collect(summary.get("files", {}))
    for method in (summary.get("methods") or {}).values():
        collect(method.get("files", {}) if isinstance(method, dict) else {})
    root = folder.resolve()
    return {path for path in ((folder / name).resolve() for name in listed) if root in path.parents}


def _remove_stale(folder: Path, stale: set[Path]) -> None:
    """Remove files an earlier run wrote that this one did not (another method, another pixel), once this run's
    files are written, so that a reused output folder shows only this run; emptied method folders go too."""
    for path in stale:
        if path.is_file():
            path.unlink()
    for parent in sorted({path.parent for path in stale}, key=lambda p: len(p.parts), reverse=True):
        if parent != folder.resolve() and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


def write_summary(summary: dict, folder: Path) -> Path:
    path = folder / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path


def _analyse_method(
    name: str,
    model: nn.Module,
    loaded: LoadedCase,
    slab: range,
    pixels: list[PixelOfInterest],
    settings: AnalysisSettings,
    clock: StageClock,
    bar: tqdm,
) -> tuple[MethodResult, dict]:
    own = StageClock()
    with _stage("fuse", clock, own):
        fused = fuse_slices(model, loaded.mri, loaded.pet, progress=settings.progress and loaded.is_volume)
    with _stage("metrics", clock, own):
        quality = fusion_quality(fused[slab.start : slab.stop], loaded.mri[slab.start : slab.stop], loaded.pet[slab.start : slab.stop])
    height, width = loaded.mri.shape[1:]
    result = MethodResult(
        name, fused, slab.start, np.zeros((len(slab), height, width), np.float32), np.zeros((len(slab), height, width), np.float32)
    )
    for index, slice_index in enumerate(slab):
        with _stage("guidance", clock, own):
            session = SaliencySession(model, loaded.mri[slice_index], loaded.pet[slice_index])
            guidance = session.guidance(progress=settings.progress)
            result.guidance_mri[index], result.guidance_pet[index] = guidance
        with _stage("jacobians", clock, own):
            for pixel in pixels:
                if pixel.slice == slice_index:
                    result.jacobians[pixel] = session.jacobian(pixel.row, pixel.col)
        bar.update(1)
    result.saliency_path = {"jacobian": session.path[0], "guidance": guidance.path, "reason": guidance.reason, "radius": guidance.radius}
    readouts = []
    for number, pixel in enumerate(pixels, start=1):
        jacobians = result.jacobians[pixel]
        readouts.append({"pixel": f"P{number}", **jacobian_readout(jacobians.mri, jacobians.pet, pixel.row, pixel.col, settings.neighbourhood)})
    record = {**quality, "saliency_path": result.saliency_path, "pixels": readouts, "timing_s": own.record()}
    return result, record


@contextlib.contextmanager
def _stage(name: str, *clocks: StageClock) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for clock in clocks:
            stack.enter_context(clock.stage(name))
        yield


def _summary(
    case: CaseInput,
    loaded: LoadedCase,
    slab: range,
    pixels: list[PixelOfInterest],
    records: dict[str, dict],
    selection: MethodSelection,
    settings: AnalysisSettings,
    clock: StageClock,
) -> dict:
    count, height, width = loaded.mri.shape
    pixel_records = []
    for number, pixel in enumerate(pixels, start=1):
        place = {"row": pixel.row, "col": pixel.col}
        if loaded.is_volume:
            place["slice"] = pixel.slice
        pixel_records.append(
            {
                "pixel": f"P{number}",
                "label": pixel.label,
                "source": pixel.source,
                **place,
                "tag": pixel.tag(loaded.is_volume),
                "mri": float(loaded.mri[pixel.slice, pixel.row, pixel.col]),
                "pet": float(loaded.pet[pixel.slice, pixel.row, pixel.col]),
            }
        )
    summary = {
        "case": case.name,
        "status": "done",
        "kind": "volume" if loaded.is_volume else "image",
        "inputs": {"mri": str(case.mri), "pet": str(case.pet)},
        "size": {"slices": count, "rows": height, "cols": width},
    }
    if loaded.is_volume:
        summary["axial_axis"] = loaded.axis
        summary["analysed_slices"] = [slab.start, slab.stop - 1]
        summary["registration"] = loaded.registration
    summary.update(
        {
            "notes": loaded.notes,
            "settings": settings.record(),
            "pixels": pixel_records,
            "pixel_rule": RULE if any(pixel.source == "automatic" for pixel in pixels) else None,
            "methods": records,
            "skipped_methods": selection.skipped,
            "timing_s": stage_seconds(clock),
        }
    )
    return summary


def stage_seconds(clock: StageClock) -> dict[str, float]:
    """Seconds per stage, every stage of :data:`STAGES` present."""
    recorded = clock.record()
    return {**{stage: recorded.get(stage, 0.0) for stage in STAGES}, **recorded}


def _display_of(loaded: LoadedCase) -> Display:
    """2-D images as stored; axial slices of a volume turned the radiological way by its geometry."""
    return Display.radiological(loaded.geometry, loaded.axis) if loaded.is_volume else Display()
