"""Real image and audio bytes for the media tests, made with the standard library."""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib


def png_bytes(width: int = 24, height: int = 16, rgb: tuple[int, int, int] = (0, 114, 178)) -> bytes:
    """A valid PNG of one colour (8-bit RGB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def wav_bytes(seconds: float = 0.5, hz: float = 440.0, rate: int = 8000) -> bytes:
    """A valid mono 16-bit WAV of a sine tone."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        n = int(seconds * rate)
        tone = [int(12000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(n)]
        frames = struct.pack(f"<{n}h", *tone)
        w.writeframes(frames)
    return out.getvalue()
