"""Frame decoding, presentation and encoding for WADO-RS ``rendered``, ``thumbnail`` and ``frames``.

The grayscale pipeline follows PS3.3 C.11 / PS3.4 Figure N.2-1: stored values → Modality LUT
(Rescale Slope/Intercept, C.11.1) → VOI LUT (Window Center/Width, C.11.2.1.2, with the
LINEAR, LINEAR_EXACT and SIGMOID functions) → Presentation LUT (MONOCHROME1 inverted).
Colour images are decoded to RGB; PALETTE COLOR goes through its lookup tables (C.7.6.3.1.5).
The result is scaled into the requested viewport and encoded as JPEG or PNG, the media types
of PS3.18 8.7.4 (rendered media types). Query parameters ``window`` and ``viewport`` are
parsed as PS3.18 8.3.5.1.

Decompression of JPEG (baseline, extended, lossless), JPEG-LS, JPEG 2000 and RLE uses
pydicom's pixel data handlers backed by pylibjpeg and GDCM. Raw frames for WADO-RS ``frames``
(PS3.18 8.7.2) are read straight from the file in their stored transfer syntax, or decoded
to Explicit VR Little Endian on request; whole instances are transcoded the same way to the
uncompressed little endian transfer syntaxes (PS3.18 8.7.3.5.2, `transcode`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import pydicom
from PIL import Image
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_color_lut
from pydicom.pixels.processing import apply_modality_lut as _pydicom_modality_lut
from pydicom.pixels.utils import pack_bits, pixel_array
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from concilium.platform.i18n import _

__all__ = [
    "DECODING_PLUGINS",
    "MEDIA_TYPES",
    "UNCOMPRESSED_SYNTAXES",
    "Busy",
    "RawFrame",
    "RenderError",
    "RenderLimits",
    "Renderer",
    "TooLarge",
    "Viewport",
    "Window",
    "apply_modality_lut",
    "apply_voi",
    "can_transcode",
    "decode_frame",
    "default_window",
    "encode_image",
    "extract_frame",
    "frame_as_explicit_vr_little_endian",
    "number_of_frames",
    "parse_viewport",
    "parse_window",
    "render",
    "render_frame",
    "thumbnail",
    "transcode",
]

Source = Dataset | Path | str
_T = TypeVar("_T")
Image8 = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float64]
VoiFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]

#: Rendered media types supported, with the Pillow format that writes them.
MEDIA_TYPES: dict[str, str] = {"image/jpeg": "JPEG", "image/png": "PNG"}
_UNDEFINED_LENGTH = 0xFFFFFFFF
#: pydicom decoding plugins tried, in order, for compressed transfer syntaxes. pylibjpeg
#: covers JPEG (all processes but 12-bit lossy), JPEG-LS, JPEG 2000 and RLE. GDCM is left
#: out by default: on some corrupt JPEG streams it aborts the whole process from C++
#: (std::terminate), which no Python handler can catch; pass ("gdcm",) explicitly for
#: trusted objects that only it decodes.
DECODING_PLUGINS: tuple[str, ...] = ("pylibjpeg", "pydicom", "pillow")
_NOT_DECODER_FAILURES = (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError)


class RenderError(ValueError):
    """The request cannot be rendered (bad parameters, frame out of range, no pixels)."""


@dataclass(frozen=True, slots=True)
class Window:
    """A VOI window (PS3.3 C.11.2.1.2)."""

    center: float
    """Window Center (0028,1050), in modality (rescaled) units."""
    width: float
    """Window Width (0028,1051); at least 1 for LINEAR, above 0 otherwise."""
    function: VoiFunction = "LINEAR"
    """VOI LUT Function (0028,1056)."""

    def __post_init__(self) -> None:
        if self.function == "LINEAR" and self.width < 1:
            raise RenderError(_("LINEAR window width must be at least 1"))
        if self.width <= 0:
            raise RenderError(_("window width must be positive"))


@dataclass(frozen=True, slots=True)
class Viewport:
    """A rendering viewport (PS3.18 8.3.5.1.3): fit the (optional) source region into it."""

    width: int
    """Viewport width in pixels."""
    height: int
    """Viewport height in pixels."""
    region: tuple[int, int, int, int] | None = None
    """Source region ``(x, y, width, height)`` in image pixels, or the whole image."""

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise RenderError(_("viewport dimensions must be positive"))
        if self.region is not None and (self.region[2] <= 0 or self.region[3] <= 0):
            raise RenderError(_("viewport source region must have a positive size"))


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One frame's pixel data as sent by WADO-RS ``frames``."""

    data: bytes
    """Frame bytes: one compressed codestream, or native little endian samples."""
    transfer_syntax_uid: str
    """Transfer syntax of `data`, for the part's ``transfer-syntax`` parameter."""


