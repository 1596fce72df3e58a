"""Screenshots from Xvfb's framebuffer file: an XWD image, encoded here as PNG (zlib, standard
library) or JPEG (cjpeg), so taking one runs no X client and holds no X server grab."""

from __future__ import annotations

import struct
import subprocess
import zlib
from dataclasses import dataclass

JPEG_QUALITY = 85
ENCODE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Frame:
    width: int
    height: int
    rgb: bytes
    """Rows of 3-byte pixels, top to bottom."""


def read_frame(path: str) -> Frame:
    """Read a 24- or 32-bit TrueColor XWD file (what Xvfb writes at depth 24) as RGB pixels."""
    with open(path, "rb") as file:
        data = file.read()
    header = struct.unpack(">25I", data[:100])
    header_size, width, height = header[0], header[4], header[5]
    byte_order, bits_per_pixel, bytes_per_line = header[7], header[11], header[12]
    red_mask, colormap_entries = header[14], header[19]
    if bits_per_pixel != 32 or red_mask != 0xFF0000:
        raise ValueError(f"unsupported framebuffer format: {bits_per_pixel} bits per pixel")
    start = header_size + 12 * colormap_entries
    pixels = data[start : start + bytes_per_line * height]
    if bytes_per_line != width * 4:
        pixels = b"".join(
            pixels[row * bytes_per_line : row * bytes_per_line + width * 4] for row in range(height)
        )
    # In memory a pixel is B, G, R, X when least significant byte first, X, R, G, B otherwise.
    red, green, blue = (2, 1, 0) if byte_order == 0 else (1, 2, 3)
    rgb = bytearray(width * height * 3)
    rgb[0::3] = pixels[red::4]
    rgb[1::3] = pixels[green::4]
    rgb[2::3] = pixels[blue::4]
    return Frame(width, height, bytes(rgb))


def png(frame: Frame) -> bytes:
    """The frame as an 8-bit RGB PNG, every row unfiltered."""
    stride = frame.width * 3
    rows = b"".join(b"\x00" + frame.rgb[i : i + stride] for i in range(0, len(frame.rgb), stride))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", frame.width, frame.height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


def jpeg(frame: Frame) -> bytes:
    """The frame as a JPEG, by cjpeg reading it as a binary PPM."""
    ppm = b"P6\n%d %d\n255\n" % (frame.width, frame.height) + frame.rgb
    done = subprocess.run(
        ["cjpeg", "-quality", str(JPEG_QUALITY)],
        input=ppm,
        capture_output=True,
        timeout=ENCODE_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise ValueError(done.stderr.decode(errors="replace").strip() or "cjpeg failed")
    return done.stdout
