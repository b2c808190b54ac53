"""Layered PSD output, read back by psd-tools, by GIMP 2.10 (a reader nobody here wrote) and by
ImageMagick (which ignores layers and reads the stored composite)."""
import json
import shutil
import subprocess

import numpy as np
import pytest
import tifffile
from psd_tools import PSDImage

from focusdrop.bridge.samples import write_bracket
from focusdrop.bridge.stacking import BLEND_LAYER_NAME, DEPTH_LAYER_NAME, PYRAMID_LAYER_NAME
from conftest import focusdrop, psnr, to_unit
from focusdrop.engine.frames import list_frames
from focusdrop.engine.masks import region_masks
from focusdrop.engine.pipeline import StackOptions, stack
from focusdrop.engine.psd import LayeredDocument, needs_psb, zip_with_prediction
from focusdrop.engine.synthetic import BracketSpec
from gimp import open_in_gimp

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def _expected_masks(paths):
    """The masks the engine computes, bottom first, at 16 bits."""
    result = stack(paths, StackOptions())
    return list(region_masks(result.depth, len(paths), np.uint16))


@pytest.fixture(scope="module")
def run16(tmp_path_factory, standard_bracket):
    """The standard 16-bit bracket stacked to a PSD and a TIFF, and what GIMP saw of the PSD."""
    folder = tmp_path_factory.mktemp("psd16")
    for name in ("result.psd", "result.tif"):
        run = focusdrop("stack", standard_bracket.folder, "-o", folder / name)
        assert run.returncode == 0, run.stderr
    return folder, open_in_gimp(folder / "result.psd", folder / "gimp")


def test_gimp_sees_one_masked_layer_per_frame_bottom_to_top(run16, standard_bracket):
    _, view = run16
    stems = [p.stem for p in standard_bracket.paths]
    assert view.layers == ([(DEPTH_LAYER_NAME, False, False), (BLEND_LAYER_NAME, True, True)]
                           + [(stem, True, True) for stem in reversed(stems)])
    assert view.precision == 250  # 16-bit, gamma-encoded
    assert view.icc_bytes == len(standard_bracket.icc)


def test_gimp_flattens_to_the_fused_image_within_one_level(run16):
    folder, view = run16
    fused = tifffile.imread(folder / "result.tif")
    assert view.flat.dtype == np.uint16 and view.flat.shape == fused.shape
    assert np.abs(view.flat.astype(np.int32) - fused).max() <= 1


def _linear(png: np.ndarray) -> np.ndarray:
    """GIMP keeps masks linear and exports them through the sRGB curve: undo it. Returns 0-65535 floats."""
    v = png.astype(np.float64) / 65535
    return 65535 * np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def test_masks_gimp_reads_are_the_engine_blend_weights(run16, standard_bracket):
    _, view = run16
    expected = _expected_masks(standard_bracket.paths)
    found = list(reversed(view.masks))[:len(expected)]  # GIMP lists layers top first
    assert (found[0] == 65535).all()  # the bottom layer shows wherever nothing covers it
    assert (view.masks[1] == 65535).all()  # the blend layer's mask is white: the document is the fused image
    for k, (mask, want) in enumerate(zip(found, expected)):
        assert mask.dtype == np.uint16, f"layer {k}"
        assert np.abs(_linear(mask) - want).max() < 1.5, f"layer {k}"  # measured 1.16: PNG rounding
    # every frame above the bottom one is hidden somewhere, and most own a region of their own
    owned = [float(np.mean(want > 32768)) for want in expected[1:]]
    assert max(owned) < 0.99 and sum(share > 0.01 for share in owned) >= len(owned) // 2, owned
    # masks read like Auto-Blend: white where a frame supplies the pixel, black elsewhere, soft only at seams
    mid_grey = np.mean([((m > 6553) & (m < 58982)).mean() for m in expected[1:]])
    assert mid_grey < 0.15, mid_grey


def test_readers_that_ignore_layers_see_the_fused_image(run16):
    folder, _ = run16
    fused = tifffile.imread(folder / "result.tif")
    psd = PSDImage.open(folder / "result.psd")
    assert np.abs(np.round(psd.numpy() * 65535).astype(np.int32) - fused).max() <= 1
    convert = shutil.which("convert-im6.q16") or "/usr/bin/convert"
    out = folder / "imagemagick.tif"
    subprocess.run([convert, f"{folder / 'result.psd'}[0]", str(out)], check=True, capture_output=True)
    seen = tifffile.imread(out)
    assert seen.shape == fused.shape and np.abs(seen.astype(np.int32) - fused).max() <= 1


