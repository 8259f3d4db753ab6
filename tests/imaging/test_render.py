"""Decoding, presentation pipeline and encoding for WADO-RS rendered, thumbnail and frames."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import generate_frames, get_frame
from pydicom.pixels import apply_color_lut, pixel_array

from concilium.imaging import render
from concilium.imaging.render import RenderError, Viewport, Window

Sample = Callable[[str], Path]

# Every compressed sample pydicom ships, grouped by codec.
COMPRESSED = [
    # JPEG baseline (process 1): RGB, YBR_FULL, YBR_FULL_422, multi-frame, odd size
    "SC_jpeg_no_color_transform.dcm",
    "SC_jpeg_no_color_transform_2.dcm",
    "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm",
    "SC_rgb_dcmtk_+eb+cy+n2.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",
    "SC_rgb_dcmtk_+eb+cy+s4.dcm",
    "SC_rgb_jpeg_app14_dcmd.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "SC_rgb_small_odd_jpeg.dcm",
    "examples_ybr_color.dcm",
    # JPEG extended (process 2 and 4), 12-bit
    "JPGExtended.dcm",
    # JPEG lossless (process 14, selection value 1)
    "SC_rgb_jpeg_gdcm.dcm",
    # JPEG-LS lossless and near-lossless
    "MR_small_jpeg_ls_lossless.dcm",
    "JPEGLSNearLossless_08.dcm",
    "JPEGLSNearLossless_16.dcm",
    "SC_rgb_jls_lossy_line.dcm",
    "SC_rgb_jls_lossy_sample.dcm",
    # JPEG 2000 lossless and irreversible
    "693_J2KI.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "JPEG2000.dcm",
    "MR_small_jp2klossless.dcm",
    "SC_rgb_gdcm_KY.dcm",
    "examples_jpeg2k.dcm",
    # RLE lossless: 8, 16 and 32 bits, grey and colour, multi-frame
    "MR_small_RLE.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_rle_32bit.dcm",
    "SC_rgb_rle_32bit_2frame.dcm",
    "rtdose_rle.dcm",
    "rtdose_rle_1frame.dcm",
]
# Samples no installed decoder can read (12-bit lossy JPEG, a broken offset table, a
# codestream cut by a stray delimiter): they must fail cleanly, not crash.
UNDECODABLE = [
    "JPEG-lossy.dcm",
    "SC_rgb_jpeg.dcm",
    "JPEG2000-embedded-sequence-delimiter.dcm",
]


def _reference_pixels(ds: pydicom.Dataset) -> np.ndarray:
    # Decoders differ by a level or two in YBR to RGB conversion: compare with the one
    # the renderer tries first.
    plugin = "pylibjpeg" if ds.file_meta.TransferSyntaxUID.is_compressed else ""
    return pixel_array(ds, index=0, decoding_plugin=plugin)


def _expected(path: Path, window: Window | None) -> np.ndarray:
    """Independent reference: straight numpy over pydicom's own decoding."""
    ds = pydicom.dcmread(path)
    arr = _reference_pixels(ds)
    if ds.SamplesPerPixel == 3:
        bits = int(ds.BitsStored)
        return np.clip(np.rint(arr * (255.0 / (2**bits - 1))), 0, 255).astype(np.uint8)
    values = arr * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    assert window is not None
    low = window.center - window.width / 2
    out = np.clip((values - low) / window.width * 255.0, 0, 255)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = 255 - out
    return out


