"""``focusdrop install``: the shipped Adobe-side files are run, not only read: the Lightroom preset in Lua
5.1 (Lightroom's Lua), the Bridge and Photoshop scripts in Node.js against stand-ins for ExtendScript's
objects (tests/extendscript.js); the service files are parsed; uninstall leaves the folder as it was."""
import json
import os
import plistlib
import shutil
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
import tifffile
from lupa import lua51

from bridge.install import adobe, service
from bridge.samples import write_bracket
from conftest import focusdrop
from engine.synthetic import BracketSpec
from hotfolder import files, frame_layers, wait_for, watching

NODE = shutil.which("node")
STANDINS = Path(__file__).with_name("extendscript.js")
PRESET = "Lightroom/Export Presets/FocusDrop/FocusDrop - 16-bit TIFF to hot folder.lrtemplate"
PLUGIN = "Lightroom/Modules/FocusDrop.lrplugin"


def _install(dest: Path, *options: str) -> subprocess.CompletedProcess:
    run = focusdrop("install", "all", "--dest", dest, "--config", dest / "none.toml", *options)
    assert run.returncode == 0, run.stderr
    return run


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"/" for p in folder.rglob("*")}


def test_install_then_uninstall_leaves_the_folder_as_it_was(tmp_path):
    (tmp_path / "Lightroom").mkdir()
    (tmp_path / "Lightroom" / "my own preset.lrtemplate").write_text("s = {}")
    before = _snapshot(tmp_path)
    run = _install(tmp_path, "--hot-folder", tmp_path / "In", "--out", tmp_path / "Out")
    assert "left to do: restart Bridge" in run.stdout
    assert (tmp_path / PRESET).exists() and (tmp_path / "Bridge/Startup Scripts/FocusDrop.jsx").exists()
    run = focusdrop("uninstall", "--dest", tmp_path)
    assert run.returncode == 0, run.stderr
    assert _snapshot(tmp_path) == before


def _run_preset(text: str):
    lua = lua51.LuaRuntime()
    assert lua.eval("_VERSION") == "Lua 5.1"
    lua.execute(text)
    return lua.globals().s


def test_the_installed_lightroom_preset_runs_in_lua_5_1(tmp_path):
    hot = tmp_path / "Bague ü" / "In"
    _install(tmp_path, "--hot-folder", hot, "--colour-space", "adobergb")
    preset = _run_preset((tmp_path / PRESET).read_text(encoding="utf-8"))
    value = preset.value
    assert preset.type == "Export" and preset.title == "FocusDrop – 16-bit TIFF to hot folder"
    assert value.format == "TIFF" and value.export_bitDepth == 16 and value.export_colorSpace == "AdobeRGB"
    assert value.export_destinationType == "specificFolder" and value.export_destinationPathPrefix == str(hot)
    assert value.size_doConstrain is False and value.outputSharpeningOn is False
    assert value.reimportExportedPhoto is False and value.renamingTokensOn is False
    assert value.embeddedMetadataOption == "all" and value.collisionHandling == "rename"