def test_nothing_but_the_results_is_left_in_the_output_folder(run16):
    folder, _ = run16
    assert sorted(p.name for p in folder.iterdir()) == ["gimp", "imagemagick.tif", "result.psd", "result.tif"] \
        or sorted(p.name for p in folder.iterdir()) == ["gimp", "result.psd", "result.tif"]


@pytest.fixture(scope="module")
def bracket8(tmp_path_factory):
    """An 8-bit bracket with Unicode file names and XMP in every frame."""
    folder = tmp_path_factory.mktemp("bracket8")
    _, paths = write_bracket(BracketSpec(width=480, height=320, frames=5, bit_depth=8, seed=7), folder / "raw")
    (folder / "in").mkdir()
    for k, path in enumerate(paths):
        xmp = XMP.replace(b"<rdf:RDF/>", f"<rdf:RDF>{k}</rdf:RDF>".encode())
        tifffile.imwrite(folder / "in" / f"Bague ø18 — {k + 1}.tif", tifffile.imread(path), photometric="rgb",
                         extratags=[(700, "B", len(xmp), xmp, True)])
    return folder / "in"


def test_8_bit_psd_with_unicode_names_xmp_and_a_pyramid_layer(tmp_path, bracket8):
    result, fused = tmp_path / "result.psd", tmp_path / "result.tif"
    run = focusdrop("stack", bracket8, "-o", result, "--pyramid-layer", "--report", tmp_path / "r.json")
    assert run.returncode == 0, run.stderr
    assert focusdrop("stack", bracket8, "-o", fused).returncode == 0
    stems = [p.stem for p in list_frames(bracket8)]
    view = open_in_gimp(result, tmp_path / "gimp")
    assert view.layers == ([(DEPTH_LAYER_NAME, False, False), (PYRAMID_LAYER_NAME, False, False),
                            (BLEND_LAYER_NAME, True, True)] + [(s, True, True) for s in reversed(stems)])
    assert view.precision == 150  # 8-bit, gamma-encoded
    assert psnr(to_unit(view.flat), to_unit(tifffile.imread(fused))) > 50
    psd = PSDImage.open(result)
    assert psd.depth == 8
    assert [layer.name for layer in psd] == stems + [BLEND_LAYER_NAME, PYRAMID_LAYER_NAME, DEPTH_LAYER_NAME]
    reference = json.loads((tmp_path / "r.json").read_text())["reference"]
    assert reference == stems[2] + ".tif"
    # the reference frame's packet, kept as it is: it does not parse (rdf: is not declared), so nothing is added
    assert psd.image_resources.get_data(1060) == XMP.replace(b"<rdf:RDF/>", b"<rdf:RDF>2</rdf:RDF>")


def test_psb_is_chosen_past_psd_limits():
    assert not needs_psb(6000, 4000, 1_600_000_000)
    assert needs_psb(6000, 4000, 2**31)
    assert needs_psb(30_001, 2000, 1000)
    with pytest.raises(ValueError, match="larger than even PSB"):
        needs_psb(300_001, 10, 1000)


def test_psb_document_reads_back(tmp_path):
    rng = np.random.default_rng(0)
    layers = [(rng.random((30, 40, 3)) * 65535).astype(np.uint16) for _ in range(2)]
    mask = np.tile(np.linspace(0, 65535, 40).astype(np.uint16), (30, 1))
    document = LayeredDocument(tmp_path / "big.psb", 40, 30, 3, np.uint16, icc=b"icc!")
    document.add_layer("bottom", layers[0], np.full((30, 40), 65535, np.uint16))
    document.add_layer("top", layers[1], mask)
    assert document.write(layers[1]) == tmp_path / "big.psb"
    psd = PSDImage.open(tmp_path / "big.psb")
    assert psd.version == 2 and [layer.name for layer in psd] == ["bottom", "top"]
    assert np.array_equal(np.round(psd[0].numpy()[..., :3] * 65535).astype(np.uint16), layers[0])
    assert np.array_equal(np.round(psd[1].numpy(channel="mask")[..., 0] * 65535).astype(np.uint16), mask)
    assert psd.image_resources.get_data(1039) == b"icc!"
    assert list(tmp_path.iterdir()) == [tmp_path / "big.psb"]


