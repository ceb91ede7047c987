"""Images and audio in a StreamTable: recognised by their bytes, sent as bytes, thumbnails in the snapshot."""

from __future__ import annotations

import base64
import re

from media_support import png_bytes, wav_bytes
from pydantic import BaseModel
from widget_support import HOSTILE

import livestack_nb.widgets as lw
from livestack_nb.stream import DataStream
from livestack_nb.widgets._media import MAX_MEDIA, media_of


class Photo(BaseModel):
    name: str
    image: bytes


def test_media_is_recognised_by_its_bytes_not_by_what_it_claims():
    png, wav = png_bytes(), wav_bytes()
    assert media_of(png)["mime"] == "image/png" and media_of(png)["media"] == "image"
    assert base64.b64decode(media_of(png)["b64"]) == png
    assert media_of(wav)["mime"] == "audio/wav" and media_of(wav)["media"] == "audio"
    assert media_of(bytearray(png))["mime"] == "image/png"
    assert media_of(b"\xff\xd8\xff\xe0" + b"\x00" * 20)["mime"] == "image/jpeg"
    assert media_of(b"OggS" + b"\x00" * 20)["mime"] == "audio/ogg"
    assert re.fullmatch(r"PNG image, \d+ B", media_of(png)["text"])
    # not media: plain bytes, text, SVG (it can carry script), too large
    assert media_of(b"hello") is None
    assert media_of("\x89PNG\r\n\x1a\n") is None  # a str is text, whatever it starts with
    assert media_of(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>') is None
    assert media_of(png + b"\x00" * MAX_MEDIA) is None


def test_a_pil_image_is_sent_as_a_png_thumbnail():
    from PIL import Image

    big = Image.new("RGB", (800, 400), (230, 159, 0))
    cell = media_of(big)
    assert cell and cell["mime"] == "image/png" and cell["text"] == "PIL image 800x400 (PNG thumbnail)"
    thumb = Image.open(__import__("io").BytesIO(base64.b64decode(cell["b64"])))
    assert thumb.size == (160, 80)


def test_a_table_sends_media_cells_and_its_snapshot_embeds_thumbnails_from_the_bytes(comms):
    s = DataStream("photos")
    s.push([Photo(name=HOSTILE, image=png_bytes()), Photo(name="tone", image=wav_bytes())])
    s.push([Photo(name="plain", image=b"not an image")])
    table = lw.StreamTable(s)
    table.comm.hello()
    rows = table.comm.custom()[-1]["rows"]
    assert rows[0][2] == HOSTILE and rows[0][3]["media"] == "image"
    assert rows[1][3]["media"] == "audio" and rows[1][3]["mime"] == "audio/wav"
    assert rows[2][3] == "b'not an image'"  # plain bytes stay text
    html = table.snapshot_html()
    imgs = re.findall(r"<img [^>]*>", html)
    assert len(imgs) == 1
    assert f'src="data:image/png;base64,{base64.b64encode(png_bytes()).decode()}"' in imgs[0]
    assert "WAV audio" in html and "<audio" not in html  # audio is named in the snapshot
    assert HOSTILE not in html  # the hostile name next to it is still text
    text = table._snapshot()[1]
    assert "PNG image" in text and "WAV audio" in text


def test_a_large_image_is_named_not_embedded_in_the_snapshot(comms):
    s = DataStream("large")
    s.push([_noisy_png()])
    table = lw.StreamTable(s)
    html = table.snapshot_html()
    assert "<img" not in html and "PNG image" in html


def _noisy_png() -> bytes:
    """A PNG over the snapshot's embedding limit (random rows compress badly)."""
    import os
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    w, h = 200, 200
    raw = b"".join(b"\x00" + os.urandom(3 * w) for _ in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