def test_a_windows_hot_folder_survives_lua_quoting():
    hot = 'C:\\Users\\Anne\\Bague ü\\In "2"'
    value = _run_preset(adobe.preset(hot, "prophoto").decode("utf-8")).value
    assert value.export_destinationPathPrefix == hot and value.export_colorSpace == "ProPhotoRGB"


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
def test_bridge_send_to_focusdrop_makes_a_job_the_service_stacks(tmp_path):
    """The startup script's menu command, run in Node against stand-ins, copies the selection (click order,
    sidecars too) into a job folder; a real service turns it into a layered PSD."""
    hot = tmp_path / "Bague ü" / "In"
    hot.mkdir(parents=True)
    (tmp_path / "adobe").mkdir()
    _install(tmp_path / "adobe", "--hot-folder", hot, "--out", tmp_path / "Out")
    _, frames = write_bracket(BracketSpec(width=240, height=160, frames=3, seed=5), tmp_path / "card")
    (tmp_path / "card" / "frame_02.xmp").write_text("<x:xmpmeta/>")
    clicked = [frames[2], frames[0], frames[1]]
    script = tmp_path / "adobe" / "Bridge" / "Startup Scripts" / "FocusDrop.jsx"
    run = subprocess.run([NODE, STANDINS, "bridge", script, *clicked], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert ["Send to FocusDrop", "at the end of Thumbnail"] in result["menus"]
    assert result["alerts"] == [f"FocusDrop: sent frame_03 to {hot}"]
    job = hot / "frame_03"
    assert files(job) == ["frame_01.tif", "frame_02.tif", "frame_02.xmp", "frame_03.tif", "manifest.json"]
    manifest = json.loads((job / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["name"] == "frame_03" and manifest["source"] == [str(p) for p in clicked]
    root = hot.parent
    (root / "Out").mkdir()
    with watching(root) as (_, log):
        wait_for(lambda: files(hot / "done") == ["frame_03"], 60, log)
    assert files(root / "Out") == ["frame_03.psd"] and frame_layers(root / "Out" / "frame_03.psd") == 3


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
def test_bridge_names_a_missing_hot_folder(tmp_path):
    (tmp_path / "adobe").mkdir()
    _install(tmp_path / "adobe", "--hot-folder", tmp_path / "gone")
    script = tmp_path / "adobe" / "Bridge" / "Startup Scripts" / "FocusDrop.jsx"
    frame = tmp_path / "a.tif"
    frame.write_bytes(b"x")
    run = subprocess.run([NODE, STANDINS, "bridge", script, frame, frame], capture_output=True, text=True)
    assert json.loads(run.stdout)["alerts"] == [f"FocusDrop: the hot folder {tmp_path / 'gone'} does not exist "
                                                "or cannot be reached"]


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
def test_photoshop_opens_the_newest_whole_result(tmp_path):
    out = tmp_path / "Out ü"
    out.mkdir()
    for k, name in enumerate(["ring.psd", "ring-2.psd", ".ring-3.psd.123.partial", "notes.txt"]):
        (out / name).write_bytes(b"8BPS")
        os.utime(out / name, (1000 + k, 1000 + k))
    (tmp_path / "adobe").mkdir()
    _install(tmp_path / "adobe", "--out", out)
    script = tmp_path / "adobe" / "Photoshop" / "Presets" / "Scripts" / "Open latest FocusDrop result.jsx"
    run = subprocess.run([NODE, STANDINS, "photoshop", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["opened"] == str(out / "ring-2.psd")


def test_service_files_parse_and_run_focusdrop_watch(tmp_path):
    (tmp_path / "adobe").mkdir()
    _install(tmp_path / "adobe", "--hot-folder", tmp_path / "In ü", "--out", tmp_path / "Out")
    folder = tmp_path / "adobe" / "service"
    plist = plistlib.loads((folder / f"{service.LABEL}.plist").read_bytes())
    assert plist["ProgramArguments"][1:] == ["-m", "bridge.cli", "watch", str(tmp_path / "In ü"), "--out",
                                             str(tmp_path / "Out")]
    assert plist["RunAtLoad"] is True
    unit = (folder / "focusdrop.service").read_text(encoding="utf-8")
    assert f'"watch" "{tmp_path / "In ü"}"' in unit
    if shutil.which("systemd-analyze"):
        check = subprocess.run(["systemd-analyze", "verify", folder / "focusdrop.service"], capture_output=True,
                               text=True)
        assert "focusdrop.service" not in check.stderr or check.returncode == 0, check.stderr
    task = ElementTree.fromstring((folder / "FocusDrop-task.xml").read_bytes())
    namespace = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    assert task.find("t:Triggers/t:LogonTrigger", namespace) is not None
    assert "watch" in task.find("t:Actions/t:Exec/t:Arguments", namespace).text


def test_raw_files_libraw_cannot_read_are_refused_by_name(tmp_path):
    """Bridge sends originals, often raw: a raw file LibRaw cannot read is refused by name."""
    (tmp_path / "IMG_1.CR2").write_bytes(b"II*\0" + bytes(100))
    (tmp_path / "IMG_2.CR2").write_bytes(b"II*\0" + bytes(100))
    run = focusdrop("stack", tmp_path, "-o", tmp_path / "out.psd")
    assert run.returncode == 2
    assert run.stderr.startswith("focusdrop: error: IMG_1.CR2: raw file LibRaw cannot read")
