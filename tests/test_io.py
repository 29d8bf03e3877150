"""Tests of groovescan.io: reading scans, writing scans and audio.

Reading tests write their inputs with tifffile and Pillow directly, so that the reader
is checked against files it did not write; the writer tests then round-trip.
"""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import warnings
from datetime import timedelta

import cv2
import numpy as np
import pytest
import soundfile as sf
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

import groovescan.io as gio
from groovescan.errors import (
    AudioReadError,
    GroovescanError,
    MissingDpiError,
    OutputError,
    ParameterError,
    ScanContentError,
    ScanReadError,
)
from groovescan.io import (
    Scan,
    create_scan_memmap,
    load_scan,
    read_audio,
    save_scan,
    write_audio,
)

SHAPE = (96, 128)  # small, but above MIN_SIDE_PX


def make_image(dtype=np.uint16, shape=SHAPE, seed=0):
    """Random pixels spanning much of the type's range (never blank)."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(-3.0, 5.0, shape).astype(dtype)  # deliberately outside [0, 1]
    return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True, dtype=dtype)


def write_tiff(path, image, *, dpi=(2400, 2400), unit="INCH", **options):
    tifffile.imwrite(path, image, resolution=dpi, resolutionunit=unit, **options)
    return path


def write_png(path, image, *, dpi=(2400, 2400)):
    Image.fromarray(image).save(path, dpi=dpi)
    return path


def write_jpeg(path, image, *, dpi=(2400, 2400), **options):
    """A JPEG written by Pillow; ``dpi=None`` writes no density (JFIF unit 0, aspect 1:1)."""
    if dpi is not None:
        options["dpi"] = dpi
    Image.fromarray(image).save(path, format="JPEG", quality=95, **options)
    return path


def pillow_pixels(path):
    with Image.open(path) as picture:
        return np.asarray(picture)


def listing(folder):
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------ reading TIFF


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_uncompressed_tiff_is_memory_mapped_read_only_and_exact(tmp_path, dtype):
    image = make_image(dtype)
    scan = load_scan(write_tiff(tmp_path / "a.tif", image))
    assert isinstance(scan.image, np.memmap)  # mapped, not copied into RAM
    assert os.path.samefile(scan.image.filename, tmp_path / "a.tif")
    assert not scan.image.flags.writeable
    assert scan.image.dtype == dtype and scan.bit_depth == 8 * np.dtype(dtype).itemsize
    np.testing.assert_array_equal(scan.image, image)  # float range kept, never rescaled
    assert (scan.dpi, scan.dpi_xy, scan.dpi_source) == (2400.0, (2400.0, 2400.0), "metadata")
    assert scan.path == str(tmp_path / "a.tif") and scan.notes == ()


@pytest.mark.parametrize("tile", [None, (32, 32)], ids=["stripped", "tiled"])
@pytest.mark.parametrize("compression", ["lzw", "deflate", "zstd", "packbits"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_compressed_tiff_round_trips(tmp_path, dtype, compression, tile):
    image = make_image(dtype)
    path = write_tiff(tmp_path / "c.tif", image, compression=compression, tile=tile)
    scan = load_scan(path)
    assert not isinstance(scan.image, np.memmap)
    np.testing.assert_array_equal(scan.image, image)


def test_bigtiff_is_read_and_memory_mapped(tmp_path):
    image = make_image()
    path = write_tiff(tmp_path / "big.tif", image, bigtiff=True)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_bigtiff
    scan = load_scan(path)
    assert isinstance(scan.image, np.memmap)
    np.testing.assert_array_equal(scan.image, image)


def test_big_endian_tiff_is_read_into_native_order(tmp_path):
    image = make_image()
    scan = load_scan(write_tiff(tmp_path / "be.tif", image, byteorder=">"))
    assert scan.image.dtype == np.dtype("=u2")  # OpenCV and friends need native order
    np.testing.assert_array_equal(scan.image, image)


def test_tiff_dpi_in_inches_and_centimetres(tmp_path):
    image = make_image()
    inch = load_scan(write_tiff(tmp_path / "in.tif", image, dpi=(2400, 2436)))
    assert inch.dpi_xy == (2400.0, 2436.0)
    cm = load_scan(
        write_tiff(tmp_path / "cm.tif", image, dpi=(2400 / 2.54, 2436 / 2.54), unit="CENTIMETER")
    )
    # tifffile stores px/cm as a rational with a bounded denominator: ~1e-7 relative.
    np.testing.assert_allclose(cm.dpi_xy, (2400.0, 2436.0), rtol=1e-6)


def test_anisotropic_dpi_keeps_x_then_y_and_pixel_sizes_row_then_col(tmp_path):
    scan = load_scan(write_tiff(tmp_path / "a.tif", make_image(), dpi=(2400, 2436)))
    assert scan.dpi_xy == (2400.0, 2436.0)  # (dpi_col, dpi_row), as in the file
    assert scan.dpi == 2418.0
    assert scan.px_mm == pytest.approx((25.4 / 2436, 25.4 / 2400))  # (row, col)


# ------------------------------------------------------------------- reading PNG


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_round_trips_with_whole_dpi(tmp_path, dtype):
    image = make_image(dtype)
    scan = load_scan(write_png(tmp_path / "a.png", image, dpi=(2400, 2436)))
    assert scan.image.dtype == dtype
    np.testing.assert_array_equal(scan.image, image)
    # pHYs holds whole pixels per metre (2400 dpi -> 94488 /m -> 2399.9952 dpi):
    # whole-number dpi values come back exactly.
    assert scan.dpi_xy == (2400.0, 2436.0)
    assert scan.dpi_source == "metadata"


def test_png_dpi_that_is_not_whole_is_kept_to_phys_precision(tmp_path):
    scan = load_scan(write_png(tmp_path / "a.png", make_image(), dpi=(2400.5, 2400.5)))
    # One pixel per metre is 0.0254 dpi: the stored value is within half of that.
    assert scan.dpi_xy[0] == pytest.approx(2400.5, abs=0.0127)
    assert scan.dpi_xy[0] != 2400.5 and scan.dpi_xy[0] != 2401.0


def test_sixteen_bit_colour_png_keeps_sixteen_bits(tmp_path):
    rgb = np.stack([make_image(seed=1) // 8, make_image(seed=2), make_image(seed=3) // 8], -1)
    path = tmp_path / "rgb16.png"
    cv2.imwrite(str(path), rgb[:, :, ::-1])  # OpenCV writes BGR
    with pytest.warns(UserWarning, match="green channel"):
        scan = load_scan(path, dpi=2400)
    assert scan.image.dtype == np.uint16  # Pillow alone would have reduced it to 8 bits
    np.testing.assert_array_equal(scan.image, rgb[:, :, 1])


# ------------------------------------------------------------------ reading JPEG


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_jpeg_round_trips_pillows_decode_with_jfif_dpi_in_inches(tmp_path, progressive):
    path = write_jpeg(tmp_path / "a.jpg", make_image(np.uint8), dpi=(2400, 2436),
                      progressive=progressive)
    scan = load_scan(path)
    assert scan.image.dtype == np.uint8 and scan.bit_depth == 8
    np.testing.assert_array_equal(scan.image, pillow_pixels(path))  # decoded pixels, as decoded
    assert scan.dpi_xy == (2400.0, 2436.0) and scan.dpi_source == "metadata"
    assert scan.notes == ()


def set_jfif_density(path, *, unit, density):
    """Rewrite the JFIF APP0 segment's unit (0 none, 1 inch, 2 cm) and X/Y density."""
    data = bytearray(path.read_bytes())
    assert data[2:4] == b"\xff\xe0" and data[6:11] == b"JFIF\0"
    data[13] = unit
    data[14:18] = density[0].to_bytes(2, "big") + density[1].to_bytes(2, "big")
    path.write_bytes(bytes(data))
    return path


