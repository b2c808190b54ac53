"""Every setting, from bridge/settings.py's table, accepted and refused in each place it may be given: the
command line, the config file, a job's manifest.json; and refused where it may not be given."""
import json

import pytest

from conftest import focusdrop
from focusdrop.bridge.cli import build_parser, service_settings
from focusdrop.bridge.hotfolder.manifest import read_manifest
from focusdrop.bridge.hotfolder.lifecycle import _advice
from focusdrop.bridge.settings import (CONFIG, FIELDS, MANIFEST, STACK, UI_ADDRESS, Format, Method, Settings,
                                       SettingError, places, read_config, resolve, say_hint)
from focusdrop.engine.frameinfo import FrameError, Hint

# per setting: (a good value as TOML/JSON gives it, as a flag gives it, the typed value), then a bad value
# as TOML/JSON gives it and as a flag gives it
SAMPLES = {
    "method": (("pyramid", "pyramid", Method.PYRAMID), ("pyramidd", "pyramidd")),
    "order": (("reverse", "reverse", "reverse"), ("backwards", "backwards")),
    "reference": ((2, "2", 2), (-1, "two")),
    "crop": ((False, None, False), ("false", None)),
    "skip_unaligned": ((True, None, True), ("false", None)),
    "pyramid_layer": ((True, None, True), (1, None)),
    "white_balance": (([2, 1, 1.5], "2,1,1.5", (2.0, 1.0, 1.5)), ("warm", "warm")),
    "max_megapixels": ((600, "600", 600.0), ("big", "0")),
    "format": (("both", "both", Format.BOTH), ("jpg", "jpg")),
    "hot_folder": (("/tmp/In", "/tmp/In", "/tmp/In"), (3, "")),
    "out": (("/tmp/Out", "/tmp/Out", "/tmp/Out"), (True, "")),
    "quiet": ((2.5, "2.5", 2.5), ("ten", "-1")),
    "gap": ((30, "30", 30.0), (0, "0")),
    "give_up": ((90, "90", 90.0), (-1, "soon")),
    "workers": ((2, "2", 2), (1.5, "1.5")),
    "polling": ((True, None, True), ("yes", None)),
    "open": ((True, None, True), (0, None)),
    "cluster": (("tls://host:8786", "tls://host:8786", "tls://host:8786"), (8786, None)),
    "cluster_ca": (("/tmp/ca.pem", "/tmp/ca.pem", "/tmp/ca.pem"), (1, None)),
    "cluster_cert": (("/tmp/w.pem", "/tmp/w.pem", "/tmp/w.pem"), (["a"], None)),
    "cluster_fallback": (("local", "local", "local"), ("", "remote")),
    "insecure": ((True, None, True), ("true", None)),
    "ui": (("0.0.0.0:9000", "0.0.0.0:9000", "0.0.0.0:9000"), ("8765", "host:port")),
    "ui_token": (("a-token-of-some-length", "a-token-of-some-length", "a-token-of-some-length"),
                 ("short", "has spaces in it, sixteen+")),
}


def test_every_setting_has_samples():
    assert set(SAMPLES) == set(FIELDS), "a setting was added or removed: give it samples here"


def _typed(value):
    return str(value) if hasattr(value, "parts") else value


def _toml(name, value):
    return f"{name} = {json.dumps(value)}\n" if not isinstance(value, bool) else f"{name} = {str(value).lower()}\n"


