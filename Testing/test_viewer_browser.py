"""The browser viewer end to end: ``fusevis serve`` in a subprocess, driven by Debian's chromium (issue 5).

One server on the demo (3 mm, so it loads in seconds) serves the tests in
order: hovering moves the principal pixel and the Jacobian layers, which
must equal ``jacobian_images`` for those pixels; switching the method
keeps the pixel; gamma 1 recolours the Jacobian view; bad input through
the page leaves the loaded pair working. A second server gets bad input
on its command line. Screenshots go to Testing/artifacts/.

The trained networks may be missing, so the server registers the small
network of ``viewer_network.py`` (seeded weights, same in this process).
"""
from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from FuseVisLib.intensity import robust_normalise
from FuseVisLib.registration import resample_to_reference
from FuseVisLib.registry import load_method
from FuseVisLib.saliency import jacobian_images
from FuseVisLib.volume_fusion import axial_axis
from FuseVisLib.volume_io import Volume, read_volume, write_nifti

pytest.importorskip("playwright")
from playwright.async_api import async_playwright  # noqa: E402

from FuseVisViewer.browser_driver import ViewerPage, ViewerProcess, chromium_path, launch_chromium  # noqa: E402

import viewer_network  # noqa: E402  (Testing/ is on sys.path under pytest)
from oblique_volumes import tilted  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TESTING = Path(__file__).resolve().parent
ARTIFACTS = TESTING / "artifacts"
LAUNCHER = TESTING / "serve_with_test_network.py"
VIEWPORT = {"width": 1600, "height": 900}
DEMO_RESOLUTION = "3"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it with apt-get as root); the browser tests need it")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory, chromium):
    out = tmp_path_factory.mktemp("viewer")
    process = ViewerProcess(
        ["--port", "0", "--out", str(out), "--demo-resolution", DEMO_RESOLUTION], ARTIFACTS / "viewer-server.log", script=LAUNCHER
    )
    process.start()
    process.wait_for_output("fusevis serve: showing MRI")
    process.out = out
    yield process
    process.stop()


@pytest.fixture(scope="module")
def engine_input(server):
    """The normalised MRI and PET slices the Logic fuses: the demo, PET resampled onto the MRI grid."""
    inputs = server.out / "demo-inputs"
    mri, pet = read_volume(inputs / "mri.nii.gz"), read_volume(inputs / "pet.nii.gz")
    pet_on_mri = resample_to_reference(pet, mri, np.eye(4))  # the demo needs no registration
    axis = axial_axis(mri)
    return np.moveaxis(robust_normalise(mri.array), axis, 0), np.moveaxis(robust_normalise(pet_on_mri.array), axis, 0)


def run(scenario, url: str):
    """Run ``scenario(viewer_page)`` in a fresh chromium page opened on ``url``."""

    async def main():
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            try:
                page = await browser.new_page(viewport=VIEWPORT)
                viewer = ViewerPage(page)
                await viewer.open(url)
                return await scenario(viewer)
            finally:
                await browser.close()

    return asyncio.run(main())


async def screenshot(viewer: ViewerPage, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    await viewer.page.screenshot(path=str(path))
    return path


async def view_pixels(viewer: ViewerPage, name: str) -> np.ndarray:
    png = await viewer.page.locator(f"#fusevis-view-{name} img").first.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


async def hover_and_read(viewer: ViewerPage, view: str, fx: float, fy: float) -> dict:
    seq = await viewer.readout_seq()
    await viewer.hover(view, fx, fy)
    return await viewer.wait_for_readout_after(seq)


def pixel_of(readout: dict) -> tuple[int, int, int]:
    return tuple(int(v) for v in readout["position"]["text"].split(","))


def check_jacobians(readout: dict, model, engine_input) -> None:
    """The readout's Jacobian values (at the pixel, and summed over the layer) equal jacobian_images'."""
    slice_index, row, col = pixel_of(readout)
    mri, pet = engine_input
    j_mri, j_pet = jacobian_images(model, mri[slice_index], pet[slice_index], row, col)
    assert float(readout["jacobian_mri"]["exact"]) == pytest.approx(float(j_mri[row, col]), rel=1e-4, abs=1e-7)
    assert float(readout["jacobian_pet"]["exact"]) == pytest.approx(float(j_pet[row, col]), rel=1e-4, abs=1e-7)
    assert float(readout["jacobian_mri_total"]["exact"]) == pytest.approx(float(np.abs(j_mri).sum()), rel=1e-4)
    assert float(readout["jacobian_pet_total"]["exact"]) == pytest.approx(float(np.abs(j_pet).sum()), rel=1e-4)


def box_centre(pixels: np.ndarray) -> tuple[int, int]:
    """Centre (row, col) of the red neighbourhood box drawn in a view's image."""
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)
    rows, cols = np.nonzero(red)
    assert rows.size > 50, "no neighbourhood box in the view"
    return (int(rows.min()) + int(rows.max())) // 2, (int(cols.min()) + int(cols.max())) // 2