def test_jpeg_jfif_dpi_in_centimetres(tmp_path):
    # Pillow writes dots per inch only: the unit byte is set to 2 (dots/cm) afterwards.
    path = set_jfif_density(write_jpeg(tmp_path / "a.jpg", make_image(np.uint8)),
                            unit=2, density=(945, 959))
    assert Image.open(path).info["jfif_unit"] == 2
    scan = load_scan(path)
    # 945 /cm is 2400.3 dpi: JFIF stores whole dots per cm, so that is what the file says
    assert scan.dpi_xy == pytest.approx((945 * 2.54, 959 * 2.54), rel=1e-12)


def exif_with(**tags):
    exif = Image.Exif()
    names = {"x": 0x011A, "y": 0x011B, "unit": 0x0128, "orientation": 0x0112}
    for name, value in tags.items():
        exif[names[name]] = value
    return exif


@pytest.mark.parametrize("unit, scale", [(2, 1.0), (3, 2.54), (None, 1.0)],
                         ids=["inch", "cm", "no-unit-tag-means-inch"])
def test_jpeg_dpi_from_exif_when_jfif_has_none(tmp_path, unit, scale):
    tags = dict(x=1200, y=1218) if unit is None else dict(x=1200, y=1218, unit=unit)
    path = write_jpeg(tmp_path / "a.jpg", make_image(np.uint8), dpi=None, exif=exif_with(**tags))
    assert Image.open(path).info["jfif_unit"] == 0  # JFIF present, but an aspect ratio only
    scan = load_scan(path)
    assert scan.dpi_xy == pytest.approx((1200 * scale, 1218 * scale), rel=1e-12)
    assert scan.dpi_source == "metadata" and scan.notes == ()


def test_jpeg_exif_without_resolution_is_no_dpi_not_pillows_72(tmp_path):
    # Pillow's info["dpi"] says 72 dpi for a JPEG whose EXIF has no resolution
    path = write_jpeg(tmp_path / "a.jpg", make_image(np.uint8), dpi=None,
                      exif=exif_with(orientation=6))
    assert Image.open(path).info["dpi"] == (72, 72)
    with pytest.raises(MissingDpiError, match="records no scan resolution"):
        load_scan(path)
    scan = load_scan(path, dpi=2400)
    np.testing.assert_array_equal(scan.image, pillow_pixels(path))  # not turned for display
    assert any("EXIF orientation 6" in note and "as stored" in note for note in scan.notes)


