"""Listing images decoded and re-encoded as JPEG: the code that runs in the decoding child.

Re-encoding drops EXIF (GPS positions from phones), scripts hidden in polyglot files and
oversized dimensions; anything Pillow cannot decode as JPEG, PNG, WebP or GIF is rejected.

Memory: a 38 KB PNG can declare 40 million pixels, which Pillow would decode into 160 MB and
copy twice more (alpha, flattening). So the header is judged before any pixel is decoded:
a pixel cap, then an estimate of what the decode will cost (``decode_cost``) against a
budget. JPEGs are reduced while decoding (libjpeg's DCT scaling, ``Image.draft``), so a
24 Mpx photo costs about 24 MB; other formats cost their full size. The image is shrunk to
``MAX_EDGE`` before any conversion, and every full-size buffer is closed as soon as possible.

The node never runs this module itself (issue 17): ``services/images.py: ImageDecoder`` starts
a short-lived child per upload, ``python -I`` running ``main`` below, which limits its own
address space and CPU time (``limit_resources``) before Pillow is imported, reads the upload
on stdin and writes one JSON line (the result's size, or a typed error) then the JPEG on
stdout. Pillow's C decoders thus face untrusted bytes in a process a bomb or a decoder bug can
only kill, and Pillow's libraries and the decode's buffers never stay in the node's memory.
This module imports neither asyncio nor the rest of the node: a child starts in ~50 ms here.
"""

from __future__ import annotations

import io
import json
import resource
import sys
import warnings
from typing import TYPE_CHECKING, Any, NamedTuple

