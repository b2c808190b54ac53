"""Hot-folder settings: defaults, overridden by a TOML config file, overridden by command-line options.

The config file is ``$XDG_CONFIG_HOME/focusdrop/config.toml`` (``~/.config/focusdrop/config.toml``), or the
file ``--config`` names. Every key is optional::

    in = "~/FocusDrop/In"
    out = "~/FocusDrop/Out"
    quiet = 10          # seconds without a new or growing frame that end a stack
    gap = 60            # seconds between capture times that split a burst into two stacks
    format = "psd"      # psd, tif, or both
    method = "depthmap" # or pyramid (flat results only)
    workers = 1
    polling = false     # poll instead of file-system events (SMB/NFS shares)
    give_up = 60        # seconds an unusable file may sit unchanged before it goes to failed/
    open = false        # open each new result in the system's default application (Photoshop, for PSD)
    white_balance = "as-shot"  # raw frames: as-shot (the reference frame's), daylight, or "R,G,B" multipliers
    cluster = ""        # a Dask scheduler, "tls://host:8786": stack on the machines its workers run on
    cluster_ca = ""     # the studio's ca.pem (focusdrop cluster certs)
    cluster_cert = ""   # this machine's NAME.pem
    cluster_fallback = ""  # "local": stack on this machine while the scheduler cannot be reached
    insecure = false    # allow a tcp:// scheduler, unencrypted and open to anyone who reaches it
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from focusdrop.engine.raw import WhiteBalance

FORMATS = ("psd", "tif", "both")


@dataclass(frozen=True)
class WatchConfig:
    inbox: Path = Path("~/FocusDrop/In")
    out: Path = Path("~/FocusDrop/Out")
    quiet: float = 10.0
    gap: float = 60.0
    format: str = "psd"
    method: str = "depthmap"
    workers: int = 1
    polling: bool = False
    rescan: float = 2.0  # seconds between safety-net rescans of the hot folder
    give_up: float = 60.0  # seconds an empty, cut-off or unreadable file may sit before it goes to failed/
    open: bool = False  # open each new result in the system's default application
    white_balance: str = "as-shot"  # raw frames' (parse_white_balance)
    cluster: str = ""  # Dask scheduler address; "" stacks on this machine (bridge.cluster)
    cluster_ca: str = ""
    cluster_cert: str = ""
    cluster_fallback: str = ""  # "" (stacks wait for the scheduler) or "local"
    insecure: bool = False

    def resolved(self) -> "WatchConfig":
        """The same settings with folders made absolute and values checked (ValueError names the key)."""
        if self.format not in FORMATS:
            raise ValueError(f"format {self.format!r}: choose one of {', '.join(FORMATS)}")
        if self.method == "pyramid" and self.format != "tif":
            raise ValueError("the pyramid method gives a flat result only: set format = \"tif\"")
        parse_white_balance(self.white_balance)
        if self.cluster_fallback not in ("", "local"):
            raise ValueError(f"cluster_fallback {self.cluster_fallback!r}: give \"local\" or leave it out")
        if self.quiet < 0 or self.gap <= 0 or self.workers < 1 or self.rescan <= 0 or self.give_up < 0:
            raise ValueError("quiet and give_up must be >= 0, gap and rescan > 0, workers >= 1")
        return replace(self, inbox=self.inbox.expanduser().resolve(), out=self.out.expanduser().resolve())


def parse_white_balance(value: object) -> WhiteBalance:
    """A white balance as the command line, the config file or a manifest gives it: "as-shot", "daylight",
    or three positive multipliers for red, green and blue ("2.1,1,1.4", or a list of three numbers).
    Raises ValueError."""
    if value in ("as-shot", "daylight"):
        return value
    parts = value.split(",") if isinstance(value, str) else value
    try:
        red, green, blue = (float(v) for v in parts)
        if min(red, green, blue) > 0:
            return red, green, blue
    except (TypeError, ValueError):
        pass
    raise ValueError(f"white balance {value!r}: give as-shot, daylight, or three multipliers R,G,B such as 2.1,1,1.4")


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "focusdrop" / "config.toml"


def load_config(path: Path | None, overrides: dict) -> WatchConfig:
    """Defaults, then the config file (if there is one), then ``overrides`` (None values ignored)."""
    settings: dict = {}
    path = path or default_config_path()
    if path.exists():
        try:
            settings = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not a valid TOML file ({e})") from None
    if "in" in settings:
        settings["inbox"] = settings.pop("in")
    known = {f.name for f in fields(WatchConfig)}
    unknown = set(settings) - known
    if unknown:
        raise ValueError(f"{path}: unknown setting {sorted(unknown)[0]!r}")
    for key, value in settings.items():
        _check_type(path, "in" if key == "inbox" else key, value)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("inbox", "out"):
        if key in settings:
            settings[key] = Path(settings[key])
    return WatchConfig(**settings).resolved()


def _check_type(path: Path, key: str, value: object) -> None:
    """Raise ValueError naming the file and key unless ``value`` has the type the setting takes."""
    wanted = {f.name: f.type for f in fields(WatchConfig)}["inbox" if key == "in" else key]
    ok = {"Path": isinstance(value, str), "str": isinstance(value, str), "bool": isinstance(value, bool),
          "int": isinstance(value, int) and not isinstance(value, bool),
          "float": isinstance(value, (int, float)) and not isinstance(value, bool)}[wanted]
    if not ok:
        kind = {"Path": "a folder path in quotes", "str": "text in quotes", "bool": "true or false",
                "int": "a whole number", "float": "a number of seconds"}[wanted]
        raise ValueError(f"{path}: {key} = {value!r} must be {kind}")