def test_jpeg_jfif_density_wins_over_exif_and_a_disagreement_is_noted(tmp_path):
    path = write_jpeg(tmp_path / "a.jpg", make_image(np.uint8), dpi=(2400, 2400),
                      exif=exif_with(x=300, y=300, unit=2))
    scan = load_scan(path)
    assert scan.dpi_xy == (2400.0, 2400.0)
    assert scan.notes == ("JFIF says 2400 dpi, EXIF 300 dpi: used JFIF's",)


def test_colour_jpeg_uses_the_channel_with_most_contrast(tmp_path):
    rgb = colour_image(3, contrast=(250, 120, 60))
    path = write_jpeg(tmp_path / "rgb.jpg", rgb)
    with pytest.warns(UserWarning, match="RGB scan: used the red channel"):
        scan = load_scan(path)
    np.testing.assert_array_equal(scan.image, pillow_pixels(path)[:, :, 0])
    assert scan.image.flags.c_contiguous  # the other channels given up
    assert scan.notes[0].startswith("RGB scan: used the red channel")


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "rgb"])
def test_jpeg_is_copied_out_of_pillow_in_blocks_exactly(tmp_path, monkeypatch, colour):
    image = colour_image(3, contrast=(90, 250, 30)) if colour else make_image(np.uint8)
    path = write_jpeg(tmp_path / "a.jpg", image)
    monkeypatch.setattr(gio.load, "_BLOCK_BYTES", 1000)  # a few rows a block, a ragged last one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scan = load_scan(path)
    expected = pillow_pixels(path)
    np.testing.assert_array_equal(scan.image, expected[:, :, 1] if colour else expected)


