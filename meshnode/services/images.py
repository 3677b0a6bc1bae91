"""Listing images: type- and size-checked, decoded with a pixel cap, re-encoded as JPEG.

Re-encoding drops EXIF (GPS positions from phones), scripts hidden in polyglot files and
oversized dimensions; anything Pillow cannot decode as JPEG, PNG, WebP or GIF is rejected.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshnode.errors import PayloadTooLargeError, UnsupportedMediaError
from meshnode.protocol.translatable import Text

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF"})
MAX_PIXELS = 40_000_000
MAX_EDGE = 1600
JPEG_QUALITY = 82


@dataclass(frozen=True)
class EncodedImage:
    """A re-encoded image ready to be written to the media directory."""

    data: bytes
    width: int
    height: int
    media_type: str = "image/jpeg"


def reencode_image(data: bytes, *, max_bytes: int) -> EncodedImage:
    """Validate and re-encode an uploaded image (CPU-bound: run it in a thread)."""
    # Imported on first upload, not at start-up: Pillow adds ~3 MB to an idle node's RSS,
    # which matters on a 512 MB Raspberry Pi Zero 2.
    from PIL import Image, UnidentifiedImageError

    if len(data) > max_bytes:
        raise PayloadTooLargeError(Text("image larger than %(max)s bytes", max=max_bytes))
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it: make every bomb an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLargeError("image has too many pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedMediaError("the file is not a readable image") from exc
    try:
        with image:
            if image.format not in ACCEPTED_FORMATS:
                raise UnsupportedMediaError(
                    Text("unsupported image type %(format)s; use JPEG, PNG, WebP or GIF",
                         format=image.format)
                )
            if image.width * image.height > MAX_PIXELS:
                raise PayloadTooLargeError("image has too many pixels")
            image.seek(0)
            flattened = _flatten(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedMediaError("the file is not a readable image") from exc
    except Image.DecompressionBombError as exc:
        raise PayloadTooLargeError("image has too many pixels") from exc
    flattened.thumbnail((MAX_EDGE, MAX_EDGE))
    out = io.BytesIO()
    flattened.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return EncodedImage(data=out.getvalue(), width=flattened.width, height=flattened.height)


def _flatten(image: PillowImage) -> PillowImage:
    """Decode to RGB, painting transparency on white."""
    from PIL import Image  # lazily, see reencode_image

    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background
