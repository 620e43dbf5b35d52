"""Inverting a PET colour rendering back to scalar activity."""
import numpy as np
import pytest
from conftest import colour_render

from FuseVisLib.errors import FuseVisError
from FuseVisLib.pet_colormap import PetColormap


# jet at 128 levels repeats a colour, so it cannot be inverted exactly; these maps do not.
@pytest.mark.parametrize("colormap", ["hot", "viridis", "gist_heat", "plasma"])
def test_synthetic_colour_mapped_ramp_is_reproduced(colormap):
    ramp = np.linspace(0, 1, 128)
    rendered = colour_render(ramp[None, :], colormap)
    recovered = PetColormap.fit([rendered]).activity(rendered)[0]
    assert np.abs(recovered - ramp).max() < 1e-6


def test_inversion_is_monotonic_along_the_map_even_when_shuffled(rng):
    ramp = np.linspace(0, 1, 128)
    image = rng.permutation(ramp).reshape(8, 16)
    rendered = colour_render(image, "viridis")
    recovered = PetColormap.fit([rendered]).activity(rendered)
    order = np.argsort(image.ravel())
    assert np.all(np.diff(recovered.ravel()[order]) > 0)


def test_real_atlas_colours_lie_on_one_monotonic_curve(real_pairs, aanlib_dir):
    from FuseVisLib.pair_folder import read_image

    pixels = [read_image(path) for path in sorted((aanlib_dir / "PET").glob("*.png"))[:40]]
    colormap = PetColormap.fit(pixels)
    steps = np.linalg.norm(np.diff(colormap.colours.astype(float), axis=0), axis=1)
    assert tuple(colormap.colours[0]) == (0, 0, 0)
    # One curve: no step along the fitted map is a jump across colour space.
    assert steps.max() < 3 * np.median(steps)
    assert colormap.activity(colormap.colours[None]).ravel().tolist() == sorted(colormap.activity(colormap.colours[None]).ravel().tolist())


def test_single_colour_image_is_a_clear_error():
    with pytest.raises(FuseVisError, match="single colour"):
        PetColormap.fit([np.zeros((4, 4, 3), np.uint8)])


def test_many_colours_in_blocks_give_the_same_activity(monkeypatch):
    import FuseVisLib.pet_colormap as pet_colormap

    ramp = np.linspace(0, 1, 1024)
    rendered = colour_render(ramp.reshape(32, 32), "plasma", levels=200)
    colormap = PetColormap.fit([rendered])
    assert len(colormap.colours) > 150
    whole = colormap.activity(rendered)
    monkeypatch.setattr(pet_colormap, "_DISTANCE_BLOCK_ELEMENTS", 3 * len(colormap.colours) * 7)  # blocks of 7 colours
    np.testing.assert_array_equal(colormap.activity(rendered), whole)
    assert np.all(np.diff(whole.ravel()[np.argsort(ramp)]) >= 0)