def test_large_jpeg_is_not_stopped_by_pillows_pixel_limit(tmp_path, monkeypatch):
    # A 20 000 x 28 000 px scan is 3 times Pillow's decompression-bomb limit; the same
    # check is made here on a small file by lowering the limit far below its size.
    path = write_jpeg(tmp_path / "a.jpg", make_image(np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        scan = load_scan(path)
    assert scan.shape == SHAPE
    assert Image.MAX_IMAGE_PIXELS == 1000  # the caller's setting is back


@pytest.mark.parametrize("keep", [0.02, 0.3, 0.6, 0.95, -1, -2],
                         ids=["header", "30%", "60%", "95%", "no-eoi-byte", "no-eoi"])
@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_truncated_jpeg_raises_even_if_pillow_is_told_to_load_truncated_images(
    tmp_path, monkeypatch, progressive, keep
):
    data = write_jpeg(tmp_path / "a.jpg", make_image(np.uint8), progressive=progressive).read_bytes()
    cut = len(data) + keep if keep < 0 else int(len(data) * keep)
    (tmp_path / "cut.jpg").write_bytes(data[:cut])
    # Pillow would fill the missing part with grey; the reader turns this off for itself
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ScanReadError, match=r"cut\.jpg: truncated.*JPEG.*copy or export"):
        load_scan(tmp_path / "cut.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is back


def test_file_with_jpeg_magic_and_garbage_after_it_raises(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    with pytest.raises(ScanReadError, match="corrupt JPEG"):
        load_scan(tmp_path / "bad.jpg", dpi=2400)


def test_cmyk_jpeg_is_refused(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(colour_image(3)).convert("CMYK").save(path, dpi=(2400, 2400))
    with pytest.raises(ScanContentError, match="CMYK JPEG.*greyscale"):
        load_scan(path)


def test_the_content_decides_the_format_not_the_name(tmp_path):
    # as for .tif and .png: read by content; a name that says otherwise is noted
    image = make_image(np.uint8)
    png = tmp_path / "really_png.jpg"
    Image.fromarray(image).save(png, format="PNG", dpi=(2400, 2400))
    scan = load_scan(png)
    np.testing.assert_array_equal(scan.image, image)  # lossless: PNG pixels, not JPEG ones
    assert scan.notes == ("named .jpg but holds a PNG image: read as PNG",)
    jpeg = tmp_path / "really_jpeg.tif"
    write_jpeg(tmp_path / "x.jpg", image).rename(jpeg)
    assert load_scan(jpeg).notes == ("named .tif but holds a JPEG image: read as JPEG",)
    (tmp_path / "garbage.jpeg").write_bytes(b"not an image at all\n" * 10)
    with pytest.raises(ScanReadError, match=r"garbage\.jpeg: not a TIFF, PNG or JPEG image"):
        load_scan(tmp_path / "garbage.jpeg")


# ----------------------------------------------------------------- dpi handling


def test_dpi_argument_overrides_the_file_and_says_so(tmp_path):
    path = write_tiff(tmp_path / "a.tif", make_image(), dpi=(1200, 1200))
    scan = load_scan(path, dpi=2400)
    assert (scan.dpi_xy, scan.dpi_source) == ((2400.0, 2400.0), "argument")
    assert any("overrides the file's 1200" in note for note in scan.notes)
    pair = load_scan(path, dpi=(2400, 2436))
    assert pair.dpi_xy == (2400.0, 2436.0)
    same = load_scan(path, dpi=1200)
    assert same.notes == ()  # nothing to report when they agree


@pytest.mark.parametrize(
    "make_file",
    [
        lambda p: tifffile.imwrite(p / "a.tif", make_image()),  # tifffile: unit NONE, 1 x 1
        lambda p: Image.fromarray(make_image()).save(p / "a.png"),  # no pHYs chunk
        lambda p: write_jpeg(p / "a.jpg", make_image(np.uint8), dpi=None),  # JFIF unit 0
    ],
    ids=["tiff", "png", "jpeg"],
)
def test_missing_dpi_asks_for_it(tmp_path, make_file):
    make_file(tmp_path)
    (path,) = tmp_path.iterdir()
    with pytest.raises(MissingDpiError, match=r"dpi=N \(CLI: --dpi N\)"):
        load_scan(path)
    assert load_scan(path, dpi=2400).dpi == 2400.0


@pytest.mark.parametrize(
    "dpi", [50, 99.9, 20001, 30000, (2400, 50), 0, -2400, float("nan"), float("inf")]
)
def test_absurd_dpi_argument_is_refused_with_the_range(tmp_path, dpi):
    path = write_tiff(tmp_path / "a.tif", make_image())
    with pytest.raises(ParameterError, match=r"100-20000.*--dpi"):
        load_scan(path, dpi=dpi)


@pytest.mark.parametrize("dpi", [True, "2400", (2400,), (1, 2, 3), (2400, None), [2400, "2436"]])
def test_malformed_dpi_argument_is_refused(dpi):
    with pytest.raises(ParameterError, match="number or an"):
        Scan.from_array(make_image(), dpi=dpi)


def test_placeholder_dpi_in_the_file_is_refused_unless_overridden(tmp_path):
    path = write_tiff(tmp_path / "a.tif", make_image(), dpi=(72, 72))
    with pytest.raises(ParameterError, match=r"says 72 dpi.*--dpi"):
        load_scan(path)
    assert load_scan(path, dpi=2400).dpi == 2400.0


# ------------------------------------------------------------ unreadable files


def test_missing_file(tmp_path):
    with pytest.raises(ScanReadError, match="no such file"):
        load_scan(tmp_path / "nope.tif")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ScanReadError, match="is a folder"):
        load_scan(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(ScanReadError, match="empty"):
        load_scan(tmp_path / "empty.tif")


def test_text_file_is_not_an_image(tmp_path):
    (tmp_path / "notes.tif").write_text("this is not a scan\n")
    with pytest.raises(ScanReadError, match="not a TIFF, PNG or JPEG"):
        load_scan(tmp_path / "notes.tif")


def test_other_image_formats_are_named_and_refused(tmp_path):
    path = tmp_path / "scan.gif"
    Image.fromarray(make_image(np.uint8)).save(path)
    with pytest.raises(ScanReadError, match="a GIF file.*reads TIFF, PNG and JPEG"):
        load_scan(path, dpi=2400)


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.9, -1])
@pytest.mark.parametrize("compression", [None, "lzw"])
def test_truncated_tiff_raises_rather_than_giving_part_of_the_image(tmp_path, compression, keep):
    data = write_tiff(tmp_path / "a.tif", make_image(), compression=compression).read_bytes()
    cut = len(data) + keep if keep < 0 else int(len(data) * keep)
    (tmp_path / "cut.tif").write_bytes(data[:cut])
    with pytest.raises(ScanReadError, match="truncated|corrupt"):
        load_scan(tmp_path / "cut.tif")


@pytest.mark.parametrize("cut_from_end", [1, 5, 12, 20, 3000])
def test_truncated_png_raises(tmp_path, cut_from_end):
    # Cutting 12 bytes removes just IEND, 20 also the last IDAT's CRC: Pillow would
    # still decode those files whole; we refuse them as incomplete copies.
    data = write_png(tmp_path / "a.png", make_image()).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:-cut_from_end])
    with pytest.raises(ScanReadError, match="truncated or corrupt PNG"):
        load_scan(tmp_path / "cut.png")


