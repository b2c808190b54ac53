"""Hot-folder settings: defaults, then the config file, then the command line."""
from pathlib import Path

import pytest

from focusdrop.bridge.config import load_config


def test_file_then_command_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'in = "{tmp_path}/In"\nout = "{tmp_path}/Out"\nquiet = 4\nformat = "both"\n')
    settings = load_config(config, {"quiet": 2.5, "gap": None})
    assert settings.inbox == tmp_path / "In" and settings.out == tmp_path / "Out"
    assert settings.quiet == 2.5 and settings.gap == 60 and settings.format == "both"


def test_defaults_without_a_file(tmp_path):
    settings = load_config(tmp_path / "missing.toml", {})
    assert settings.inbox == Path("~/FocusDrop/In").expanduser() and settings.quiet == 10


@pytest.mark.parametrize("text, message", [
    ("quiet = ", "not a valid TOML file"),
    ("qiuet = 3", "unknown setting 'qiuet'"),
    ('format = "jpg"', "format 'jpg'"),
    ('method = "pyramid"', "flat result only"),
    ('quiet = "ten"', "quiet = 'ten' must be a number of seconds"),
    ("workers = 1.5", "workers = 1.5 must be a whole number"),
    ('polling = "yes"', "polling = 'yes' must be true or false"),
    ("in = 3", "in = 3 must be a folder path in quotes"),
    ("give_up = -1", "give_up must be >= 0"),
])
def test_bad_settings_are_named(tmp_path, text, message):
    config = tmp_path / "config.toml"
    config.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_config(config, {})