def test_a_psd_that_comes_out_over_the_limit_is_written_again_as_psb(tmp_path, monkeypatch):
    """The layers are written before the masks' and composite's sizes are known: a document that ends up
    over PSD's limit is written again, whole, as PSB, and no .psd is left behind."""
    import focusdrop.engine.psd as psd_module

    def document(path):
        rng = np.random.default_rng(3)
        made = LayeredDocument(path, 40, 30, 3, np.uint16)
        for name in ("bottom", "top"):
            made.add_layer(name, (rng.random((30, 40, 3)) * 65535).astype(np.uint16), mask_later=True)
        masks = [np.full((30, 40), 65535, np.uint16), np.tile(np.linspace(0, 65535, 40).astype(np.uint16), (30, 1))]
        return made, masks
    composite = np.zeros((30, 40, 3), np.uint16)
    made, masks = document(tmp_path / "fits.psd")
    assert made.write(composite, masks) == tmp_path / "fits.psd"
    monkeypatch.setattr(psd_module, "PSD_MAX_BYTES", (tmp_path / "fits.psd").stat().st_size - 1)
    made, masks = document(tmp_path / "over.psd")
    assert made.write(composite, masks) == tmp_path / "over.psb"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fits.psd", "over.psb"]
    psd = PSDImage.open(tmp_path / "over.psb")
    assert psd.version == 2 and [layer.name for layer in psd] == ["bottom", "top"]
    assert np.array_equal(np.round(psd[1].numpy(channel="mask")[..., 0] * 65535).astype(np.uint16), masks[1])


def test_layers_stored_uncompressed_read_back(tmp_path):
    """raw layers (live stacking's frames before the reference) are PSD's raw channel data, beside
    compressed ones, and read back exactly; the document is larger by what compression saved."""
    rng = np.random.default_rng(4)
    smooth = np.tile(np.linspace(0, 65535, 40).astype(np.uint16), (30, 1))
    layers = [np.stack([smooth, smooth[::-1], smooth // 2], axis=2), (rng.random((30, 40, 3)) * 65535).astype(np.uint16)]
    sizes = []
    for raw in (False, True):
        document = LayeredDocument(tmp_path / f"raw{raw}.psd", 40, 30, 3, np.uint16)
        document.add_layer("smooth", layers[0], np.full((30, 40), 65535, np.uint16), raw=raw)
        document.add_layer("noise", layers[1], smooth)
        document.write(layers[1])
        psd = PSDImage.open(tmp_path / f"raw{raw}.psd")
        for layer, want in zip(psd, layers):
            assert np.array_equal(np.round(layer.numpy()[..., :3] * 65535).astype(np.uint16), want)
        assert np.array_equal(np.round(psd[1].numpy(channel="mask")[..., 0] * 65535).astype(np.uint16), smooth)
        sizes.append((tmp_path / f"raw{raw}.psd").stat().st_size)
    assert sizes[1] > sizes[0] + 5000  # the smooth layer, 7200 bytes raw, compresses to little


def test_zip_with_prediction_decodes_with_psd_tools():
    from psd_tools.compression import decompress
    from psd_tools.constants import Compression
    channel = (np.random.default_rng(1).random((7, 13)) * 65535).astype(np.uint16)
    raw = decompress(zip_with_prediction(channel), Compression.ZIP_WITH_PREDICTION, 13, 7, 16)
    assert np.array_equal(np.frombuffer(raw, ">u2").reshape(7, 13), channel)


def test_masks_given_at_write_time_land_on_their_layers(tmp_path):
    rng = np.random.default_rng(2)
    pixels = [(rng.random((20, 30, 3)) * 255).astype(np.uint8) for _ in range(3)]
    later = [np.full((20, 30), v, np.uint8) for v in (255, 7)]
    document = LayeredDocument(tmp_path / "late.psd", 30, 20, 3, np.uint8)
    document.add_layer("a", pixels[0], mask_later=True)
    document.add_layer("b", pixels[1], mask_later=True)
    document.add_layer("c", pixels[2], np.full((20, 30), 99, np.uint8))
    document.write(pixels[2], later)
    psd = PSDImage.open(tmp_path / "late.psd")
    assert [round(float(layer.numpy(channel="mask").mean()) * 255) for layer in psd] == [255, 7, 99]
    assert all(np.array_equal(np.round(layer.numpy()[..., :3] * 255).astype(np.uint8), want)
               for layer, want in zip(psd, pixels))