@pytest.mark.parametrize("name", [n for n in SAMPLES if CONFIG in places(n)])
def test_config_file(tmp_path, name):
    (good, _, typed), (bad, _) = SAMPLES[name]
    config = tmp_path / "config.toml"
    config.write_text(_toml(name, good))
    assert _typed(read_config(config)[name]) == typed
    config.write_text(_toml(name, bad))
    with pytest.raises(ValueError, match=rf"^{config}: {name} = .* must be"):
        read_config(config)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_manifest(tmp_path, name):
    (good, _, typed), (bad, _) = SAMPLES[name]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"name": "ring", name: good}))
    if MANIFEST not in places(name):
        with pytest.raises(ValueError, match=f"^manifest.json: unknown setting '{name}'"):
            read_manifest(tmp_path)
        return
    assert _typed(read_manifest(tmp_path).settings[name]) == typed
    manifest.write_text(json.dumps({name: bad}))
    with pytest.raises(SettingError, match=f"^manifest.json: {name} = .* must be"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_command_line(name, capsys):
    (_, good, typed), (_, bad) = SAMPLES[name]
    flag = "--no-crop" if name == "crop" else "--" + name.replace("_", "-")
    for command in ("stack", "watch", "worker", "install", "ui"):
        before = {"stack": ["-o", "x.tif", "a.tif"], "worker": ["tls://h:1"], "install": ["lightroom"]}
        given = [flag] if good is None else [flag, good]
        if command not in places(name):
            with pytest.raises(SystemExit):
                build_parser().parse_args([command, *before.get(command, []), *given])
            assert "unrecognized arguments" in capsys.readouterr().err
            continue
        args = build_parser().parse_args([command, *before.get(command, []), *given])
        assert _typed(getattr(args, name)) == typed
        if bad is not None:
            with pytest.raises(SystemExit) as caught:
                build_parser().parse_args([command, *before.get(command, []), flag, bad])
            error = capsys.readouterr().err
            assert caught.value.code == 2 and error.count("\n") == 1 and f"argument {flag}: {bad!r} must be" in error


def test_the_status_page_flag_given_bare_is_the_default_address(tmp_path):
    assert build_parser().parse_args(["watch", "--ui"]).ui == UI_ADDRESS
    token_file = tmp_path / "token"
    token_file.write_text("a-token-read-from-a-file\n")
    assert build_parser().parse_args(["ui", "--ui-token", f"@{token_file}"]).ui_token == "a-token-read-from-a-file"


def test_the_last_place_wins(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('hot_folder = "/tmp/In"\nquiet = 4\nformat = "both"\n')
    args = build_parser().parse_args(["watch", "--config", str(config), "--quiet", "2.5"])
    chosen = service_settings(args)
    assert str(chosen.hot_folder) == "/tmp/In" and chosen.quiet == 2.5 and chosen.format is Format.BOTH
    assert chosen.gap == Settings().gap == 60


def test_settings_that_do_not_go_together_are_named_where_written(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('method = "pyramid"\n')
    with pytest.raises(ValueError, match=rf"^{config}: format = 'psd': the pyramid method gives a flat result"):
        service_settings(build_parser().parse_args(["watch", "--config", str(config)]))
    args = build_parser().parse_args(["watch", "--config", str(config), "--format", "tif"])
    assert service_settings(args).method is Method.PYRAMID
    with pytest.raises(ValueError, match="^the command line: format = 'both'"):
        resolve({"method": Method.PYRAMID, "format": Format.BOTH}, where="the command line")


def test_a_wrong_method_in_the_config_file_stops_the_service_at_start(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('method = "pyramidd"\n')
    run = focusdrop("watch", tmp_path / "In", "--config", config)
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert run.stderr == f"focusdrop: error: {config}: method = 'pyramidd' must be one of depthmap, pyramid\n"
    assert not (tmp_path / "In").exists()


def test_docs_settings_is_generated_from_the_table():
    from pathlib import Path
    from focusdrop.bridge.settings import markdown
    assert (Path(__file__).parents[1] / "docs" / "settings.md").read_text() == markdown(), \
        "run: python -m focusdrop.bridge.settings > docs/settings.md"


def test_an_engine_hint_is_said_as_the_place_takes_it():
    """The engine names a setting; the command says its flag, the service the manifest key."""
    skip = Hint("skip_unaligned", True, "to leave such frames out")
    assert say_hint(skip, STACK) == "to leave such frames out: --skip-unaligned"
    assert say_hint(skip, MANIFEST) == 'to leave such frames out: "skip_unaligned": true in the job\'s manifest.json'
    assert say_hint(Hint("order", "name", "to keep the file order"), STACK) == "to keep the file order: --order name"
    cap = Hint("max_megapixels", None, "to raise the cap")
    assert say_hint(cap, STACK) == "to raise the cap: --max-megapixels MP"
    assert say_hint(cap, MANIFEST).startswith("to raise the cap: max_megapixels = … in ")  # not a manifest key
    error = FrameError("IMG_3.tif", "cannot be aligned to any other frame", skip)
    assert '(to leave such frames out: "skip_unaligned": true in the job\'s manifest.json)' in _advice(error)


def test_the_stack_command_refuses_a_layered_pyramid_result_by_its_file(tmp_path):
    """The rule the config file states with format, the stack command states with its output's name."""
    for name in ("a.tif", "b.tif"):
        (tmp_path / name).write_bytes(b"checked after the outputs")
    run = focusdrop("stack", tmp_path / "a.tif", tmp_path / "b.tif", "-o", tmp_path / "out.psd", "--method", "pyramid")
    assert run.returncode == 2 and run.stderr.count("\n") == 1
    assert run.stderr.startswith("focusdrop: error: out.psd: the pyramid method gives a flat result only")