def test_png_with_a_flipped_data_byte_raises(tmp_path):
    data = bytearray(write_png(tmp_path / "a.png", make_image()).read_bytes())
    data[len(data) // 2] ^= 0x40  # inside IDAT: its CRC no longer matches
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(ScanReadError, match="corrupt PNG"):
        load_scan(tmp_path / "bad.png")


# --------------------------------------------------------- unusable image content


def test_tiny_image(tmp_path):
    path = write_tiff(tmp_path / "a.tif", make_image(shape=(32, 200)))
    with pytest.raises(ScanContentError, match="32 x 200 px, too small"):
        load_scan(path)


def test_blank_image(tmp_path):
    path = write_tiff(tmp_path / "a.tif", np.full(SHAPE, 1234, np.uint16))
    with pytest.raises(ScanContentError, match="blank.*1234"):
        load_scan(path)


def test_one_odd_pixel_between_sampled_rows_is_not_blank(tmp_path):
    # 600 rows: the quick check samples every 2nd row; the full pass must find row 301.
    image = np.full((600, 80), 7, np.uint16)
    image[301, 5] = 8
    assert load_scan(write_tiff(tmp_path / "a.tif", image)).image[301, 5] == 8


def test_empty_array():
    with pytest.raises(ScanContentError, match="empty"):
        Scan.from_array(np.zeros((0, 100), np.uint8), dpi=2400)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_image_with_nan_or_inf(tmp_path, bad):
    image = make_image(np.float32)
    image[10, 20] = bad
    with pytest.raises(ScanContentError, match=r"1 NaN or infinite pixel\(s\)"):
        load_scan(write_tiff(tmp_path / "a.tif", image))


def test_float64_becomes_float32_with_a_note_and_keeps_its_range():
    image = make_image(np.float64)
    scan = Scan.from_array(image, dpi=2400)
    assert scan.image.dtype == np.float32 and scan.bit_depth == 32
    np.testing.assert_array_equal(scan.image, image.astype(np.float32))
    assert scan.notes == ("float64 pixels converted to float32",)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (make_image(np.uint8) > 128, "1-bit"),
        (make_image(np.uint16).astype(np.int16), "unsupported pixel type int16"),
        (make_image(np.uint16).astype(np.uint32), "unsupported pixel type uint32"),
    ],
    ids=["bilevel", "int16", "uint32"],
)
def test_unsupported_pixel_types(tmp_path, image, match):
    with pytest.raises(ScanContentError, match=match):
        load_scan(write_tiff(tmp_path / "a.tif", image))


def test_palette_png(tmp_path):
    Image.fromarray(make_image(np.uint8)).convert("P").save(tmp_path / "p.png", dpi=(2400, 2400))
    with pytest.raises(ScanContentError, match="palette"):
        load_scan(tmp_path / "p.png")


def test_min_is_white_tiff_is_kept_as_stored_with_a_note(tmp_path):
    image = make_image()
    scan = load_scan(write_tiff(tmp_path / "a.tif", image, photometric="miniswhite"))
    np.testing.assert_array_equal(scan.image, image)
    assert any("MinIsWhite" in note for note in scan.notes)


def test_multi_page_tiff_uses_the_first_page(tmp_path):
    stack = np.stack([make_image(seed=s) for s in range(3)])
    path = write_tiff(tmp_path / "stack.tif", stack, photometric="minisblack")
    with pytest.warns(UserWarning, match="3 pages"):
        scan = load_scan(path)
    np.testing.assert_array_equal(scan.image, stack[0])
    assert scan.notes == ("multi-page TIFF (3 pages): used the first page",)


# ------------------------------------------------------------------- colour scans


def colour_image(n_channels, *, contrast=(20, 200, 200), seed=0):
    """uint8 colour image whose channel c spans ``contrast[c]`` grey levels."""
    rng = np.random.default_rng(seed)
    base = rng.random(SHAPE)
    channels = [np.round(base * span).astype(np.uint8) for span in contrast]
    if n_channels == 4:
        channels.append(np.full(SHAPE, 255, np.uint8))
    return np.stack(channels, axis=-1)


def test_rgb_tiff_uses_the_channel_with_most_contrast_without_copying(tmp_path):
    rgb = colour_image(3, contrast=(250, 120, 60))  # red spans most grey levels
    with pytest.warns(UserWarning, match="RGB scan: used the red channel"):
        scan = load_scan(write_tiff(tmp_path / "rgb.tif", rgb))
    np.testing.assert_array_equal(scan.image, rgb[:, :, 0])
    assert isinstance(scan.image, np.memmap)  # a strided view of the mapped file
    assert scan.notes[0].startswith("RGB scan: used the red channel")


def test_planar_rgb_tiff(tmp_path):
    rgb = colour_image(3, contrast=(60, 120, 250))
    path = write_tiff(tmp_path / "planar.tif", np.moveaxis(rgb, -1, 0), photometric="rgb",
                      planarconfig="separate")
    with pytest.warns(UserWarning, match="blue channel"):
        scan = load_scan(path)
    np.testing.assert_array_equal(scan.image, rgb[:, :, 2])


def test_rgba_png_ignores_alpha(tmp_path):
    rgba = colour_image(4)
    with pytest.warns(UserWarning, match="RGBA scan.*ignored the alpha channel"):
        scan = load_scan(write_png(tmp_path / "rgba.png", rgba))
    np.testing.assert_array_equal(scan.image, rgba[:, :, 1])  # green: tied with blue, preferred


def test_grey_plus_alpha_uses_the_grey_channel_with_a_note():
    image = make_image()
    scan = Scan.from_array(np.stack([image, np.full_like(image, 65535)], axis=-1), dpi=2400)
    np.testing.assert_array_equal(scan.image, image)
    assert scan.notes == ("grey + alpha image: ignored the alpha channel",)