def _decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize("name", COMPRESSED)
def test_compressed_samples_render_to_png_and_jpeg_matching_decoded_pixels(
    sample: Sample, name: str
) -> None:
    path = sample(name)
    ds = pydicom.dcmread(path)
    window = None
    if ds.SamplesPerPixel == 1:
        values = _reference_pixels(ds) * float(ds.get("RescaleSlope", 1)) + float(
            ds.get("RescaleIntercept", 0)
        )
        low, high = float(values.min()), float(values.max())
        window = Window((low + high) / 2, max(high - low, 2.0))
    expected = _expected(path, window).astype(np.float64)

    png = _decode_png(render.render(path, media_type="image/png", window=window))
    assert png.shape == expected.shape
    assert np.abs(png - expected).max() <= 1.5

    jpeg = Image.open(io.BytesIO(render.render(path, window=window, quality=95)))
    assert jpeg.format == "JPEG"
    jpeg_pixels = np.asarray(jpeg).astype(np.float64)
    assert np.abs(jpeg_pixels - expected).mean() < 4.0


@pytest.mark.filterwarnings("ignore:Expected explicit VR")
@pytest.mark.parametrize("name", UNDECODABLE)
def test_undecodable_samples_raise_render_error(sample: Sample, name: str) -> None:
    with pytest.raises(RenderError):
        render.render(sample(name))


def test_lossless_codecs_decode_to_the_uncompressed_pixels(sample: Sample) -> None:
    reference = render.decode_frame(sample("MR_small.dcm"))
    for name in ("MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"):
        assert np.array_equal(render.decode_frame(sample(name)), reference), name
    big_endian = render.decode_frame(sample("MR_small_bigendian.dcm"))
    assert np.array_equal(big_endian, reference)


def test_ct_modality_lut_and_default_window(ct_series: list[Path]) -> None:
    image = render.render_frame(ct_series[0])  # stored window: centre 40, width 400 HU
    ds = pydicom.dcmread(ct_series[0])
    hu = render.decode_frame(ds).astype(float) - 1024
    assert image[hu < -200].max() == 0  # air and lung are black
    assert image[hu > 300].min() == 255  # bone is white
    soft = (hu > 20) & (hu < 60)
    assert 120 <= image[soft].mean() <= 145


def test_window_from_request_overrides_dataset(ct_series: list[Path]) -> None:
    lung = render.render_frame(ct_series[0], window=Window(-600, 1500))
    ds = pydicom.dcmread(ct_series[0])
    hu = render.decode_frame(ds).astype(float) - 1024
    lung_tissue = (hu > -900) & (hu < -800)
    assert 40 < lung[lung_tissue].mean() < 90