def brightness_at(pixels: np.ndarray, centre: tuple[int, int]) -> int:
    row, col = centre
    return int(pixels[row - 1 : row + 2, col - 1 : col + 2].max())


def test_a_newly_opened_pair_has_a_principal_pixel_at_the_slice_centre(server, engine_input):
    """Before the mouse picks one, the MRI and PET views show the Jacobian layers of the slice's centre, not black."""

    async def scenario(viewer: ViewerPage):
        readout = await viewer.wait_for_readout_after(0)
        await asyncio.sleep(0.8)  # the views' next frames
        return readout, await viewer.state("fv_slice"), await view_pixels(viewer, "MRI")

    readout, shown_slice, mri_view = run(scenario, server.url)
    slice_index, row, col = pixel_of(readout)
    slices, rows, cols = engine_input[0].shape
    assert slice_index == shown_slice and abs(row - (rows - 1) / 2) <= 0.5 and abs(col - (cols - 1) / 2) <= 0.5
    check_jacobians(readout, load_method("WeightedAveraging", device="cpu"), engine_input)
    assert (mri_view.max(axis=2) > 60).mean() > 0.05, "the MRI view shows the anatomy under the Jacobian layer"


def test_hovering_the_fused_view_moves_the_pixel_and_the_jacobian_layers(server, engine_input):
    async def scenario(viewer: ViewerPage):
        assert await viewer.state("fv_method") == "WeightedAveraging"
        # The Jacobian layers alone (no anatomy, no crosshair), to see where they are non-zero.
        await viewer.set_state("fv_opacity", 0.0)
        await viewer.set_state("fv_crosshair", False)
        shots = []
        for fx, fy in ((0.42, 0.52), (0.6, 0.38)):
            readout = await hover_and_read(viewer, "Fused", fx, fy)
            await asyncio.sleep(0.8)  # the views' next frames
            layers = {name: await view_pixels(viewer, name) for name in ("MRI", "PET")}
            shots.append((readout, layers))
            await screenshot(viewer, f"viewer-hover-{len(shots)}.png")
        await viewer.set_state("fv_opacity", 0.35)
        await viewer.set_state("fv_crosshair", True)
        return shots

    (first, first_layers), (second, second_layers) = run(scenario, server.url)
    assert first["method"]["text"] == second["method"]["text"] == "WeightedAveraging"
    assert pixel_of(first) != pixel_of(second)
    assert first["jacobian_mri"]["exact"] != second["jacobian_mri"]["exact"]
    model = load_method("WeightedAveraging", device="cpu")
    check_jacobians(first, model, engine_input)
    check_jacobians(second, model, engine_input)
    # In the page, each Jacobian layer is lit at the principal pixel (the box centre) and nowhere else:
    # the first pixel went dark when the mouse moved on. Weighted averaging's Jacobian is that one pixel.
    def share_of_window(readout: dict, key: str) -> float:
        # Both Jacobian layers share one colour window: the larger magnitude of the two.
        values = {k: abs(float(readout[k]["exact"])) for k in ("jacobian_mri", "jacobian_pet")}
        return values[key] / max(values.values())

    checked = 0
    for name in ("MRI", "PET"):
        key = f"jacobian_{name.lower()}"
        if min(share_of_window(first, key), share_of_window(second, key)) < 0.3:
            continue  # too faint a colour to tell from the view's dark background
        checked += 1
        first_centre, second_centre = box_centre(first_layers[name]), box_centre(second_layers[name])
        assert first_centre != second_centre
        assert brightness_at(first_layers[name], first_centre) > 100, name
        assert brightness_at(second_layers[name], second_centre) > 100, name
        assert brightness_at(second_layers[name], first_centre) < 50, name  # the background, about 25-35
    assert checked


