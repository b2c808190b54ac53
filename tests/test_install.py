"""``focusdrop install``: the shipped Adobe-side files are run, not only read: the Lightroom preset in Lua
5.1 (Lightroom's Lua), the Bridge and Photoshop scripts in Node.js against stand-ins for ExtendScript's
objects (tests/extendscript.js); the service files are parsed; uninstall leaves the folder as it was."""
import contextlib
import io
import json
import os
import plistlib
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
import tifffile
from lupa import lua51

from focusdrop.bridge.install import adobe, service
from focusdrop.bridge.samples import write_bracket
from conftest import focusdrop
from focusdrop.engine.synthetic import BracketSpec
from hotfolder import files, frame_layers, wait_for, watching

NODE = shutil.which("node")
STANDINS = Path(__file__).with_name("extendscript.js")
PRESET = "Lightroom/Export Presets/FocusDrop/FocusDrop - 16-bit TIFF to hot folder.lrtemplate"
PLUGIN = "Lightroom/Modules/FocusDrop.lrplugin"


def _install(dest: Path, *options: str) -> subprocess.CompletedProcess:
    empty = dest.parent / "empty-config.toml"  # the user's own config file stays out of the tests
    empty.write_text("")
    run = focusdrop("install", "all", "--dest", dest, "--config", empty, *options)
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


def _bridge(tmp_path: Path, mode: str, frames: list[Path], **env: str) -> dict:
    """Install the Bridge script under tmp_path/adobe (hot folder tmp_path/In) and choose Send to FocusDrop."""
    (tmp_path / "adobe").mkdir(exist_ok=True)
    (tmp_path / "In").mkdir(exist_ok=True)
    _install(tmp_path / "adobe", "--hot-folder", tmp_path / "In")
    script = tmp_path / "adobe" / "Bridge" / "Startup Scripts" / "FocusDrop.jsx"
    run = subprocess.run([NODE, STANDINS, mode, script, *frames], capture_output=True, text=True,
                         env={**os.environ, **env})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