def test_default_window_spans_data_range_without_stored_window(sample: Sample) -> None:
    ds = pydicom.dcmread(sample("MR_small.dcm"))
    for keyword in ("WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)
    image = render.render_frame(ds)
    assert image.min() == 0 and image.max() == 255


def test_monochrome1_is_inverted(sample: Sample) -> None:
    ds = pydicom.dcmread(sample("MR_small.dcm"))
    window = Window(1000, 2000)
    normal = render.render_frame(ds, window=window).astype(int)
    ds.PhotometricInterpretation = "MONOCHROME1"
    inverted = render.render_frame(ds, window=window).astype(int)
    assert np.array_equal(inverted, 255 - normal)


def test_voi_functions() -> None:
    values = np.array([-1000.0, 39.5, 40.0, 1000.0])
    linear = render.apply_voi(values, Window(40, 400))
    assert linear[0] == 0 and linear[-1] == 255 and 126 <= linear[1] <= 129
    sigmoid = render.apply_voi(values, Window(40, 400, "SIGMOID"))
    assert sigmoid[2] == 128
    exact = render.apply_voi(np.array([40.0, 240.0]), Window(40, 400, "LINEAR_EXACT"))
    assert list(exact) == [128, 255]


def test_palette_color_goes_through_its_lookup_tables(sample: Sample) -> None:
    path = sample("examples_palette.dcm")
    ds = pydicom.dcmread(path)
    expected = apply_color_lut(ds.pixel_array, ds) / 257.0
    image = render.render_frame(path)
    assert image.shape == (*ds.pixel_array.shape, 3)
    assert np.abs(image - expected).max() <= 1.0


def test_viewport_fits_preserving_aspect_ratio(sample: Sample) -> None:
    path = sample("JPEG2000.dcm")  # 1024 rows x 256 columns
    image = render.render_frame(path, viewport=Viewport(128, 128))
    assert image.shape == (128, 32)
    cropped = render.render_frame(path, viewport=Viewport(100, 100, (0, 0, 256, 256)))
    assert cropped.shape == (100, 100)
    thumb = Image.open(io.BytesIO(render.thumbnail(path, size=64)))
    assert thumb.size == (16, 64)


def test_query_parameter_parsing() -> None:
    assert render.parse_window("40,400") == Window(40, 400)
    assert render.parse_window("0,100,sigmoid").function == "SIGMOID"
    assert render.parse_viewport("512,256") == Viewport(512, 256)
    assert render.parse_viewport("64,64,10,20,30,40").region == (10, 20, 30, 40)
    for bad in ("40", "a,b", "0,0", "1,1,cubic"):
        with pytest.raises(RenderError):
            render.parse_window(bad)
    with pytest.raises(RenderError):
        render.parse_viewport("0,10")


def test_unsupported_media_type_and_frame_out_of_range(sample: Sample) -> None:
    path = sample("MR_small.dcm")
    with pytest.raises(RenderError):
        render.render(path, media_type="image/bmp")
    with pytest.raises(RenderError):
        render.render(path, index=1)


def test_cine_frames_render_individually(xa_cine: Path) -> None:
    first = render.render_frame(xa_cine, 0, window=Window(128, 256))
    last = render.render_frame(xa_cine, 29, window=Window(128, 256))
    full = pydicom.dcmread(xa_cine).pixel_array
    assert np.abs(first.astype(int) - full[0]).max() <= 1
    assert np.abs(last.astype(int) - full[29]).max() <= 1
    assert not np.array_equal(first, last)


def test_raw_frames_of_native_multiframe_are_sliced_from_the_file(xa_cine: Path) -> None:
    full = pydicom.dcmread(xa_cine).pixel_array
    for index in (0, 7, 29):
        frame = render.extract_frame(xa_cine, index)
        assert frame.transfer_syntax_uid == "1.2.840.10008.1.2.1"
        assert frame.data == full[index].tobytes()
    with pytest.raises(RenderError):
        render.extract_frame(xa_cine, 30)


@pytest.mark.parametrize("name", ["examples_ybr_color.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm"])
def test_raw_frames_of_encapsulated_data_are_the_codestreams(sample: Sample, name: str) -> None:
    path = sample(name)
    ds = pydicom.dcmread(path)
    frames = list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1))))
    for index in {0, len(frames) - 1}:
        raw = render.extract_frame(path, index)
        assert raw.data == frames[index]
        assert raw.transfer_syntax_uid == ds.file_meta.TransferSyntaxUID


def test_frames_as_explicit_little_endian(sample: Sample) -> None:
    reference = pydicom.dcmread(sample("MR_small.dcm")).PixelData
    for name in ("MR_small_bigendian.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"):
        frame = render.frame_as_explicit_vr_little_endian(sample(name))
        assert frame.transfer_syntax_uid == "1.2.840.10008.1.2.1"
        assert frame.data == reference, name
    color = render.frame_as_explicit_vr_little_endian(sample("SC_rgb_rle.dcm"))
    assert color.data == pydicom.dcmread(sample("SC_rgb_rle.dcm")).pixel_array.tobytes()