def test_switching_the_method_keeps_the_pixel_and_gamma_recolours_the_jacobians(server, engine_input):
    async def scenario(viewer: ViewerPage):
        before = await hover_and_read(viewer, "Fused", 0.55, 0.5)
        seq = await viewer.readout_seq()
        await viewer.page.locator("#fusevis-method").click(force=True)  # the shown selection lies over the input
        await viewer.page.get_by_role("option", name=viewer_network.NAME).click()
        await viewer.page.wait_for_function(
            "(name) => window.trame.state.get('fv_readout').some(row => row.key === 'method' && row.text === name)",
            arg=viewer_network.NAME, timeout=90_000,
        )
        after = await viewer.readout()
        await asyncio.sleep(0.5)
        mri_gamma_1 = await view_pixels(viewer, "MRI")
        await screenshot(viewer, "viewer-method-switched.png")
        slider = viewer.page.get_by_role("slider").first  # gamma 1
        await slider.focus()
        for _ in range(10):  # 10 steps of 0.05: gamma 1 from 1.0 to 0.5
            await slider.press("ArrowLeft")
        await viewer.page.wait_for_function("() => window.trame.state.get('fv_gamma1') === 0.5", timeout=20_000)
        await asyncio.sleep(1.0)
        mri_gamma_half = await view_pixels(viewer, "MRI")
        await screenshot(viewer, "viewer-gamma1-0.5.png")
        # The layer switch on the PET view: guidance PET instead of the Jacobian.
        pet_jacobian = await view_pixels(viewer, "PET")
        await viewer.page.locator('[data-fusevis-layer="PET:guidance"]').click()
        await viewer.page.wait_for_function("() => window.trame.state.get('fv_layer_PET') === 'guidance'", timeout=20_000)
        await asyncio.sleep(1.0)
        pet_guidance = await view_pixels(viewer, "PET")
        await screenshot(viewer, "viewer-guidance-layer.png")
        await viewer.page.locator('[data-fusevis-layer="PET:jacobian"]').click()
        return before, after, seq, mri_gamma_1, mri_gamma_half, pet_jacobian, pet_guidance

    before, after, seq, mri_gamma_1, mri_gamma_half, pet_jacobian, pet_guidance = run(scenario, server.url)
    # Guidance covers the whole slice, the Jacobian a few pixels: far more of the view lights up.
    assert np.mean(np.abs(pet_guidance - pet_jacobian) > 30) > 0.05
    assert after["method"]["text"] == viewer_network.NAME
    assert pixel_of(after) == pixel_of(before)
    check_jacobians(after, viewer_network.ViewerTestNet().eval(), engine_input)
    # Gamma 0.5 brightens small Jacobian values: the Jacobian MRI layer looks different.
    assert np.mean(np.abs(mri_gamma_1 - mri_gamma_half) > 20) > 1e-4


async def last_shown_pair(server, containing: str, timeout: float = 120.0) -> str:
    """The server's newest "showing MRI ... and PET ..." line, once it contains ``containing``."""
    for _ in range(int(timeout / 0.2)):
        lines = [line for line in server.output().splitlines() if "fusevis serve: showing MRI" in line]
        if lines and containing in lines[-1]:
            return lines[-1]
        await asyncio.sleep(0.2)
    raise AssertionError(f"the server never showed a pair with {containing!r}; see {server.log_path}")


def far_away_pet(path: Path, mri: Volume) -> Path:
    """A PET of another shape whose field of view lies 400 mm from the MRI's (another patient's scan)."""
    array = np.random.default_rng(3).random((20, 40, 30)).astype(np.float32) + 0.5
    matrix = np.diag([4.0, 4.0, 4.0, 1.0])
    matrix[:3, 3] = mri.ijk_to_ras[:3, 3] + 400.0
    return write_nifti(Volume(array, matrix), path)


