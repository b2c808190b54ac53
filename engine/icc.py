"""ICC profiles FocusDrop writes itself: a matrix/TRC RGB display profile (ICC v2), built from its primaries
and gamma, so that an image FocusDrop converts into a colour space carries that space's profile. Used for
raw frames, decoded into Adobe RGB (1998); the colorants below are that space's, adapted to D50 as ICC
requires (the values of Adobe's own profile)."""
from __future__ import annotations

import struct

D50 = (0.9642, 1.0, 0.8249)
ADOBE_RGB_COLORANTS = ((0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087), (0.14919, 0.06322, 0.74457))
ADOBE_RGB_GAMMA = 563 / 256  # 2.19921875, as the Adobe RGB (1998) specification gives it


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def _text(kind: bytes, text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    if kind == b"desc":  # textDescriptionType: ASCII, then empty Unicode and ScriptCode parts
        return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text + b"\0" * 12 + b"\0" * 67
    return b"text\0\0\0\0" + ascii_text


def matrix_profile(description: str, colorants: tuple, gamma: float) -> bytes:
    """An ICC v2 RGB display profile: ``colorants`` the red, green and blue XYZ (D50), one gamma for all."""
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [(b"desc", _text(b"desc", description)), (b"cprt", _text(b"text", "No copyright, use freely")),
            (b"wtpt", _xyz(*D50)), (b"rXYZ", _xyz(*colorants[0])), (b"gXYZ", _xyz(*colorants[1])),
            (b"bXYZ", _xyz(*colorants[2])), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"none" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + b"\0" * 12
              + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + _s15(D50[0]) + _s15(D50[1]) + _s15(D50[2])
              + b"\0" * 48)
    return header + table + data


ADOBE_RGB = matrix_profile("Adobe RGB (1998) compatible, FocusDrop", ADOBE_RGB_COLORANTS, ADOBE_RGB_GAMMA)
