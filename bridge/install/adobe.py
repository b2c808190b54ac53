"""FocusDrop's files for Adobe's applications (from ``scripts/``), with the absolute paths filled in, and
where each application looks for them.

- Lightroom Classic: the export preset, into ``Export Presets/FocusDrop/`` of Lightroom's user folder (and,
  for a catalogue that stores its presets with it, of ``Lightroom Settings/`` beside the catalogue), and
  the plug-in ``FocusDrop.lrplugin`` (with ``FocusDropSettings.lua``: the hot and output folders) into
  ``Modules/``.
- Bridge: the startup script and ``FocusDrop.settings`` (``hot_folder=...``) beside it, into the
  ``Startup Scripts`` folder of every Bridge version's user folder.
- Photoshop: "Open latest FocusDrop result.jsx" and its settings (``out=...``), into ``Presets/Scripts`` of
  every Photoshop installed.
On macOS and Windows these are Adobe's own folders; elsewhere (and for tests, or presets kept beside a
catalogue) ``--dest DIR`` puts the same files under DIR.
"""
from __future__ import annotations

import os
import sys
from importlib.resources import files
from pathlib import Path

PRESET = "FocusDrop - 16-bit TIFF to hot folder.lrtemplate"
PLUGIN = "FocusDrop.lrplugin"
PLUGIN_FILES = ("Info.lua", "FocusDropExportServiceProvider.lua")
BRIDGE_SCRIPT = "FocusDrop.jsx"
PHOTOSHOP_SCRIPT = "Open latest FocusDrop result.jsx"
SETTINGS = "FocusDrop.settings"
COLOUR_SPACES = {"prophoto": "ProPhotoRGB", "adobergb": "AdobeRGB", "srgb": "sRGB"}
APPLICATIONS = ("lightroom", "bridge", "photoshop")


def script(*parts: str) -> bytes:
    """A file shipped in ``scripts/``, as bytes."""
    return files("focusdrop.scripts").joinpath(*parts).read_bytes()


def lua_string(text: str) -> str:
    """``text`` as a Lua 5.1 string literal (backslashes and quotes escaped; UTF-8 kept as it is)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def preset(hot_folder: Path, colour_space: str) -> bytes:
    """The Lightroom export preset with the hot folder and colour space filled in."""
    text = script("lightroom", PRESET).decode("utf-8")
    text = text.replace("{{hot_folder}}", lua_string(str(hot_folder)))
    return text.replace("{{colour_space}}", lua_string(COLOUR_SPACES[colour_space])).encode("utf-8")


def settings(**values: Path) -> bytes:
    """A FocusDrop.settings file: one key=value per line, UTF-8."""
    return "".join(f"{key}={value}\n" for key, value in values.items()).encode("utf-8")


def targets(application: str, dest: Path | None) -> list[Path]:
    """The folders ``application``'s files go into (``files_for`` names them relative to these): under
    ``dest`` if given, else Adobe's user folders on macOS and Windows. Raises ValueError naming what is
    missing."""
    if dest is not None:
        return [dest / {"lightroom": "Lightroom", "bridge": "Bridge/Startup Scripts",
                        "photoshop": "Photoshop/Presets/Scripts"}[application]]
    if sys.platform == "darwin":
        support, programs = Path.home() / "Library/Application Support/Adobe", Path("/Applications")
    elif sys.platform == "win32":
        support = Path(os.environ["APPDATA"]) / "Adobe"
        programs = Path(os.environ.get("PROGRAMFILES", r"C:\Program Files")) / "Adobe"
    else:
        raise ValueError("Adobe's applications do not run here: give --dest DIR to write the files into DIR")
    if application == "lightroom":
        return [support / "Lightroom"]
    if application == "bridge":
        found = sorted(p / "Startup Scripts" for p in support.glob("Bridge*") if p.is_dir())
        where = support
    else:
        found = sorted(p / "Presets" / "Scripts" for p in programs.glob("Adobe Photoshop*") if p.is_dir())
        where = programs
    if not found:
        raise NotInstalled(f"no Adobe {application.title()} found in {where} (start it once, or give --dest DIR)")
    return found


class NotInstalled(ValueError):
    """An application FocusDrop has files for is not on this machine."""


def files_for(application: str, hot_folder: Path, out: Path, colour_space: str) -> dict[str, bytes]:
    """Path relative to a ``targets`` folder -> contents, for one application."""
    if application == "lightroom":
        plugin = "Modules/" + PLUGIN
        return {f"Export Presets/FocusDrop/{PRESET}": preset(hot_folder, colour_space),
                **{f"{plugin}/{name}": script("lightroom", PLUGIN, name) for name in PLUGIN_FILES},
                f"{plugin}/FocusDropSettings.lua": (
                    "-- Written by `focusdrop install lightroom`: where the plug-in sends brackets, and where\n"
                    "-- their results land.\n"
                    f"return {{ hot_folder = {lua_string(str(hot_folder))}, out = {lua_string(str(out))} }}\n"
                    ).encode("utf-8")}
    if application == "bridge":
        return {BRIDGE_SCRIPT: script("bridge", BRIDGE_SCRIPT), SETTINGS: settings(hot_folder=hot_folder)}
    return {PHOTOSHOP_SCRIPT: script("photoshop", PHOTOSHOP_SCRIPT), SETTINGS: settings(out=out)}


def catalog_presets(catalog: Path, hot_folder: Path, colour_space: str) -> dict[Path, bytes]:
    """The export preset where Lightroom reads presets when "Store presets with this catalog" is on:
    ``Lightroom Settings/`` beside the catalogue (``catalog``: its .lrcat file or its folder). Raises
    ValueError if there is no catalogue there."""
    folder = catalog.parent if catalog.suffix.lower() == ".lrcat" else catalog
    if not any(folder.glob("*.lrcat")):
        raise ValueError(f"{catalog}: no Lightroom catalogue (.lrcat) there; give the catalogue file or its folder")
    return {folder / "Lightroom Settings" / "Export Presets" / "FocusDrop" / PRESET: preset(hot_folder, colour_space)}


NEXT_STEP = {
    "lightroom": "restart Lightroom Classic; then select a bracket and File > Export with Preset > FocusDrop "
                 "(frames only), or File > Export > FocusDrop (the result comes back into the catalogue)",
    "bridge": "restart Bridge and allow the startup script (Preferences > Startup Scripts); then select a "
              "bracket and Tools > Send to FocusDrop",
    "photoshop": "restart Photoshop; File > Scripts > Open latest FocusDrop result",
}