def test_bad_input_in_the_page_is_reported_and_the_loaded_pair_stays(server, tmp_path):
    inputs = server.out / "demo-inputs"
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image\n")
    other_pet = far_away_pet(tmp_path / "other_patient_pet.nii.gz", read_volume(inputs / "mri.nii.gz"))

    async def scenario(viewer: ViewerPage):
        page = viewer.page
        pair = await viewer.state("fv_pair")
        errors = {}

        async def load(mri: str, pet: str, registered: bool, key: str) -> None:
            await viewer.set_state("fv_already_registered", registered)
            await page.locator("#fusevis-mri-path").fill(mri)
            await page.locator("#fusevis-pet-path").fill(pet)
            await page.locator("#fusevis-load").click()
            errors[key] = await viewer.wait_for_error(60)
            await page.wait_for_function("() => window.trame.state.get('fv_loading') === false", timeout=60_000)
            await page.locator("#fusevis-error button").first.click()  # close it for the next case
            await page.wait_for_selector("#fusevis-error", state="detached", timeout=10_000)

        # A text file through the file picker.
        await page.locator("#fusevis-upload-mri").set_input_files(str(notes))
        await page.wait_for_function("() => window.trame.state.get('fv_mri_path').endsWith('notes.txt')", timeout=20_000)
        uploaded = await viewer.state("fv_mri_path")
        await load(uploaded, str(inputs / "pet.nii.gz"), True, "not an image")
        await load(str(tmp_path / "missing.nii.gz"), str(inputs / "pet.nii.gz"), True, "missing")
        await load(str(inputs / "mri.nii.gz"), str(other_pet), True, "other patient")
        await screenshot(viewer, "viewer-after-bad-input.png")
        still = await hover_and_read(viewer, "Fused", 0.5, 0.45)
        kept = await viewer.state("fv_pair"), await viewer.state("fv_ready")
        # Real images through the file pickers open.
        await viewer.set_state("fv_already_registered", True)
        for role in ("mri", "pet"):
            await page.locator(f"#fusevis-upload-{role}").set_input_files(str(inputs / f"{role}.nii.gz"))
            await page.wait_for_function(
                "(role) => window.trame.state.get(`fv_${role}_path`).includes('viewer-uploads')", arg=role, timeout=30_000
            )
        await page.locator("#fusevis-load").click()
        shown = await last_shown_pair(server, containing="viewer-uploads")
        await viewer.wait_until_ready(60)
        return pair, errors, still, kept, shown, await viewer.error_text()

    pair, errors, still, (pair_after, ready), shown, upload_error = run(scenario, server.url)
    assert "notes.txt" in errors["not an image"] and "neither a NIfTI file" in errors["not an image"]
    assert "missing.nii.gz" in errors["missing"] and "does not exist" in errors["missing"]
    assert "does not overlap the MRI" in errors["other patient"]
    assert server.running()
    # Nothing already loaded was lost: same pair, still answering the mouse.
    assert pair_after == pair and ready is True
    assert still["method"]["text"] in ("WeightedAveraging", viewer_network.NAME)
    assert not upload_error
    assert shown.count("viewer-uploads") == 2  # both uploaded files are on display
    assert len(list((server.out / "viewer-uploads").glob("*/*.nii.gz"))) == 2


def test_bad_input_on_the_command_line_is_reported_in_the_page(tmp_path, chromium):
    notes = tmp_path / "scan.txt"
    notes.write_text("not an image\n")
    out = tmp_path / "out"
    process = ViewerProcess(
        ["--port", "0", "--out", str(out), "--demo-resolution", DEMO_RESOLUTION, "--mri", str(notes), "--pet", str(tmp_path / "absent_pet")],
        ARTIFACTS / "viewer-server-bad-cli.log",
    )
    process.start()

    async def scenario(page_url: str):
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            try:
                viewer = ViewerPage(await browser.new_page(viewport=VIEWPORT))
                await viewer.page.goto(page_url)
                error = await viewer.wait_for_error(90)
                await screenshot(viewer, "viewer-bad-command-line.png")
                ready_before = await viewer.state("fv_ready")
                await viewer.page.locator("#fusevis-load-demo").click()  # the server still works: open the demo
                await viewer.wait_until_ready(120)
                return error, ready_before
            finally:
                await browser.close()

    try:
        error, ready_before = asyncio.run(scenario(process.url))
        assert process.running()
    finally:
        process.stop()
    assert "scan.txt" in error and "neither a NIfTI file" in error
    assert ready_before is False
    assert "could not open the pair" in process.output()