def test_frames_located_by_extended_offset_table(xa_cine: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(xa_cine)
    original = ds.pixel_array
    ds.compress(pydicom.uid.RLELossless, encapsulate_ext=True)
    assert "ExtendedOffsetTable" in ds
    path = tmp_path / "xa_rle.dcm"
    ds.save_as(path, enforce_file_format=True)
    raw = render.extract_frame(path, 17)
    assert raw.transfer_syntax_uid == pydicom.uid.RLELossless
    offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    assert raw.data == get_frame(ds.PixelData, 17, extended_offsets=offsets)
    assert np.array_equal(render.decode_frame(path, 17), original[17])
    native = render.frame_as_explicit_vr_little_endian(path, 17)
    assert native.data == original[17].tobytes()


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    "name", ["SC_rgb_jpeg_dcmtk.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "JPGExtended.dcm"]
)
def test_corrupt_pixel_data_ends_in_render_error(sample: Sample, tmp_path: Path, name: str) -> None:
    rng = random.Random(name)
    data = sample(name).read_bytes()
    path = tmp_path / "corrupt.dcm"
    outcomes = set()
    for _ in range(25):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 20)):
            mutated[rng.randrange(len(data) - min(2000, len(data) // 2), len(data))] = (
                rng.randrange(256)
            )
        path.write_bytes(bytes(mutated))
        for operation in (
            render.render,
            render.extract_frame,
            render.frame_as_explicit_vr_little_endian,
        ):
            try:
                operation(path)
                outcomes.add("ok")
            except RenderError:
                outcomes.add("refused")
    assert outcomes <= {"ok", "refused"}


# --------------------------------------------------------------------------------------------
# Whole instances decompressed (WADO-RS transfer-syntax, PS3.18 8.7.3.5.2)

EXPLICIT = "1.2.840.10008.1.2.1"


@pytest.mark.parametrize("target", sorted(render.UNCOMPRESSED_SYNTAXES))
@pytest.mark.parametrize("name", [*COMPRESSED, "MR_small_bigendian.dcm", "image_dfl.dcm"])
def test_transcoding_keeps_the_instance_and_its_decoded_pixels(
    sample: Sample, name: str, target: str
) -> None:
    path = sample(name)
    original = pydicom.dcmread(path)
    plugin = "pylibjpeg" if original.file_meta.TransferSyntaxUID.is_compressed else ""
    expected = pixel_array(original, decoding_plugin=plugin)
    ds = pydicom.dcmread(io.BytesIO(render.transcode(path, target)))
    assert ds.file_meta.TransferSyntaxUID == target
    assert "PixelData" in ds and not ds.file_meta.TransferSyntaxUID.is_encapsulated
    assert ds.SOPInstanceUID == original.SOPInstanceUID
    assert np.array_equal(ds.pixel_array, expected)


def test_a_big_endian_object_comes_out_as_its_little_endian_twin(sample: Sample) -> None:
    twin = pydicom.dcmread(sample("MR_small.dcm"))
    ds = pydicom.dcmread(io.BytesIO(render.transcode(sample("MR_small_bigendian.dcm"), EXPLICIT)))
    assert ds.PixelData == twin.PixelData
    assert ds.Rows == twin.Rows and ds.WindowCenter == twin.WindowCenter


@pytest.mark.filterwarnings("ignore:Expected explicit VR")
@pytest.mark.parametrize("name", UNDECODABLE)
def test_an_undecodable_instance_is_not_transcoded(sample: Sample, name: str) -> None:
    with pytest.raises(RenderError):
        render.transcode(sample(name), EXPLICIT)


def test_only_uncompressed_little_endian_targets_are_produced(sample: Sample) -> None:
    jpeg = "1.2.840.10008.1.2.4.50"
    assert render.can_transcode(jpeg, EXPLICIT)
    assert render.can_transcode("1.2.840.10008.1.2.2", "1.2.840.10008.1.2")
    assert not render.can_transcode(EXPLICIT, jpeg)  # lossy
    assert not render.can_transcode(jpeg, "1.2.840.10008.1.2.4.80")  # another codec
    assert not render.can_transcode("1.2.840.10008.1.2.4.100", EXPLICIT)  # MPEG-2: no decoder
    with pytest.raises(RenderError):
        render.transcode(sample("CT_small.dcm"), jpeg)