def test_grey_saved_as_rgb_uses_green():
    rgb = colour_image(3, contrast=(200, 200, 200))
    with pytest.warns(UserWarning, match="green channel"):
        scan = Scan.from_array(rgb, dpi=2400)
    assert scan.image.flags.c_contiguous  # an in-RAM colour image gives up its other channels


# ------------------------------------------------------------- Scan and from_array


def test_from_array_wraps_without_copying_and_leaves_the_callers_array_writable(tmp_path):
    image = make_image()
    scan = Scan.from_array(image, dpi=2400)
    assert np.shares_memory(scan.image, image)
    assert not scan.image.flags.writeable and image.flags.writeable
    assert (scan.path, scan.dpi_source, scan.notes) == (None, "argument", ())
    mapped = np.memmap(tmp_path / "raw", dtype=np.uint16, mode="w+", shape=SHAPE)
    mapped[:] = image
    assert isinstance(Scan.from_array(mapped, dpi=2400).image, np.memmap)


@pytest.mark.parametrize("shape", [(3, 96, 128), (96,), (96, 128, 5)])
def test_from_array_refuses_other_shapes(shape):
    with pytest.raises(ScanContentError, match="expected a greyscale image"):
        Scan.from_array(np.ones(shape, np.uint8), dpi=2400)


def test_scan_constructor_checks_that_fields_agree():
    image = make_image()
    Scan(image, 2418.0, (2400.0, 2436.0), None, 16, "argument")
    with pytest.raises(ParameterError, match="bit_depth"):
        Scan(image, 2400.0, (2400.0, 2400.0), None, 8, "argument")
    with pytest.raises(ParameterError, match="mean of dpi_xy"):
        Scan(image, 2400.0, (2400.0, 2436.0), None, 16, "argument")
    with pytest.raises(ScanContentError, match="2-D"):
        Scan(image[None], 2400.0, (2400.0, 2400.0), None, 16, "argument")


# --------------------------------------------------------------------- save_scan


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("a.tif", np.uint8), ("a.tiff", np.uint16), ("a.tif", np.float32),
     ("a.png", np.uint8), ("a.png", np.uint16)],
)
def test_save_scan_round_trips(tmp_path, name, dtype):
    image = make_image(dtype)
    save_scan(tmp_path / name, image, dpi=(2400, 2436))
    scan = load_scan(tmp_path / name)
    np.testing.assert_array_equal(scan.image, image)
    assert scan.dpi_xy == (2400.0, 2436.0)
    assert isinstance(scan.image, np.memmap) == name.endswith((".tif", ".tiff"))
    assert listing(tmp_path) == [name]  # no temporary file left behind


def test_save_scan_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "a.tif"
    path.write_bytes(b"precious")
    with pytest.raises(OutputError, match="already exists.*overwrite=True"):
        save_scan(path, make_image(), dpi=2400)
    assert path.read_bytes() == b"precious"
    save_scan(path, make_image(), dpi=2400, overwrite=True)
    np.testing.assert_array_equal(load_scan(path).image, make_image())


def test_save_scan_into_a_missing_folder_names_it(tmp_path):
    with pytest.raises(OutputError, match=f"folder {tmp_path / 'nowhere'} does not exist"):
        save_scan(tmp_path / "nowhere" / "a.tif", make_image(), dpi=2400)


def test_save_scan_refuses_unknown_formats_and_types(tmp_path):
    with pytest.raises(ParameterError, match=r"'\.jpg'.*\.tif, \.tiff, \.png"):
        save_scan(tmp_path / "a.jpg", make_image(), dpi=2400)
    with pytest.raises(ParameterError, match="PNG scans are"):
        save_scan(tmp_path / "a.png", make_image(np.float32), dpi=2400)
    with pytest.raises(ParameterError, match="got shape"):
        save_scan(tmp_path / "a.tif", colour_image(3), dpi=2400)
    assert listing(tmp_path) == []