def test_save_scene_writes_a_bundle_that_reloads_with_every_volume(server, tmp_path):
    import slicer

    from FuseVisMRML.scene_files import read_scene

    folder = tmp_path / "saved scenes"  # made by the server; a space in the name on purpose

    async def scenario(viewer: ViewerPage):
        page = viewer.page
        # A principal pixel of the mouse's (a pair opens with one at the slice centre, which a hover there would not change).
        await hover_and_read(viewer, "Fused", 0.45, 0.4)
        await page.locator("#fusevis-save-dir").fill(str(folder))
        await page.wait_for_function("(f) => window.trame.state.get('fv_save_dir') === f", arg=str(folder), timeout=10_000)
        await page.locator("#fusevis-save").click()
        await page.wait_for_selector("#fusevis-saved", timeout=120_000)
        shown = await page.locator("#fusevis-saved").get_attribute("data-path")
        await screenshot(viewer, "viewer-saved-scene.png")
        return shown, await viewer.state("fv_method"), await viewer.error_text()

    shown, method, error = run(scenario, server.url)
    assert not error
    bundle = Path(shown)
    assert bundle.parent == folder.resolve() and bundle.suffix == ".mrb" and method in bundle.name
    assert bundle.is_file() and bundle.stat().st_size > 10_000
    assert f"saved the scene to {bundle}" in server.output()
    # VTK's and Slicer's own chatter (no X display, deprecated events, every file zipped) goes to a log, not the terminal.
    for chatter in ("bad X server connection", "WindowResizeEvent", "Zip: adding"):
        assert chatter not in server.output(), chatter
    assert "bad X server connection" in (server.out / "viewer-vtk.log").read_text()

    scene = slicer.vtkMRMLScene()
    read_scene(scene, bundle)
    volumes = {}
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLVolumeNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLVolumeNode")
        volumes[node.GetName()] = node
    expected = (
        "FuseVis fused", "FuseVis PET on MRI grid", "FuseVis guidance MRI", "FuseVis guidance PET",
        "FuseVis guidance RGB", "FuseVis Jacobian MRI", "FuseVis Jacobian PET",
    )
    for name in expected:
        assert name in volumes, f"{name} is not in the saved scene ({sorted(volumes)})"
        assert volumes[name].GetImageData() is not None, name
    inputs = [name for name in volumes if not name.startswith("FuseVis")]
    assert len(inputs) == 2, f"the input MRI and PET should be saved too: {sorted(volumes)}"
    mri_dims = volumes["FuseVis PET on MRI grid"].GetImageData().GetDimensions()
    assert volumes["FuseVis fused"].GetImageData().GetDimensions() == mri_dims
    fused = slicer.util.arrayFromVolume(volumes["FuseVis fused"])
    assert fused.max() > 0  # the slices fused so far are in the bundle, not zeros
    jacobian = slicer.util.arrayFromVolume(volumes["FuseVis Jacobian MRI"])
    assert jacobian.shape[0] == 1 and np.abs(jacobian).max() > 0  # the principal pixel's layer


def box_width(pixels: np.ndarray) -> int:
    """Width in pixels of the red neighbourhood box drawn in a view's image."""
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)
    cols = np.nonzero(red.any(axis=0))[0]
    assert cols.size > 10, "no neighbourhood box in the view"
    return int(cols.max() - cols.min())


