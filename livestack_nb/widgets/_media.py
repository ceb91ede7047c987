"""Images and audio in a table cell: recognised by their bytes, sent as bytes.

Livestack's example apps stream speech and images. A value that is PNG,
JPEG, GIF or WebP bytes (or a PIL image), or WAV, OGG, MP3 or FLAC bytes,
becomes a media cell: its type is read from the bytes' magic number (never
taken from the value's own claims), and the front end builds an ``<img>`` or
``<audio>`` from the bytes through a Blob URL, never from an HTML string. SVG
is not an image here (it can carry script): it stays text. The static
snapshot embeds small images as ``data:`` URIs of the same bytes.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Literal

from ._messages import MediaCell

__all__ = ["MAX_MEDIA", "SNAPSHOT_MEDIA", "media_of"]

#: Largest media value sent to the front end (bytes); larger ones are shown as text.
MAX_MEDIA = 512 * 1024
#: Largest image embedded in a static snapshot (bytes), so saved notebooks stay small.
SNAPSHOT_MEDIA = 96 * 1024
#: Longest side of the thumbnail made from a PIL image (pixels).
THUMB = 160

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"ID3", "audio/mpeg"),
)


def _mime(b: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if b.startswith(magic):
            return mime
    if b[:4] == b"RIFF" and b[8:12] == b"WAVE":
        return "audio/wav"
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP":
        return "image/webp"
    return None


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} kB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def _pil_png(v: Any) -> bytes | None:
    """A PNG thumbnail of a PIL image (PIL is only looked at, never imported here)."""
    if not type(v).__module__.startswith("PIL.") or not callable(getattr(v, "save", None)):
        return None
    try:
        thumb = v.copy()
        thumb.thumbnail((THUMB, THUMB))
        if thumb.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            thumb = thumb.convert("RGBA")
        out = io.BytesIO()
        thumb.save(out, format="PNG")
        return out.getvalue()
    except Exception:  # an image PIL cannot write: shown as text
        return None


def media_of(v: Any) -> MediaCell | None:
    """A media cell for ``v`` (``media``, ``mime``, ``b64``, ``text``), or ``None`` for text.

    ``text`` is what is shown where the media cannot be (a tooltip, the
    snapshot's audio, a reader without widgets).
    """
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        what = "bytes"
    else:
        png = _pil_png(v)
        if png is None:
            return None
        b, what = png, f"PIL image {getattr(v, 'width', '?')}x{getattr(v, 'height', '?')}"
    mime = _mime(b)
    if mime is None or len(b) > MAX_MEDIA:
        return None
    kind: Literal["image", "audio"] = "image" if mime.startswith("image/") else "audio"
    label = mime.split("/", 1)[1].upper()
    text = f"{label} {kind}, {_size(len(b))}" if what == "bytes" else f"{what} (PNG thumbnail)"
    return {"media": kind, "mime": mime, "b64": base64.b64encode(b).decode("ascii"), "text": text}