def parse_window(value: str) -> Window:
    """Parse the ``window=center,width,function`` query parameter (PS3.18 8.3.5.1.4)."""
    fields = [f.strip() for f in value.split(",")]
    if len(fields) not in (2, 3):
        raise RenderError(_("window must be center,width[,function]"))
    try:
        center, width = float(fields[0]), float(fields[1])
    except ValueError as exc:
        raise RenderError(_("window values must be numbers: %(value)r") % {"value": value}) from exc
    function = fields[2].upper().replace("-", "_") if len(fields) == 3 else "LINEAR"
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        raise RenderError(_("unknown VOI LUT function %(fields)r") % {"fields": fields[2]})
    return Window(center, width, function)  # type: ignore[arg-type]


def parse_viewport(value: str) -> Viewport:
    """Parse the ``viewport=vw,vh[,sx,sy,sw,sh]`` query parameter (PS3.18 8.3.5.1.3)."""
    try:
        numbers = [int(float(v)) for v in value.split(",")]
    except ValueError as exc:
        raise RenderError(
            _("viewport values must be numbers: %(value)r") % {"value": value}
        ) from exc
    if len(numbers) == 2:
        return Viewport(numbers[0], numbers[1])
    if len(numbers) == 6:
        sx, sy, sw, sh = numbers[2:]
        return Viewport(numbers[0], numbers[1], (sx, sy, sw, sh))
    raise RenderError(_("viewport must be vw,vh or vw,vh,sx,sy,sw,sh"))


# --------------------------------------------------------------------------------------------
# Decoding


def _guarded(func: Callable[..., _T], *args: Any) -> _T:
    # Stored objects passed validation, yet a damaged header or codestream must still end
    # in RenderError for the adapter, never in an arbitrary exception. File system errors
    # are the storage layer's business and pass through.
    try:
        return func(*args)
    except (RenderError, OSError):
        raise
    except Exception as exc:
        raise RenderError(_("cannot process pixel data: %(exc)s") % {"exc": exc}) from exc


def _header(source: Source) -> Dataset:
    if isinstance(source, Dataset):
        return source
    try:
        return pydicom.dcmread(source, stop_before_pixels=True)
    except OSError:
        raise
    except Exception as exc:
        raise RenderError(_("not a readable DICOM file: %(exc)s") % {"exc": exc}) from exc


def number_of_frames(ds: Dataset) -> int:
    """Number of Frames (0028,0008), 1 when absent."""
    value = ds.get("NumberOfFrames")
    try:
        return max(int(value), 1) if value not in (None, "") else 1
    except (TypeError, ValueError):
        return 1


def _check_index(ds: Dataset, index: int) -> None:
    if "Rows" not in ds or "Columns" not in ds:
        raise RenderError(_("instance has no pixel data"))
    if not 0 <= index < number_of_frames(ds):
        raise RenderError(_("frame index %(index)s out of range") % {"index": index})


def decode_frame(
    source: Source, index: int = 0, *, plugins: tuple[str, ...] = DECODING_PLUGINS
) -> npt.NDArray[Any]:
    """Decode one frame (0-based) to stored values; colour comes out as RGB.

    Given a path, only that frame is read and decompressed. Compressed data are tried with
    each of `plugins` (pydicom decoding plugin names) in turn.
    """
    return _decode(source, _header(source), index, plugins)