def test_save_scan_failing_midway_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "a.tif"
    path.write_bytes(b"old scan")

    def disk_full(file, *args, **kwargs):
        with open(file, "wb") as out:
            out.write(b"II*\0 partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tifffile, "imwrite", disk_full)
    with pytest.raises(OutputError, match="No space left on device"):
        save_scan(path, make_image(), dpi=2400, overwrite=True)
    assert path.read_bytes() == b"old scan"
    assert listing(tmp_path) == ["a.tif"]


def test_save_scan_switches_to_bigtiff_for_large_images(tmp_path, monkeypatch):
    monkeypatch.setattr(gio.write, "_BIGTIFF_BYTES", 1000)  # instead of 2 GiB
    save_scan(tmp_path / "a.tif", make_image(), dpi=2400)
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        assert tif.is_bigtiff
    assert isinstance(load_scan(tmp_path / "a.tif").image, np.memmap)


# ------------------------------------------------------------ create_scan_memmap


def test_create_scan_memmap_writes_blocks_into_a_loadable_tiff(tmp_path):
    path = tmp_path / "render.tif"
    expected = make_image()
    with create_scan_memmap(path, shape=SHAPE, dtype=np.uint16, dpi=(2400, 2436)) as image:
        assert isinstance(image, np.memmap) and image.shape == SHAPE
        assert not path.exists()  # only the temporary file exists while rendering
        for start in range(0, SHAPE[0], 32):
            image[start : start + 32] = expected[start : start + 32]
    scan = load_scan(path)
    np.testing.assert_array_equal(scan.image, expected)
    assert scan.dpi_xy == (2400.0, 2436.0)
    assert listing(tmp_path) == ["render.tif"]


def test_create_scan_memmap_removes_everything_on_error(tmp_path):
    with pytest.raises(RuntimeError, match="renderer crashed"):
        with create_scan_memmap(tmp_path / "r.tif", shape=SHAPE, dtype=np.float32, dpi=2400) as im:
            im[:10] = 1.0
            raise RuntimeError("renderer crashed")
    assert listing(tmp_path) == []


def test_create_scan_memmap_refuses_existing_files_and_bad_requests(tmp_path):
    (tmp_path / "r.tif").write_bytes(b"keep")
    with pytest.raises(OutputError, match="already exists"):
        with create_scan_memmap(tmp_path / "r.tif", shape=SHAPE, dtype=np.uint8, dpi=2400):
            pass  # pragma: no cover
    with pytest.raises(ParameterError, match="writes TIFF"):
        with create_scan_memmap(tmp_path / "r.png", shape=SHAPE, dtype=np.uint8, dpi=2400):
            pass  # pragma: no cover
    with pytest.raises(ParameterError, match="need \\(rows, cols\\)"):
        with create_scan_memmap(tmp_path / "s.tif", shape=(10, 0), dtype=np.uint8, dpi=2400):
            pass  # pragma: no cover
    with pytest.raises(ParameterError, match="need \\(rows, cols\\)"):
        with create_scan_memmap(tmp_path / "s.tif", shape=SHAPE, dtype=np.int32, dpi=2400):
            pass  # pragma: no cover
    assert listing(tmp_path) == ["r.tif"]


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="no posix_fallocate")
def test_create_scan_memmap_reports_a_full_disk_before_rendering(tmp_path, monkeypatch):
    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(OutputError, match="No space left"):
        with create_scan_memmap(tmp_path / "r.tif", shape=SHAPE, dtype=np.uint8, dpi=2400):
            pass  # pragma: no cover
    assert listing(tmp_path) == []


# ------------------------------------------------------------------------- audio


def tone(n_samples=4800, *, peak=0.9):
    t = np.arange(n_samples) / 48_000
    return (peak * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


# Tolerance: libsndfile writes PCM with a scale of 2**(bits-1) - 1 and reads it back
# with 2**(bits-1): up to one step apart near full scale, plus half a step of rounding.
@pytest.mark.parametrize(
    ("name", "subtype", "stored", "step"),
    [
        ("a.wav", None, "FLOAT", 0.0),
        ("a.wav", "FLOAT", "FLOAT", 0.0),
        ("a.wav", "PCM_16", "PCM_16", 2.0**-15),
        ("a.wav", "pcm_24", "PCM_24", 2.0**-23),
        ("a.flac", None, "PCM_24", 2.0**-23),
        ("a.flac", "PCM_16", "PCM_16", 2.0**-15),
    ],
)
def test_write_audio_subtypes_round_trip(tmp_path, name, subtype, stored, step):
    audio = tone()
    write_audio(tmp_path / name, audio, sr=48_000, subtype=subtype)
    assert sf.info(str(tmp_path / name)).subtype == stored
    back, sr = read_audio(tmp_path / name)
    assert sr == 48_000 and back.dtype == np.float32 and back.shape == audio.shape
    np.testing.assert_allclose(back, audio, rtol=0, atol=1.5 * step + 1e-7)


def test_float_wav_keeps_peaks_above_full_scale(tmp_path):
    audio = tone(peak=3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no clipping warning: nothing is clipped
        write_audio(tmp_path / "a.wav", audio, sr=48_000)
    np.testing.assert_array_equal(read_audio(tmp_path / "a.wav")[0], audio)


def test_pcm_clips_peaks_above_full_scale_with_a_warning(tmp_path):
    audio = tone(peak=1.5)
    with pytest.warns(UserWarning, match=r"peaks at 1\.5.*clipped .* samples for PCM_24"):
        write_audio(tmp_path / "a.flac", audio, sr=48_000)
    back = read_audio(tmp_path / "a.flac")[0]
    assert np.max(np.abs(back)) <= 1.0
    quiet = np.abs(audio) <= 1.0  # untouched where it fitted
    np.testing.assert_allclose(back[quiet], audio[quiet], atol=2.0**-23)


def test_write_audio_stereo_and_read_audio_mixes_to_mono(tmp_path):
    left, right = tone(peak=0.2), tone(peak=0.6)
    write_audio(tmp_path / "s.wav", np.stack([left, right], axis=1), sr=44_100)
    with pytest.warns(UserWarning, match="2 channels mixed to mono"):
        mono, sr = read_audio(tmp_path / "s.wav")
    assert sr == 44_100
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(path="a.mp3"), r"'\.mp3'.*\.wav, \.flac"),
        (
            dict(path="a.flac", subtype="FLOAT"),
            "not available for FLAC; choose one of PCM_16, PCM_24",
        ),
        (dict(subtype="PCM_8"), "choose one of PCM_16, PCM_24, FLOAT"),
        (dict(audio=(tone() * 32767).astype(np.int16)), "floating point"),
        (dict(audio=np.r_[tone(), np.nan]), r"1 NaN or infinite sample\(s\)"),
        (dict(audio=np.stack([tone(), tone()])), r"shape \(samples,\) or \(samples, channels\)"),
        (dict(sr=44_100.5), "whole number"),
        (dict(sr=True), "whole number"),
        (dict(sr=100), "1000-768000"),
    ],
)
def test_write_audio_refuses_bad_requests(tmp_path, kwargs, match):
    call = dict(path="a.wav", audio=tone(), sr=48_000) | kwargs
    with pytest.raises(ParameterError, match=match):
        write_audio(tmp_path / call.pop("path"), call.pop("audio"), **call)
    assert listing(tmp_path) == []