from meshnode.errors import PayloadTooLargeError, UnsupportedMediaError
from meshnode.protocol.translatable import Text

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF"})
# What Pillow is asked to recognise: the formats its ``preinit`` loads (ours, and BMP and PPM,
# refused by name), and WebP when the file says it is one. Without a list, a file none of
# these matches makes Pillow import all of its 43 format plugins (``Image.init``): 3.2 MB
# kept for ever by one odd upload (issue 17), and 40 more parsers exposed to untrusted bytes.
# https://pillow.readthedocs.io/en/stable/reference/Image.html#PIL.Image.open
PREINIT_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "PPM")
MAX_EDGE = 1600
JPEG_QUALITY = 82
DEFAULT_MAX_PIXELS = 24_000_000
DEFAULT_DECODE_BUDGET = 80 * 1024 * 1024
DEFAULT_MAX_UPLOADS = 4
# Modes Pillow resamples directly; others (palette, 1-bit, 16-bit, CMYK) are converted first.
RESAMPLABLE_MODES = frozenset({"L", "RGB", "RGBA", "LA"})
# Pillow stores these modes in one byte per pixel; 16-bit modes in two; the rest in four.
ONE_BYTE_MODES = frozenset({"1", "L", "P"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
BAD_IMAGE = (OSError, SyntaxError, ValueError, EOFError)


# Named tuples, not dataclasses: ``dataclasses`` (with ``inspect``) would add 2.9 MB to
# every decoding child, which Pillow does not import.
class EncodedImage(NamedTuple):
    """A re-encoded image ready to be written to the media directory."""

    data: bytes
    width: int
    height: int
    media_type: str = "image/jpeg"


class ImageLimits(NamedTuple):
    """What one upload may cost: file size, pixels in the header, bytes to decode it."""

    max_bytes: int
    max_pixels: int = DEFAULT_MAX_PIXELS
    decode_budget: int = DEFAULT_DECODE_BUDGET


def fit_within(width: int, height: int, edge: int = MAX_EDGE) -> tuple[int, int]:
    """The size of ``width`` × ``height`` shrunk (never enlarged) to fit an ``edge`` square."""
    scale = min(1.0, edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def bytes_per_pixel(mode: str) -> int:
    """Bytes Pillow allocates per pixel for ``mode`` (RGB is stored in four)."""
    if mode in ONE_BYTE_MODES:
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def decode_cost(
    width: int, height: int, mode: str, *, alpha: bool, decoder_bytes: int = 0
) -> int:
    """Peak bytes needed to decode an image of this (already reduced) size and shrink it.

    ``decoder_bytes`` is what the codec itself holds while decoding (see ``_decoder_bytes``).
    The steps: the decoded buffer; a
    4-byte copy if the mode must be converted first; a 4-byte premultiplied copy when there
    is alpha (Pillow resamples RGBA premultiplied); the two resampling passes (one
    intermediate of the target width and the full height); the result.
    """
    pixels = width * height
    decoded = pixels * bytes_per_pixel(mode) + decoder_bytes
    converted = pixels * 4 if mode not in RESAMPLABLE_MODES else 0
    premultiplied = pixels * 4 if alpha else 0
    target_w, target_h = fit_within(width, height)
    resampling = (target_w * height + target_w * target_h) * 4
    return decoded + converted + premultiplied + resampling


def reencode_image(data: bytes, limits: ImageLimits) -> EncodedImage:
    """Validate and re-encode an uploaded image (in the decoding child: see ``main``)."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLargeError(Text("image larger than %(max)s bytes", max=limits.max_bytes))
    small = _decode_small(data, limits)
    try:
        flattened = _flatten(small)
    finally:
        small.close()
    with flattened:
        out = io.BytesIO()
        flattened.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        return EncodedImage(data=out.getvalue(), width=flattened.width,
                            height=flattened.height)


def _open(data: bytes) -> PillowImage:
    """Read the header only (Pillow's ``open`` is lazy) and check the format."""
    # Imported on first upload, not at start-up: Pillow adds ~3 MB to an idle node's RSS,
    # which matters on a 512 MB Raspberry Pi Zero 2.
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it: make every bomb an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_formats(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLargeError("image has too many pixels") from exc
    except (UnidentifiedImageError, *BAD_IMAGE) as exc:
        raise UnsupportedMediaError("the file is not a readable image") from exc
    if image.format not in ACCEPTED_FORMATS:
        image.close()
        raise UnsupportedMediaError(
            Text("unsupported image type %(format)s; use JPEG, PNG, WebP or GIF",
                 format=image.format)
        )
    return image


def _formats(data: bytes) -> tuple[str, ...]:
    """The formats Pillow may try for ``data``: WebP's plugin (0.3 MB with libwebp) is
    imported, which registers it, only for a file with WebP's signature (RIFF container,
    WEBP form: https://developers.google.com/speed/webp/docs/riff_container)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return PREINIT_FORMATS
    from PIL import WebPImagePlugin

    del WebPImagePlugin  # imported for its registration only
    return (*PREINIT_FORMATS, "WEBP")


def _decode_small(data: bytes, limits: ImageLimits) -> PillowImage:
    """Decode the first frame within ``limits`` and return it shrunk to ``MAX_EDGE``."""
    from PIL import Image

    with _open(data) as image:
        if image.width * image.height > limits.max_pixels:
            raise PayloadTooLargeError(
                Text("image has too many pixels (at most %(max)s)", max=limits.max_pixels))
        width, height = image.size
        full_pixels = width * height
        target = fit_within(width, height)
        if image.format == "JPEG":
            image.draft("RGB", target)  # reduce on load: decode at 1/2, 1/4 or 1/8 size
        cost = _estimate(image, full_pixels)
        if cost > limits.decode_budget:
            raise PayloadTooLargeError(Text(
                "image too large to process here: %(width)s×%(height)s pixels; send a smaller"
                " image or a JPEG", width=width, height=height))
        try:
            image.load()
            return _shrink(image, target)
        except Image.DecompressionBombError as exc:
            raise PayloadTooLargeError("image has too many pixels") from exc
        except BAD_IMAGE as exc:
            raise UnsupportedMediaError("the file is not a readable image") from exc


def _has_alpha(image: PillowImage) -> bool:
    return image.mode in ALPHA_MODES or "transparency" in image.info


def _decoder_bytes(image: PillowImage, full_pixels: int) -> int:
    """Memory the codec holds besides Pillow's buffer (measured with Pillow 13).

    A progressive JPEG keeps every DCT coefficient of the full-size image (2 bytes per
    sample, chroma subsampled as the file says). libwebp's animation decoder, which Pillow
    uses for every WebP, keeps two canvases and a copy: 12 more bytes per pixel.
    """
    if image.format == "WEBP":
        return full_pixels * 12
    layers = getattr(image, "layer", None)
    if image.format != "JPEG" or not image.info.get("progressive") or not layers:
        return 0
    h_max = max(layer[1] for layer in layers)
    v_max = max(layer[2] for layer in layers)
    samples = sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)
    return int(full_pixels * 2 * samples)


def _estimate(image: PillowImage, full_pixels: int) -> int:
    return decode_cost(image.width, image.height, image.mode, alpha=_has_alpha(image),
                       decoder_bytes=_decoder_bytes(image, full_pixels))


def _shrink(image: PillowImage, target: tuple[int, int]) -> PillowImage:
    """A new image of ``target`` size; any full-size intermediate is closed on the way."""
    from PIL import Image

    if image.mode in RESAMPLABLE_MODES:
        return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    with image.convert("RGBA" if _has_alpha(image) else "RGB") as converted:
        image.close()  # free the decoded buffer before resampling the converted copy
        return converted.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _flatten(image: PillowImage) -> PillowImage:
    """RGB, with transparency painted on white."""
    from PIL import Image

    if image.mode not in ALPHA_MODES:
        return image.convert("RGB")
    with image.convert("RGBA") as rgba:
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background


# The child's answer: one JSON line, then ``size`` bytes of JPEG when ``error`` is absent.
# ``error`` names which typed error the node raises: these two, or ``memory`` (the address
# space limit was reached while decoding).
ERRORS: dict[str, type[PayloadTooLargeError | UnsupportedMediaError]] = {
    "too_large": PayloadTooLargeError, "unsupported": UnsupportedMediaError}
OUT_OF_MEMORY = Text("image too large to process here; send a smaller image or a JPEG")


def limit_resources(address_bytes: int, cpu_seconds: int) -> None:
    """Cap this process's address space and CPU time (``setrlimit``; past the CPU limit the
    kernel sends SIGXCPU, then SIGKILL a second later). Called before Pillow is imported."""
    resource.setrlimit(resource.RLIMIT_AS, (address_bytes, address_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))


def peak_kib() -> int:
    """This process's peak resident memory so far (VmHWM), in KiB; 0 where /proc has none."""
    with open("/proc/self/status") as status:  # not pathlib: 2 MB more per child
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def error_frame(kind: str, message: str) -> bytes:
    """The answer line for a refused image: its kind and its (translatable) message."""
    values: dict[str, Any] = getattr(message, "values", {})
    return json.dumps({"error": kind, "template": getattr(message, "template", message),
                       "values": values}).encode() + b"\n"


def answer(data: bytes, limits: ImageLimits) -> bytes:
    """The whole answer of the child for the upload ``data``."""
    try:
        image = reencode_image(data, limits)
    except PayloadTooLargeError as exc:
        return error_frame("too_large", exc.args[0])
    except UnsupportedMediaError as exc:
        return error_frame("unsupported", exc.args[0])
    except MemoryError:  # the address space limit: what the budget's estimate missed
        return error_frame("memory", OUT_OF_MEMORY)
    header = {"width": image.width, "height": image.height, "media_type": image.media_type,
              "size": len(image.data), "peak_kib": peak_kib()}
    return json.dumps(header).encode() + b"\n" + image.data


def main(argv: list[str]) -> int:
    """The decoding child: ``argv`` is max_bytes, max_pixels, decode_budget, address_bytes,
    cpu_seconds; the upload comes on stdin, the answer goes to stdout."""
    max_bytes, max_pixels, budget, address_bytes, cpu_seconds = (int(a) for a in argv)
    limit_resources(address_bytes, cpu_seconds)
    limits = ImageLimits(max_bytes=max_bytes, max_pixels=max_pixels, decode_budget=budget)
    data = sys.stdin.buffer.read()  # the node sends at most max_bytes (reencode_image checks)
    sys.stdout.buffer.write(answer(data, limits))
    sys.stdout.buffer.flush()
    return 0