def _decode(
    source: Source, header: Dataset, index: int, plugins: tuple[str, ...]
) -> npt.NDArray[Any]:
    _check_index(header, index)
    src: Any = source if isinstance(source, Dataset) else str(source)
    meta = getattr(header, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        # Frame offsets cannot be found in a deflated stream: inflate the whole data set.
        src = pydicom.dcmread(src) if isinstance(src, str) else src
    transfer_syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if transfer_syntax is None or not UID(str(transfer_syntax)).is_compressed:
        candidates: tuple[str, ...] = ("",)
    else:
        candidates = plugins
    return _with_first_decoder(
        candidates,
        lambda plugin: pixel_array(src, index=index, decoding_plugin=plugin),
        f"cannot decode frame {index}",
    )


def _with_first_decoder(plugins: tuple[str, ...], decode: Callable[[str], _T], what: str) -> _T:
    """``decode`` with the first of ``plugins`` that succeeds ("" is pydicom's native)."""
    failures: list[str] = []
    for plugin in plugins:
        try:
            return decode(plugin)
        except _NOT_DECODER_FAILURES:
            raise
        except BaseException as exc:
            # Decoder plugins report corrupt codestreams with their own exception types, and
            # Rust-based ones (pylibjpeg-rle) panic with a BaseException; the WADO-RS adapter
            # needs one error to answer with, not a crash.
            failures.append(f"{plugin or 'native'}: {exc}")
    raise RenderError(f"{what}: " + "; ".join(failures))


def _functional_group_item(ds: Dataset, index: int, sequence: str) -> Dataset | None:
    # Enhanced multi-frame objects (PS3.3 C.7.6.16) carry per-frame values in functional
    # groups; the per-frame item wins over the shared one.
    for container, position in (
        ("PerFrameFunctionalGroupsSequence", index),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        groups = ds.get(container)
        if groups and len(groups) > position:
            items = groups[position].get(sequence)
            if items:
                return items[0]  # type: ignore[no-any-return]
    return None


def apply_modality_lut(arr: npt.NDArray[Any], ds: Dataset, index: int = 0) -> FloatArray:
    """Stored values to modality values (PS3.3 C.11.1): Rescale Slope/Intercept or LUT."""
    item = _functional_group_item(ds, index, "PixelValueTransformationSequence") or ds
    if "ModalityLUTSequence" in ds:
        return np.asarray(_pydicom_modality_lut(arr, ds), dtype=np.float64)
    slope = float(item.get("RescaleSlope", 1) or 1)
    intercept = float(item.get("RescaleIntercept", 0) or 0)
    values = arr.astype(np.float64)
    if slope != 1.0:
        values *= slope
    if intercept != 0.0:
        values += intercept
    return values


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, pydicom.multival.MultiValue | list | tuple):
        return float(value[0]) if len(value) else None
    return float(value)


def default_window(ds: Dataset, values: FloatArray, index: int = 0) -> Window:
    """The first window stored in the object (C.11.2), else the full range of `values`."""
    item = _functional_group_item(ds, index, "FrameVOILUTSequence") or ds
    center, width = _first(item.get("WindowCenter")), _first(item.get("WindowWidth"))
    function = str(item.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
    if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        function = "LINEAR"
    if center is not None and width is not None and width >= 1:
        return Window(center, width, function)  # type: ignore[arg-type]
    low, high = float(values.min()), float(values.max())
    return Window((low + high + 1) / 2, max(high - low + 1, 1.0))


def apply_voi(values: FloatArray, window: Window) -> Image8:
    """Map modality values to 0..255 through the VOI LUT function (PS3.3 C.11.2.1.2)."""
    c, w = window.center, window.width
    if window.function == "LINEAR":
        scaled = ((values - (c - 0.5)) / (w - 1) + 0.5) if w > 1 else (values > c - 0.5) * 1.0
        lower = values <= c - 0.5 - (w - 1) / 2
        upper = values > c - 0.5 + (w - 1) / 2
        scaled = np.where(lower, 0.0, np.where(upper, 1.0, scaled))
    elif window.function == "LINEAR_EXACT":
        scaled = (values - c) / w + 0.5
    else:
        scaled = 1.0 / (1.0 + np.exp(-4.0 * (values - c) / w))
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def _color_to_8bit(arr: npt.NDArray[Any], bits: int) -> Image8:
    if arr.dtype == np.uint8 and bits <= 8:
        return arr
    scale = 255.0 / float((1 << bits) - 1)
    return np.clip(np.rint(arr.astype(np.float64) * scale), 0, 255).astype(np.uint8)


def render_frame(
    source: Source,
    index: int = 0,
    *,
    window: Window | None = None,
    viewport: Viewport | None = None,
) -> Image8:
    """Presentation-ready 8-bit image of one frame: HxW grayscale or HxWx3 RGB."""
    return _guarded(_render_frame, source, index, window, viewport)


def _render_frame(
    source: Source, index: int, window: Window | None, viewport: Viewport | None
) -> Image8:
    header = _header(source)
    arr = _decode(source, header, index, DECODING_PLUGINS)
    photometric = str(header.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(header.get("SamplesPerPixel", 1) or 1)
    image: Image8
    if photometric == "PALETTE COLOR":
        rgb = np.asarray(apply_color_lut(arr, header))
        bits = 16 if rgb.dtype.itemsize > 1 else 8
        image = _color_to_8bit(rgb, bits)
    elif samples == 3 or arr.ndim == 3:
        image = _color_to_8bit(arr, int(header.get("BitsStored", 8) or 8))
    else:
        values = apply_modality_lut(arr, header, index)
        image = apply_voi(values, window or default_window(header, values, index))
        if photometric == "MONOCHROME1":
            # MONOCHROME1 displays the minimum as white (PS3.3 C.7.6.3.1.2).
            image = 255 - image
    if viewport is not None:
        image = _fit_viewport(image, viewport)
    return image


def _fit_viewport(image: Image8, viewport: Viewport) -> Image8:
    if viewport.region is not None:
        x, y, w, h = viewport.region
        image = image[max(y, 0) : y + h, max(x, 0) : x + w]
        if image.size == 0:
            raise RenderError(_("viewport source region lies outside the image"))
    rows, cols = image.shape[:2]
    scale = min(viewport.width / cols, viewport.height / rows)
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    if size == (cols, rows):
        return image
    resized = Image.fromarray(image).resize(size, Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def encode_image(image: Image8, media_type: str = "image/jpeg", *, quality: int = 90) -> bytes:
    """Encode a rendered image in one of `MEDIA_TYPES` (PS3.18 8.7.4)."""
    fmt = MEDIA_TYPES.get(media_type.lower())
    if fmt is None:
        raise RenderError(
            _("unsupported rendered media type %(media_type)r") % {"media_type": media_type}
        )
    if not 1 <= quality <= 100:
        raise RenderError(_("quality must be between 1 and 100"))
    out = io.BytesIO()
    pil = Image.fromarray(image)
    if fmt == "JPEG":
        # 4:4:4 sampling: chroma subsampling smears colour overlays and small images.
        pil.save(out, format=fmt, quality=quality, subsampling=0)
    else:
        pil.save(out, format=fmt)
    return out.getvalue()


class TooLarge(RenderError):
    """The rendering asked for, or the frame it would decode, is beyond `RenderLimits`."""


class Busy(RenderError):
    """No decoding slot freed in time (`Renderer`)."""


@dataclass(frozen=True)
class RenderLimits:
    """What one rendering may cost, checked before anything is decoded."""

    max_output_pixels: int = 4096 * 4096
    """Largest image produced (viewport, or the frame's own size without one)."""
    max_decoded_bytes: int = 256 * 1024**2
    """Largest decoded frame, as its header declares it (every frame when deflated)."""

    def check(self, header: Dataset, index: int, viewport: Viewport | None) -> None:
        """Raise `TooLarge` when rendering frame ``index`` of ``header`` into ``viewport``
        would go beyond the limits; the declared sizes are trusted no further than that."""
        _check_index(header, index)
        rows, columns = _positive(header, "Rows"), _positive(header, "Columns")
        output = viewport.width * viewport.height if viewport is not None else rows * columns
        if output > self.max_output_pixels:
            raise TooLarge(
                f"the rendered image would have {output} pixels; at most "
                f"{self.max_output_pixels} are rendered"
            )
        self.check_frame(header, index)

    def check_frame(self, header: Dataset, index: int) -> None:
        """Raise `TooLarge` when decoding frame ``index`` of ``header`` would go beyond
        ``max_decoded_bytes`` (every frame counted when the object is deflated)."""
        _check_index(header, index)
        samples = _positive(header, "SamplesPerPixel", 1)
        sample_bytes = math.ceil(_positive(header, "BitsAllocated", 8) / 8)
        decoded = _positive(header, "Rows") * _positive(header, "Columns") * samples * sample_bytes
        meta = getattr(header, "file_meta", None)
        if meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
            decoded *= number_of_frames(header)
        if decoded > self.max_decoded_bytes:
            raise TooLarge(
                f"the frame would take {decoded} bytes decoded; at most "
                f"{self.max_decoded_bytes} are decoded at once"
            )

    def check_object(self, header: Dataset) -> None:
        """Raise `TooLarge` when decoding every frame of ``header`` (a transcoding) would go
        beyond ``max_decoded_bytes``; an object without pixel data passes."""
        if "Rows" not in header or "Columns" not in header:
            return
        decoded = (
            _positive(header, "Rows")
            * _positive(header, "Columns")
            * _positive(header, "SamplesPerPixel", 1)
            * math.ceil(_positive(header, "BitsAllocated", 8) / 8)
            * number_of_frames(header)
        )
        if decoded > self.max_decoded_bytes:
            raise TooLarge(
                f"the object would take {decoded} bytes decoded; at most "
                f"{self.max_decoded_bytes} are decoded to transcode it"
            )


def _positive(header: Dataset, keyword: str, default: int | None = None) -> int:
    value = header.get(keyword, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0:
        raise RenderError(_("%(keyword)s must be a positive number") % {"keyword": keyword})
    return number


class Renderer:
    """Renders frames within `RenderLimits`, at most ``concurrency`` decodes at once in the
    process: a request beyond the limits is refused before decoding, and many readers at
    once queue rather than hold many frames in memory together."""

    def __init__(
        self, limits: RenderLimits, concurrency: int = 2, wait_seconds: float = 30.0
    ) -> None:
        self.limits = limits
        self._slots = threading.BoundedSemaphore(concurrency)
        self._wait = wait_seconds

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        """Hold one of the process's decoding slots; `Busy` when none frees in time."""
        if not self._slots.acquire(timeout=self._wait):
            raise Busy(_("too many decodings at once; try again shortly"))
        try:
            yield
        finally:
            self._slots.release()

    def render(
        self,
        source: Path | str,
        index: int = 0,
        *,
        media_type: str = "image/jpeg",
        window: Window | None = None,
        viewport: Viewport | None = None,
        quality: int = 90,
    ) -> bytes:
        """As `render`, once `RenderLimits.check` passed and a decoding slot is free.

        Raises `TooLarge`, `Busy` (no slot within ``wait_seconds``) or `RenderError`.
        """
        self.limits.check(_header(source), index, viewport)
        with self._slot():
            return render(
                source,
                index,
                media_type=media_type,
                window=window,
                viewport=viewport,
                quality=quality,
            )

    def decoded_frame(self, path: Path | str, index: int = 0) -> RawFrame:
        """As `frame_as_explicit_vr_little_endian`, once `RenderLimits.check_frame` passed and
        a decoding slot is free."""
        self.limits.check_frame(_header(path), index)
        with self._slot():
            return frame_as_explicit_vr_little_endian(path, index)

    def check_transcoding(self, path: Path | str) -> None:
        """Raise `TooLarge` when transcoding ``path`` would decode more than the limits allow
        (only encapsulated pixel data are decoded to be transcoded)."""
        header = _header(path)
        meta = getattr(header, "file_meta", None)
        stored = meta.get("TransferSyntaxUID") if meta is not None else None
        if stored is not None and UID(str(stored)).is_encapsulated:
            self.limits.check_object(header)

    def transcode(self, path: Path | str, target: str) -> bytes:
        """As `transcode`, once `RenderLimits.check_object` passed and a decoding slot is
        free, when the stored pixel data must be decoded (an encapsulated syntax)."""
        header = _header(path)
        meta = getattr(header, "file_meta", None)
        stored = meta.get("TransferSyntaxUID") if meta is not None else None
        if stored is None or not UID(str(stored)).is_encapsulated:
            return transcode(path, target)
        self.limits.check_object(header)
        with self._slot():
            return transcode(path, target)


def render(
    source: Source,
    index: int = 0,
    *,
    media_type: str = "image/jpeg",
    window: Window | None = None,
    viewport: Viewport | None = None,
    quality: int = 90,
) -> bytes:
    """WADO-RS rendered resource for one frame (PS3.18 8.3.5 and 10.4.1.1.3)."""
    return encode_image(
        render_frame(source, index, window=window, viewport=viewport),
        media_type,
        quality=quality,
    )


def thumbnail(source: Source, *, size: int = 128, media_type: str = "image/jpeg") -> bytes:
    """WADO-RS thumbnail (PS3.18 8.3.5.1): the middle frame fitted in a sizexsize box."""
    header = _header(source)
    middle = number_of_frames(header) // 2
    return render(source, middle, media_type=media_type, viewport=Viewport(size, size))


# --------------------------------------------------------------------------------------------
# Raw frames


def _frame_length(ds: Dataset) -> int:
    bits = int(ds.BitsAllocated)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    pixels = int(ds.Rows) * int(ds.Columns) * samples
    if str(ds.get("PhotometricInterpretation", "")) == "YBR_FULL_422":
        # Chroma is subsampled horizontally: two luma and one of each chroma per pixel pair.
        pixels = int(ds.Rows) * int(ds.Columns) * 2
    return pixels * bits // 8


def _extended_offsets(ds: Dataset) -> tuple[bytes, bytes] | None:
    # Large multi-frame objects locate frames with the Extended Offset Table (PS3.5 A.4).
    table, lengths = ds.get("ExtendedOffsetTable"), ds.get("ExtendedOffsetTableLengths")
    return (bytes(table), bytes(lengths)) if table and lengths else None


def extract_frame(path: Path | str, index: int = 0) -> RawFrame:
    """One frame as stored, without reading the rest of Pixel Data (PS3.18 8.7.2).

    Encapsulated data yield the frame's codestream; native data yield its bytes in the
    stored transfer syntax.
    """
    return _guarded(_extract_frame, path, index)


def _extract_frame(path: Path | str, index: int) -> RawFrame:
    ds = pydicom.dcmread(path, defer_size=1024)
    _check_index(ds, index)
    transfer_syntax = UID(str(ds.file_meta.TransferSyntaxUID))
    if transfer_syntax == DeflatedExplicitVRLittleEndian or int(ds.BitsAllocated) == 1:
        # Offsets in a deflated stream, or frames packed across byte boundaries, cannot be
        # sliced from the file: decode instead.
        return _frame_as_explicit_vr_little_endian(ds, index)
    elem = ds.get_item(0x7FE00010, keep_deferred=True)
    if elem is None:
        raise RenderError(_("instance has no Pixel Data"))
    if not isinstance(elem, RawDataElement) or elem.value is not None:
        # Small enough to have been read already.
        data = bytes(ds.PixelData)
        if transfer_syntax.is_encapsulated:
            frame = get_frame(
                data,
                index,
                extended_offsets=_extended_offsets(ds),
                number_of_frames=number_of_frames(ds),
            )
            return RawFrame(frame, str(transfer_syntax))
        length = _frame_length(ds)
        return RawFrame(data[index * length : (index + 1) * length], str(transfer_syntax))
    with Path(path).open("rb") as fh:
        fh.seek(elem.value_tell)
        if transfer_syntax.is_encapsulated or elem.length == _UNDEFINED_LENGTH:
            frame = get_frame(
                fh,
                index,
                extended_offsets=_extended_offsets(ds),
                number_of_frames=number_of_frames(ds),
            )
            return RawFrame(frame, str(transfer_syntax))
        length = _frame_length(ds)
        fh.seek(elem.value_tell + index * length)
        data = fh.read(length)
    if len(data) != length:
        raise RenderError(_("pixel data shorter than declared"))
    return RawFrame(data, str(transfer_syntax))


def frame_as_explicit_vr_little_endian(source: Source, index: int = 0) -> RawFrame:
    """One frame decoded to native little endian samples (``transfer-syntax=1.2.840.10008.1.2.1``).

    Colour is interleaved (Planar Configuration 0) and decompressed colour is RGB, as
    Explicit VR Little Endian requires for formerly YBR-compressed data.
    """
    return _guarded(_frame_as_explicit_vr_little_endian, source, index)


def _frame_as_explicit_vr_little_endian(source: Source, index: int) -> RawFrame:
    header = _header(source)
    arr = _decode(source, header, index, DECODING_PLUGINS)
    if int(header.get("BitsAllocated", 8) or 8) == 1:
        return RawFrame(pack_bits(arr), str(ExplicitVRLittleEndian))
    little = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return RawFrame(np.ascontiguousarray(little).tobytes(), str(ExplicitVRLittleEndian))


# --------------------------------------------------------------------------------------------
# Whole instances in another transfer syntax

#: What an instance can be transcoded to (PS3.18 8.7.3.5.2): Explicit VR Little Endian, the
#: default of ``application/dicom``, and Implicit VR Little Endian, every node's baseline. Both
#: are lossless from any stored syntax once its pixel data are decoded; a lossy syntax is
#: never produced, since that would lose what the modality sent.
UNCOMPRESSED_SYNTAXES = frozenset({str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)})
# Binary VRs whose values change byte order with the transfer syntax (PS3.5 7.3), by width.
_WORD_WIDTHS = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _decodable(transfer_syntax: UID) -> bool:
    if not transfer_syntax.is_encapsulated:
        return True
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        return False
    return bool(set(decoder.available_plugins) & set(DECODING_PLUGINS))


def can_transcode(stored: str, target: str) -> bool:
    """Whether an instance stored in ``stored`` can be sent in ``target`` by `transcode`."""
    return target in UNCOMPRESSED_SYNTAXES and _decodable(UID(stored))


def transcode(path: Path | str, target: str) -> bytes:
    """The stored Part 10 object re-encoded in ``target``, one of `UNCOMPRESSED_SYNTAXES`.

    Compressed pixel data are decoded (colour comes out as RGB, Planar Configuration 0, as
    for `frame_as_explicit_vr_little_endian`), big endian values turned little endian, and
    everything else kept, the SOP Instance UID included: it is the same image, sent in
    another encoding (PS3.5 10). Raises `RenderError` if the pixel data cannot be decoded.
    """
    if target not in UNCOMPRESSED_SYNTAXES:
        raise RenderError(
            _("%(target)s is not a transfer syntax this archive produces") % {"target": target}
        )
    return _guarded(_transcode, path, UID(target))


def _transcode(path: Path | str, target: UID) -> bytes:
    ds = pydicom.dcmread(path)
    stored = UID(str(ds.file_meta.TransferSyntaxUID))
    if stored.is_encapsulated and "PixelData" in ds:
        _decompress(ds, stored)
    elif not stored.is_little_endian:
        _to_little_endian(ds)
    ds.file_meta.TransferSyntaxUID = target
    out = io.BytesIO()
    # dcmwrite, not save_as: the latter refuses to change byte order even once it is done.
    pydicom.dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def _decompress(ds: Dataset, stored: UID) -> None:
    if not _decodable(stored):
        raise RenderError(_("no decoder for pixel data in %(name)s") % {"name": stored.name})
    _with_first_decoder(
        DECODING_PLUGINS,
        lambda plugin: ds.decompress(decoding_plugin=plugin, generate_instance_uid=False),
        "cannot decode pixel data",
    )


def _to_little_endian(ds: Dataset) -> None:
    """Swap the bytes of binary values read from a big endian object (PS3.5 7.3); pydicom
    re-encodes the other values itself when writing."""
    bits = int(ds.get("BitsAllocated", 16) or 16)
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or []:
                _to_little_endian(item)
            continue
        width = _WORD_WIDTHS.get(str(elem.VR))
        if elem.tag == 0x7FE00010 and width is not None:
            width = max(bits // 8, 2)
        value = elem.value
        if width is None or not isinstance(value, bytes | bytearray) or len(value) % width:
            continue
        swapped = np.frombuffer(value, dtype=f">u{width}").astype(f"<u{width}")
        elem.value = swapped.tobytes()