def test_bridge_keeps_names_with_hash_and_ampersand_and_loads_twice_without_a_second_menu(tmp_path):
    """Bridge gives names URI-encoded (# as %23, & as %26: decodeURI leaves them); a startup script loaded
    twice must not create its menu again (Bridge throws on a duplicate id), and reads its settings from
    where it was loaded, not from $.fileName in the menu callback."""
    card = tmp_path / "card"
    card.mkdir()
    frames = [card / f"Ring #4 & Co_{k}.tif" for k in (1, 2)]
    for frame in frames:
        frame.write_bytes(b"frame")
    result = _bridge(tmp_path, "bridge-twice", frames)
    assert result["alerts"] == [f"FocusDrop: sent Ring #4 & Co_1 to {tmp_path / 'In'}"]
    assert len(result["menus"]) == 2
    assert files(tmp_path / "In" / "Ring #4 & Co_1") == ["Ring #4 & Co_1.tif", "Ring #4 & Co_2.tif", "manifest.json"]


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
def test_bridge_says_so_when_a_file_cannot_be_copied(tmp_path):
    """File.copy returns false rather than throwing: a sidecar that cannot be copied is named, and no job
    starts (the folder stays NAME.partial, which the service never takes)."""
    card = tmp_path / "card"
    card.mkdir()
    frames = [card / f"f_{k}.tif" for k in (1, 2)]
    for frame in frames:
        frame.write_bytes(b"frame")
    (card / "f_2.xmp").write_text("<x:xmpmeta/>")
    result = _bridge(tmp_path, "bridge", frames, FOCUSDROP_FAIL_COPY="f_2.xmp")
    assert result["alerts"] == [f"FocusDrop: cannot copy {card / 'f_2.xmp'} into {tmp_path / 'In' / 'f_1.partial'}"]
    assert files(tmp_path / "In") == ["f_1.partial"]


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
    assert plist["ProgramArguments"][1:] == ["-m", "focusdrop.bridge.cli", "watch", str(tmp_path / "In ü"), "--out",
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


def test_the_windows_task_runs_at_this_users_logon_on_battery_without_a_console(monkeypatch, tmp_path):
    monkeypatch.setenv("USERNAME", "anne")
    monkeypatch.setenv("USERDOMAIN", "STUDIO")
    monkeypatch.setattr(sys, "executable", r"C:\Python311\python.exe")
    task = ElementTree.fromstring(service.windows_task(tmp_path / "In", tmp_path / "Out"))
    t = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    assert task.find("t:Triggers/t:LogonTrigger/t:UserId", t).text == "STUDIO\\anne"
    principal = task.find("t:Principals/t:Principal", t)
    assert principal.find("t:UserId", t).text == "STUDIO\\anne"
    assert principal.find("t:LogonType", t).text == "InteractiveToken"
    assert principal.find("t:RunLevel", t).text == "LeastPrivilege"
    assert task.find("t:Actions", t).get("Context") == principal.get("id")
    assert task.find("t:Settings/t:DisallowStartIfOnBatteries", t).text == "false"
    assert task.find("t:Settings/t:StopIfGoingOnBatteries", t).text == "false"
    assert task.find("t:Actions/t:Exec/t:Command", t).text.endswith("pythonw.exe")


def _run_lightroom_export(tmp_path: Path, plugin: Path, frames: list[Path], times: list[float],
                          behaviour: dict | None = None, **properties) -> dict:
    """Run the installed plug-in's processRenderedPhotos in Lua 5.1, against tests/lightroom_sdk.lua, with
    ``frames`` as the renditions (copies: the provider moves them) and ``behaviour`` for the stand-ins
    (busy, cancel_after, fail_move); returns what it added and said, and how often it wrote."""
    lua = lua51.LuaRuntime()
    rendered = tmp_path / "rendered"
    rendered.mkdir(exist_ok=True)
    renders = []
    for frame, when in zip(frames, times):
        copy = rendered / frame.name
        shutil.copy(frame, copy)
        renders.append(lua.table_from({"path": str(copy), "time": when, "source": str(frame)}))
    host = lua.table_from({"exists": lambda p: Path(p).exists(), "isfile": lambda p: Path(p).is_file(),
                            "mkdirs": lambda p: Path(p).mkdir(parents=True), "move": lambda a, b: os.rename(a, b),
                            "copy": lambda a, b: shutil.copyfile(a, b), "delete": lambda p: Path(p).unlink(),
                            "read": lambda p: Path(p).read_text("utf-8"),
                            "sleep": lambda s: time.sleep(min(float(s), 0.5)), "now": time.time})
    make_sdk = lua.execute(Path(__file__).with_name("lightroom_sdk.lua").read_text(encoding="utf-8"))
    chosen = lua.table_from({"focusdrop_method": "depthmap", "focusdrop_format": "psd",
                             "focusdrop_addToCatalog": True, "focusdrop_placeResult": "copy", **properties})
    sdk_import, context, done = make_sdk(host, lua.table_from(dict(enumerate(renders, 1))), chosen,
                                         lua.table_from(behaviour or {}))
    lua.globals()["import"] = sdk_import
    lua.globals().package.path = str(plugin / "?.lua") + ";" + lua.globals().package.path
    provider = lua.execute((plugin / "FocusDropExportServiceProvider.lua").read_text(encoding="utf-8"))
    assert provider.allowFileFormats[1] == "TIFF"
    provider.processRenderedPhotos(None, context)
    return {"added": [dict(row) for row in done.added.values()], "messages": list(done.messages.values()),
            "writes": done.writes, "captions": list(done.captions.values())}


def _plugin_setup(tmp_path: Path) -> tuple[Path, Path, Path, list[Path]]:
    """A hot folder and output folder (NAME.psd already taken in both Out and the frames' folder), the
    plug-in installed for them, and a 3-frame bracket in a card folder."""
    root = tmp_path / "Bague ü"
    hot, out = root / "In", root / "Out"
    hot.mkdir(parents=True)
    out.mkdir()
    (tmp_path / "adobe").mkdir()
    _install(tmp_path / "adobe", "--hot-folder", hot, "--out", out)
    _, frames = write_bracket(BracketSpec(width=240, height=160, frames=3, seed=6), tmp_path / "card")
    return root, out, tmp_path / "adobe" / PLUGIN, frames


def test_the_lightroom_plugin_sends_a_job_and_adds_its_own_result(tmp_path):
    """Export > FocusDrop, run in Lua against SDK stand-ins while a real service runs: the job folder
    arrives whole, with frames in capture-time order; the plug-in copies exactly its own result, even when
    NAME.psd was already taken, into the first frame's folder (Lightroom stacks only within a folder) and
    adds it there, stacked above the first frame."""
    root, out, plugin, frames = _plugin_setup(tmp_path)
    (out / "frame_01.psd").write_bytes(b"an earlier result")
    (frames[0].parent / "frame_01.psd").write_bytes(b"another earlier result")
    info = lua51.LuaRuntime().execute((plugin / "Info.lua").read_text(encoding="utf-8"))
    assert info.LrExportServiceProvider.file == "FocusDropExportServiceProvider.lua"
    with watching(root) as (_, log):
        result = _run_lightroom_export(tmp_path, plugin, frames[::-1], [30.0, 20.0, 10.0])
    assert result["messages"] == []
    copy = frames[0].parent / "frame_01-2.psd"
    assert result["added"] == [{"path": str(copy), "source": str(frames[0]), "position": "above"}]
    assert frame_layers(copy) == 3 and (out / "frame_01-2.psd").read_bytes() == copy.read_bytes()
    assert (out / "frame_01.psd").read_bytes() == b"an earlier result"
    assert result["captions"] == ["Waiting for FocusDrop to stack frame_01 (Cancel: it goes on stacking)"]
    hot = root / "In"
    manifest = json.loads((hot / "done" / "frame_01" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["frames"] == ["frame_01.tif", "frame_02.tif", "frame_03.tif"]
    assert manifest["source"] == [str(f) for f in frames] and manifest["job_id"].startswith("frame_01-")


@pytest.mark.parametrize("busy, writes, added", [(15, 2, True), (1e9, 6, False)])
def test_the_lightroom_plugin_waits_for_a_busy_catalogue(tmp_path, busy, writes, added):
    """Another task writing the catalogue (a sync, an import) when the result arrives: the plug-in writes
    with a timeout and tries again; if the catalogue stays busy, it says where the result is instead of
    failing the export. Frames rendered on another volume (move refused) are copied into the job."""
    root, out, plugin, frames = _plugin_setup(tmp_path)
    with watching(root) as (_, log):
        result = _run_lightroom_export(tmp_path, plugin, frames, [1.0, 2.0, 3.0],
                                       {"busy": busy, "fail_move": "rendered"}, focusdrop_placeResult="move")
    assert result["writes"] == writes
    moved = frames[0].parent / "frame_01.psd"
    assert moved.exists() and not (out / "frame_01.psd").exists()
    if added:
        assert result["added"] == [{"path": str(moved), "source": str(frames[0]), "position": "above"}]
        assert result["messages"] == []
    else:
        assert result["added"] == []
        assert result["messages"] == [f"FocusDrop stacked frame_01: The result is {moved}; it could not be added to "
                                      "the catalogue (another task kept Lightroom's catalogue busy). Add it with "
                                      "File > Import."]


def test_cancel_while_the_lightroom_plugin_waits_leaves_the_job_to_the_service(tmp_path):
    root, out, plugin, frames = _plugin_setup(tmp_path)  # no service runs: only Cancel ends the wait
    result = _run_lightroom_export(tmp_path, plugin, frames, [1.0, 2.0, 3.0], {"cancel_after": 2})
    assert result["added"] == []
    assert result["messages"] == [f"FocusDrop: frame_01 goes on stacking: It is in the hot folder's queue; its "
                                  f"result will be in {out} and is not added to the catalogue (focusdrop status "
                                  "shows the queue)."]
    assert files(root / "In" / "frame_01") == ["frame_01.tif", "frame_02.tif", "frame_03.tif", "manifest.json"]


def test_the_lightroom_plugin_shows_a_failed_jobs_error(tmp_path):
    hot = tmp_path / "In"
    hot.mkdir()
    (tmp_path / "adobe").mkdir()
    _install(tmp_path / "adobe", "--hot-folder", hot, "--out", tmp_path / "Out")
    one = tmp_path / "card" / "a.tif"
    one.parent.mkdir()
    tifffile.imwrite(one, np.zeros((30, 40, 3), np.uint16), photometric="rgb")
    other = one.with_name("b.tif")
    tifffile.imwrite(other, np.zeros((20, 40, 3), np.uint16), photometric="rgb")
    with watching(tmp_path):
        result = _run_lightroom_export(tmp_path, tmp_path / "adobe" / PLUGIN, [one, other], [1.0, 2.0])
    assert result["added"] == []
    [message] = result["messages"]
    assert message.startswith("FocusDrop could not stack a: FocusDrop could not stack a.")
    assert "b.tif: size 40x20 differs from a.tif (40x30)" in message


def test_raw_files_libraw_cannot_read_are_refused_by_name(tmp_path):
    """Bridge sends originals, often raw: a raw file LibRaw cannot read is refused by name."""
    (tmp_path / "IMG_1.CR2").write_bytes(b"II*\0" + bytes(100))
    (tmp_path / "IMG_2.CR2").write_bytes(b"II*\0" + bytes(100))
    run = focusdrop("stack", tmp_path, "-o", tmp_path / "out.psd")
    assert run.returncode == 2
    assert run.stderr.startswith("focusdrop: error: IMG_1.CR2: raw file LibRaw cannot read")


def _pretend(monkeypatch, tmp_path, platform: str) -> dict[str, Path]:
    """This process as a Mac or a Windows PC whose home, Adobe folders and config live under tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    places = {"home": home, "config": tmp_path / "config", "appdata": home / "AppData", "programs": tmp_path / "Programs"}
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(places["config"]))
    monkeypatch.setenv("APPDATA", str(places["appdata"]))
    monkeypatch.setenv("PROGRAMFILES", str(places["programs"]))
    return places


def _cli(*args) -> tuple[int, str]:
    from focusdrop.bridge.cli import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main([str(a) for a in args])
    return code, out.getvalue()


def test_a_mac_with_lightroom_but_no_photoshop_installs_the_rest_and_uninstalls_it_all(monkeypatch, tmp_path):
    places = _pretend(monkeypatch, tmp_path, "darwin")
    adobe_support = places["home"] / "Library/Application Support/Adobe"
    (adobe_support / "Bridge 2025").mkdir(parents=True)
    before = _snapshot(tmp_path)
    code, said = _cli("install", "all", "--hot-folder", tmp_path / "In")
    assert code == 0, said
    assert "skipped photoshop: no Adobe Photoshop found in /Applications" in said
    assert (adobe_support / "Lightroom" / "Modules" / "FocusDrop.lrplugin" / "Info.lua").exists()
    assert (adobe_support / "Bridge 2025" / "Startup Scripts" / "FocusDrop.jsx").exists()
    assert (places["home"] / "Library/LaunchAgents/org.focusdrop.watch.plist").exists()
    code, said = _cli("uninstall")
    assert code == 0, said
    assert _snapshot(tmp_path) == before


def test_a_folder_that_cannot_be_written_stops_the_run_but_uninstall_removes_what_was_written(monkeypatch, tmp_path):
    """On Windows, Photoshop's scripts go under Program Files: without the rights there (here: a file where
    a folder must be), the run stops naming the folder, and what it wrote before is still undone."""
    places = _pretend(monkeypatch, tmp_path, "win32")
    (places["appdata"] / "Adobe" / "Bridge 2024").mkdir(parents=True)
    photoshop = places["programs"] / "Adobe" / "Adobe Photoshop 2025"
    photoshop.mkdir(parents=True)
    (photoshop / "Presets").write_text("not a folder")
    before = _snapshot(tmp_path)
    code, said = _cli("install", "all", "--hot-folder", tmp_path / "In")
    assert code == 2 and said.count("\n") == said.count("wrote ") + 1, said
    assert said.splitlines()[-1].startswith(f"focusdrop: error: {photoshop}: cannot write photoshop's files here")
    assert "give --dest DIR" in said.splitlines()[-1]
    assert (places["appdata"] / "Adobe" / "Lightroom" / PRESET.split("/", 1)[1]).exists()
    code, said = _cli("uninstall")
    assert code == 0 and "removed" in said
    assert _snapshot(tmp_path) == before


def test_install_with_no_application_found_says_so(monkeypatch, tmp_path):
    _pretend(monkeypatch, tmp_path, "darwin")
    code, said = _cli("install", "photoshop")
    assert code == 2 and said == ("focusdrop: skipped photoshop: no Adobe Photoshop found in /Applications (start "
                                  "it once, or give --dest DIR)\nfocusdrop: error: nothing installed: photoshop not "
                                  "found on this machine\n")


@pytest.fixture(scope="session")
def acorn(tmp_path_factory) -> Path:
    """acorn, the JavaScript parser, from the npm registry into a folder of this test session."""
    npm = shutil.which("npm")
    if NODE is None or npm is None:
        pytest.skip("Node.js and npm are not installed")
    folder = tmp_path_factory.mktemp("acorn")
    run = subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(folder), "acorn@8"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return folder / "node_modules" / "acorn"


@pytest.mark.parametrize("script", ["bridge/FocusDrop.jsx", "photoshop/Open latest FocusDrop result.jsx"])
def test_the_adobe_scripts_are_ecmascript_3(acorn, script):
    """ExtendScript is ES3: no let, const, arrow functions, JSON, trailing commas in objects... Node runs ES5
    and later happily, so the scripts are also parsed as ES3 alone."""
    source = adobe.script(*script.split("/")).decode("utf-8")
    check = ("const acorn = require(process.argv[1]); const fs = require('fs');"
             "acorn.parse(fs.readFileSync(0, 'utf8'), {ecmaVersion: 3});")
    run = subprocess.run([NODE, "-e", check, str(acorn)], input=source, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    bad = subprocess.run([NODE, "-e", check, str(acorn)], input="var f = () => 1;", capture_output=True, text=True)
    assert bad.returncode != 0  # the check can fail


def test_a_catalogue_that_stores_its_presets_gets_the_preset_too(tmp_path):
    catalog = tmp_path / "Shoots" / "Jewellery.lrcat"
    catalog.parent.mkdir()
    catalog.write_bytes(b"SQLite format 3\0")
    (tmp_path / "adobe").mkdir()
    before = _snapshot(catalog.parent)
    _install(tmp_path / "adobe", "--hot-folder", tmp_path / "In", "--catalog", catalog)
    stored = catalog.parent / "Lightroom Settings" / "Export Presets" / "FocusDrop" / PRESET.split("/")[-1]
    assert stored.read_bytes() == (tmp_path / "adobe" / PRESET).read_bytes()
    assert focusdrop("uninstall", "--dest", tmp_path / "adobe").returncode == 0
    assert _snapshot(catalog.parent) == before
    run = focusdrop("install", "lightroom", "--dest", tmp_path / "adobe", "--catalog", tmp_path)
    assert run.returncode == 2 and "no Lightroom catalogue (.lrcat) there" in run.stderr