def test_write_audio_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(b"earlier take")
    with pytest.raises(OutputError, match="already exists"):
        write_audio(path, tone(), sr=48_000)
    assert path.read_bytes() == b"earlier take"
    write_audio(path, tone(), sr=48_000, overwrite=True)
    assert sf.info(str(path)).frames == tone().size


def test_write_audio_into_a_missing_folder_names_it(tmp_path):
    with pytest.raises(OutputError, match=f"folder {tmp_path / 'out'} does not exist"):
        write_audio(tmp_path / "out" / "a.wav", tone(), sr=48_000)


def test_write_audio_disk_full_midway_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "a.flac"
    write_audio(path, tone(peak=0.5), sr=48_000)
    before = path.read_bytes()

    def disk_full(file, data, samplerate, **kwargs):
        with open(file, "wb") as out:
            out.write(b"fLaC" + bytes(100))  # part of a file, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sf, "write", disk_full)
    with pytest.raises(OutputError, match="No space left on device.*nothing was changed"):
        write_audio(path, tone(), sr=48_000, overwrite=True)
    assert path.read_bytes() == before
    assert listing(tmp_path) == ["a.flac"]


def test_read_audio_errors(tmp_path):
    with pytest.raises(AudioReadError, match="no such file"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("not audio at all\n")
    with pytest.raises(AudioReadError, match="not readable audio"):
        read_audio(tmp_path / "text.wav")


# ------------------------------------------------------------------------ fuzzing


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    image = make_image(shape=(72, 80), seed=5)
    writers = {
        "plain.tif": lambda p: write_tiff(p, image),
        "lzw.tif": lambda p: write_tiff(p, image, compression="lzw", rowsperstrip=8),
        "rgb.tif": lambda p: write_tiff(p, colour_image(3)),
        "a.png": lambda p: write_png(p, image),
        "a.jpg": lambda p: write_jpeg(p, image.astype(np.uint8), progressive=True),
    }
    return {name: write(folder / name).read_bytes() for name, write in writers.items()}


@st.composite
def damaged(draw, data: bytes) -> bytes:
    """``data`` with a few bytes overwritten and/or cut short."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del out[draw(st.integers(0, len(out) - 1)) :]
    return bytes(out)


@contextlib.contextmanager
def time_limit(seconds):
    """Turn a hang into a TimeoutError (where SIGALRM exists): the deadline below only
    judges examples that finish."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"load_scan took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_FUZZ_COUNTER = iter(range(10**9))


@pytest.mark.parametrize("seed_name", ["plain.tif", "lzw.tif", "rgb.tif", "a.png", "a.jpg"])
@settings(
    max_examples=150,
    deadline=timedelta(seconds=2),  # each example takes a few ms; 2 s means trouble
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples on every run: no flaky CI
)
@given(data=st.data(), dpi=st.sampled_from([None, 2400]))
def test_damaged_files_load_or_raise_a_groovescan_error(
    tmp_path, seed_files, seed_name, data, dpi
):
    content = data.draw(damaged(seed_files[seed_name]))
    path = tmp_path / f"{next(_FUZZ_COUNTER)}{os.path.splitext(seed_name)[1]}"
    path.write_bytes(content)  # a fresh file each time: earlier scans may still map theirs
    try:
        with warnings.catch_warnings(), time_limit(10):
            warnings.simplefilter("ignore")
            scan = load_scan(path, dpi=dpi)
    except GroovescanError:
        return
    assert isinstance(scan, Scan) and scan.image.ndim == 2
    assert min(scan.shape) >= gio.MIN_SIDE_PX
    np.asarray(scan.image).sum()  # every pixel readable (no SIGBUS from a bad mapping)