def test_resizing_the_page_fits_the_views_again_on_the_same_slice_and_pixel(server, engine_input):
    """Narrower, lower, then wider again: each time the views are fitted to the slice again, on the slice and
    principal pixel the user chose. Fitted, a view shows the whole slice and no more along its limiting side,
    so the neighbourhood box (21 pixels of the slice) takes 21 / (pixels across that side) of it."""
    _, rows, cols = engine_input[0].shape

    async def scenario(viewer: ViewerPage):
        await viewer.wait_for_readout_after(0)
        chosen = await viewer.state("fv_slice") - 6
        seq = await viewer.readout_seq()
        await viewer.set_state("fv_slice", chosen)
        before = await viewer.wait_for_readout_after(seq)
        seq = await viewer.readout_seq()
        shown = []
        for width, height in ((1200, 900), (1200, 650), (1600, 900)):
            await viewer.page.set_viewport_size({"width": width, "height": height})
            await asyncio.sleep(2.0)  # the new sizes reach the server, the views are fitted and drawn again
            fused = await view_pixels(viewer, "Fused")
            await screenshot(viewer, f"viewer-resized-{width}x{height}.png")
            shown.append((await viewer.state("fv_slice"), await viewer.readout(), await viewer.readout_seq(), fused))
        await viewer.page.set_viewport_size(VIEWPORT)
        return chosen, before, seq, shown

    chosen, before, seq, shown = run(scenario, server.url)
    assert pixel_of(before)[0] == chosen
    first_col, last_col = (int(v) for v in before["neighbourhood"]["text"].split(",")[1].split("-"))
    side = last_col - first_col + 1
    assert 0 < first_col and last_col < cols - 1  # the whole box is in the slice
    for shown_slice, readout, readout_seq, fused in shown:
        assert shown_slice == chosen
        assert pixel_of(readout) == pixel_of(before) and readout_seq == seq  # no other principal pixel was computed
        height, width = fused.shape[:2]
        pixels_across = max(cols, rows * width / height)  # the slice's pixels the width shows when it is fitted
        # Within 6 screen pixels: the box's lines are drawn over its edges, 2 rendered pixels wide.
        assert abs(box_width(fused) - side / pixels_across * width) <= 6, (width, height)


def test_an_oblique_anisotropic_mri_is_shown_slice_by_slice_whole_and_alike_in_every_view(server, tmp_path, chromium):
    """An MRI tilted 20 degrees with 2.5 x 3.2 x 5 mm voxels: each view shows one of its slices whole (head
    clear of every edge), the Jacobian layer is lit at the principal pixel, and a point of the MRI view
    and the same point of the fused view are the same pixel."""
    demo = read_volume(server.out / "demo-inputs" / "mri.nii.gz")
    oblique = tilted(demo, (8, 70, 80), (2.5, 3.2, 5.0))
    mri_file = write_nifti(oblique, tmp_path / "oblique_mri.nii.gz")
    process = ViewerProcess(
        ["--port", "0", "--out", str(tmp_path / "out"), "--mri", str(mri_file), "--pet", str(server.out / "demo-inputs" / "pet.nii.gz"),
         "--already-registered"],
        ARTIFACTS / "viewer-server-oblique.log",
    )
    process.start()
    process.wait_for_output("fusevis serve: showing MRI")

    async def scenario(viewer: ViewerPage):
        await viewer.wait_until_ready(120)
        await viewer.wait_for_readout_after(0)  # the first principal pixel
        await viewer.set_state("fv_crosshair", False)
        on_mri = pixel_of(await hover_and_read(viewer, "MRI", 0.42, 0.56))
        await viewer.set_state("fv_opacity", 0.0)
        await asyncio.sleep(0.8)
        mri_layer = await view_pixels(viewer, "MRI")
        await hover_and_read(viewer, "Fused", 0.6, 0.4)  # elsewhere first: the same pixel again would change nothing
        on_fused = pixel_of(await hover_and_read(viewer, "Fused", 0.42, 0.56))
        await asyncio.sleep(0.8)
        fused_view = await view_pixels(viewer, "Fused")  # once the page has laid the views out and they were fitted
        await screenshot(viewer, "viewer-oblique.png")
        return fused_view, on_mri, mri_layer, on_fused

    try:
        fused_view, on_mri, mri_layer, on_fused = run(scenario, process.url)
    finally:
        process.stop()
    # Rows and columns that cross the head (Slicer's corner annotations light only a few pixels of a line;
    # the page's layer buttons cover the top of the view, so its top edge is not judged).
    bright = fused_view.max(axis=2) > 40
    rows, cols = np.nonzero(bright.mean(axis=1) > 0.05)[0], np.nonzero(bright.mean(axis=0) > 0.05)[0]
    height, width = fused_view.shape[:2]
    assert rows.max() < 0.99 * height, "the head is cut at the bottom"
    assert cols.min() > 0.01 * width and cols.max() < 0.99 * width, "the head is cut at a side"
    assert on_mri == on_fused
    # Weighted averaging's Jacobian is the principal pixel alone: lit at the box centre, and not as a band
    # across the view (what a view cutting the oblique slices at an angle showed).
    row, col = box_centre(mri_layer)
    assert brightness_at(mri_layer, (row, col)) > 100
    for beside in (col - width // 4, col + width // 4):
        assert brightness_at(mri_layer, (row, beside)) < 50
