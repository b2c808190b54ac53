"""XMP for a stacked result: what Lightroom's metadata panel shows for it.

The reference frame's own packet (its ``.xmp`` sidecar, or the packet embedded in a TIFF or JPEG) is kept
as the photographer left it: rating, label, keywords, copyright, caption. Added where it lacks them: the
capture essentials from the reference frame's EXIF (make, model, lens, focal length, aperture, exposure
time, ISO, capture time), in the tiff/exif/exifEX namespaces Lightroom reads; and FocusDrop's provenance in
its own namespace: the number of frames, their file names, the method.

Camera Raw's develop settings (the crs namespace, which Lightroom writes into a raw frame's sidecar) are
left out. FocusDrop decodes raw frames at their as-shot settings, not the photographer's, and Lightroom
applies the crs settings it finds in a PSD or TIFF on import: the raw's crop and lens corrections would
land on a stack that is already aligned and cropped, its white balance and tone settings on an image
rendered without them. The stack comes into the catalogue as rendered; its develop settings start afresh.
"""
from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import datetime
from pathlib import Path

import tifffile
from PIL import Image

NAMESPACES = {"x": "adobe:ns:meta/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
              "tiff": "http://ns.adobe.com/tiff/1.0/", "exif": "http://ns.adobe.com/exif/1.0/",
              "exifEX": "http://cipa.jp/exif/1.0/", "focusdrop": "https://focusdrop.org/ns/stack/1.0/"}
KEPT_PREFIXES = {"xmp": "http://ns.adobe.com/xap/1.0/", "dc": "http://purl.org/dc/elements/1.1/",
                 "photoshop": "http://ns.adobe.com/photoshop/1.0/",
                 "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
                 "xmpMM": "http://ns.adobe.com/xap/1.0/mm/", "lr": "http://ns.adobe.com/lightroom/1.0/",
                 "aux": "http://ns.adobe.com/exif/1.0/aux/",
                 "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"}
DEVELOP_SETTINGS = "http://ns.adobe.com/camera-raw-settings/1.0/"  # Camera Raw's (crs), left out
for _prefix, _uri in {**KEPT_PREFIXES, **NAMESPACES}.items():  # the usual prefixes, not ns0, ns1, ... on writing
    ElementTree.register_namespace(_prefix, _uri)
RDF = "{%s}" % NAMESPACES["rdf"]

# EXIF tag -> XMP property, and how the value is written: text, a rational "n/d", or an ISO 8601 date
_EXIF = {271: ("tiff:Make", "text"), 272: ("tiff:Model", "text"), 0xA434: ("exifEX:LensModel", "text"),
         0x920A: ("exif:FocalLength", "rational"), 0x829D: ("exif:FNumber", "rational"),
         0x829A: ("exif:ExposureTime", "rational"), 0x8827: ("exif:ISOSpeedRatings", "seq"),
         0x9003: ("exif:DateTimeOriginal", "date")}
_TIFF_NAMES = {"FocalLength": 0x920A, "FNumber": 0x829D, "ExposureTime": 0x829A, "ISOSpeedRatings": 0x8827,
               "PhotographicSensitivity": 0x8827, "DateTimeOriginal": 0x9003, "LensModel": 0xA434}


def capture_properties(path: Path) -> dict[str, str | list[str]]:
    """The capture essentials of a frame's EXIF as XMP properties ("exif:FNumber": "28/10", ...); those the
    file lacks are left out. TIFF-structured files (TIFF, DNG, CR2, NEF, ARW) through tifffile, JPEG and
    PNG through Pillow; anything unreadable gives {}."""
    raw: dict[int, object] = {}
    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            raw.update({code: tags[code].value for code in (271, 272) if code in tags})
            exif = tags["ExifTag"].value if "ExifTag" in tags else {}
            raw.update({_TIFF_NAMES[name]: value for name, value in exif.items() if name in _TIFF_NAMES})
    except Exception:
        try:
            with Image.open(path) as im:
                exif = im.getexif()
                raw.update({code: exif[code] for code in (271, 272) if code in exif})
                raw.update({code: value for code, value in exif.get_ifd(0x8769).items() if code in _EXIF})
        except Exception:
            return {}
    return {_EXIF[code][0]: _format(value, _EXIF[code][1]) for code, value in raw.items()
            if _format(value, _EXIF[code][1])}


def _format(value: object, kind: str) -> str | list[str]:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if kind == "text":
        return str(value).strip("\0 ")
    if kind == "seq":
        return [str(value[0] if isinstance(value, (tuple, list)) else value)]
    if kind == "date":
        try:
            return datetime.strptime(str(value).strip("\0 "), "%Y:%m:%d %H:%M:%S").isoformat()
        except ValueError:
            return ""
    if isinstance(value, tuple) and len(value) == 2:
        return f"{int(value[0])}/{int(value[1])}"
    fraction = getattr(value, "numerator", None), getattr(value, "denominator", None)
    return f"{fraction[0]}/{fraction[1]}" if None not in fraction else str(value)


def result_xmp(base: bytes | None, properties: dict[str, str | list[str]]) -> bytes:
    """``base`` (an XMP packet, or None) with ``properties`` added where it has none of that name: text
    as attributes of its first rdf:Description, lists as rdf:Seq, and Camera Raw's develop settings left
    out (see above). Returns a UTF-8 packet with its xpacket
    wrapper; a ``base`` that does not parse as XML comes back unchanged (kept, rather than replaced)."""
    try:
        root = _parse(base)
    except ElementTree.ParseError:
        return base
    rdf = root if root.tag == RDF + "RDF" else root.find(RDF + "RDF")
    if rdf is None:
        rdf = ElementTree.SubElement(root, RDF + "RDF")
    for node in rdf.findall(RDF + "Description"):
        _drop_develop_settings(node)
    description = rdf.find(RDF + "Description")
    if description is None:
        description = ElementTree.SubElement(rdf, RDF + "Description", {RDF + "about": ""})
    for name, value in properties.items():
        prefix, local = name.split(":")
        key = "{%s}%s" % (NAMESPACES[prefix], local)
        if key in description.attrib or description.find(key) is not None:
            continue
        if isinstance(value, list):
            container = ElementTree.SubElement(ElementTree.SubElement(description, key), RDF + "Seq")
            for item in value:
                ElementTree.SubElement(container, RDF + "li").text = item
        else:
            description.set(key, value)
    body = ElementTree.tostring(root, encoding="unicode")
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body
            + '\n<?xpacket end="w"?>').encode("utf-8")


def _drop_develop_settings(description: ElementTree.Element) -> None:
    """Remove the crs-namespace attributes and elements of an rdf:Description, in place."""
    develop = "{%s}" % DEVELOP_SETTINGS
    for key in [key for key in description.attrib if key.startswith(develop)]:
        del description.attrib[key]
    for child in [child for child in description if child.tag.startswith(develop)]:
        description.remove(child)


def _parse(base: bytes | None) -> ElementTree.Element:
    """``base`` parsed, or an empty x:xmpmeta/rdf:RDF where there is none. Raises ElementTree.ParseError."""
    if base:
        return ElementTree.fromstring(base.strip(b"\0 \n"))
    root = ElementTree.Element("{%s}xmpmeta" % NAMESPACES["x"])
    ElementTree.SubElement(root, RDF + "RDF")
    return root
