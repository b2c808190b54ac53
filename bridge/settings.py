"""Every setting FocusDrop takes, defined once: one name (the config key and the manifest key; the flag is
the name with dashes), its type, default and help, and the places it may be given.

The command line, the config file (``~/.config/focusdrop/config.toml``) and a job's ``manifest.json`` all
parse through here, and a bad value is refused where it was written, naming that file or flag. Later places
win: defaults, then the config file, then the command line; a manifest amends them for its own job.
``docs/settings.md`` is generated from this table: ``python -m focusdrop.bridge.settings > docs/settings.md``.
"""
from __future__ import annotations

import argparse
import enum
import json
import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from focusdrop.engine.frameinfo import MAX_MEGAPIXELS, Hint

if TYPE_CHECKING:  # the engine's heavy imports wait for a command that stacks: `focusdrop --help` starts fast
    from focusdrop.engine.pipeline import StackOptions
    from focusdrop.engine.raw import WhiteBalance

STACK, WATCH, WORKER, INSTALL, UI = "stack", "watch", "worker", "install", "ui"  # commands whose flags come from here
CONFIG, MANIFEST = "config", "manifest"
COMMANDS = (STACK, WATCH, WORKER, INSTALL, UI)
UI_ADDRESS = "127.0.0.1:8765"  # the status page's address when --ui is given bare


class Method(enum.StrEnum):
    DEPTHMAP = "depthmap"
    PYRAMID = "pyramid"


class Format(enum.StrEnum):
    PSD = "psd"
    TIF = "tif"
    BOTH = "both"

    @property
    def suffixes(self) -> list[str]:
        return {"psd": [".psd"], "tif": [".tif"], "both": [".psd", ".tif"]}[self.value]


class Order(enum.StrEnum):
    AUTO = "auto"
    NAME = "name"
    REVERSE = "reverse"
    GIVEN = "given"


class Fallback(enum.StrEnum):
    WAIT = "wait"
    LOCAL = "local"


@dataclass(frozen=True)
class Kind:
    """A setting's type: ``convert`` takes a TOML or JSON value, ``from_text`` a command-line string; both
    return the typed value or raise ValueError; ``must`` says what a value must be; a ``switch`` is given
    on the command line as a bare flag."""

    must: str
    convert: Callable[[Any], Any]
    from_text: Callable[[str], Any]
    to_json: Callable[[Any], Any] = lambda value: value
    choices: tuple[str, ...] = ()
    switch: bool = False


def _number(minimum: float, unit: str, whole: bool = False, above: bool = False) -> Kind:
    words = "a whole number" if whole else f"a number of {unit}"
    bound = f"{'above' if above else 'at least'} {minimum:g}"
    must = f"{words}, {bound}"

    def convert(value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
            raise ValueError(must)
        if not math.isfinite(value) or value < minimum or (above and value == minimum):
            raise ValueError(must)
        return int(value) if whole else float(value)

    def from_text(text: str) -> float | int:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise ValueError(must) from None
        return convert(value)
    return Kind(must, convert, from_text)


def _choice(choices: type[enum.StrEnum]) -> Kind:
    must = "one of " + ", ".join(c.value for c in choices)

    def convert(value: Any) -> enum.StrEnum:
        if isinstance(value, str) and value in set(choices):
            return choices(value)
        raise ValueError(must)
    return Kind(must, convert, convert, str, tuple(c.value for c in choices))


def _boolean() -> Kind:
    must = "true or false"

    def convert(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        raise ValueError(must)
    return Kind(must, convert, convert, switch=True)


def _folder() -> Kind:
    must = "a folder path in quotes"

    def convert(value: Any) -> Path:
        if isinstance(value, str) and value:
            return Path(value).expanduser().resolve()
        raise ValueError(must)
    return Kind(must, convert, convert, str)


def _file() -> Kind:
    must = "a file path in quotes"

    def convert(value: Any) -> Path | None:
        if value in ("", None):
            return None
        if isinstance(value, str):
            return Path(value).expanduser()
        raise ValueError(must)
    return Kind(must, convert, convert, lambda value: None if value is None else str(value))


def _text() -> Kind:
    must = "text in quotes"

    def convert(value: Any) -> str:
        if isinstance(value, str):
            return value
        raise ValueError(must)
    return Kind(must, convert, convert)


def _frame_index() -> Kind:
    index = _number(0, "frames", whole=True)
    must = "a frame's number, 0 for the first"

    def convert(value: Any) -> int | None:
        if value is None:
            return None
        try:
            return index.convert(value)
        except ValueError:
            raise ValueError(must) from None

    def from_text(text: str) -> int:
        try:
            return index.from_text(text)
        except ValueError:
            raise ValueError(must) from None
    return Kind(must, convert, from_text)


def _white_balance() -> Kind:
    must = "as-shot, daylight, or three multipliers R,G,B such as 2.1,1,1.4"

    def convert(value: Any) -> WhiteBalance:
        if value in ("as-shot", "daylight"):
            return value
        parts = value.split(",") if isinstance(value, str) else value
        try:
            if isinstance(parts, list) and all(isinstance(p, (str, int, float)) and not isinstance(p, bool)
                                               for p in parts):
                red, green, blue = (float(p) for p in parts)
                if min(red, green, blue) > 0:
                    return red, green, blue
        except ValueError:
            pass
        raise ValueError(must)
    return Kind(must, convert, convert, lambda value: value if isinstance(value, str) else list(value))


def _address() -> Kind:
    must = "HOST:PORT, such as 127.0.0.1:8765 (an empty text: off)"

    def convert(value: Any) -> str:
        if value == "":
            return ""
        if isinstance(value, str) and ":" in value:
            host, _, port = value.rpartition(":")
            if host.strip("[]") and port.isdigit() and 0 < int(port) < 65536:
                return f"{host}:{int(port)}"
        raise ValueError(must)
    return Kind(must, convert, convert)


def _secret() -> Kind:
    must = "a token of 16 or more characters, or @FILE to read it from FILE"

    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(must)
        if value.startswith("@"):
            try:
                value = Path(value[1:]).expanduser().read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as e:
                raise ValueError(f"{must} ({value[1:]}: {getattr(e, 'strerror', None) or e})") from None
        if value and (len(value) < 16 or any(c.isspace() for c in value)):
            raise ValueError(must)
        return value
    return Kind(must, convert, convert, lambda value: "****" if value else "")


def setting(default: Any, kind: Kind, help: str, places: tuple[str, ...], flag: str = "",
            metavar: str = "", bare: Any = None) -> Any:
    """A field of Settings: its default, type, help, where it may be given (STACK, WATCH, WORKER, INSTALL,
    UI: those commands' flags; CONFIG; MANIFEST), where it is not ``--name-with-dashes``, its flag, and the
    value its flag given bare (without a value) stands for, if it may be."""
    return field(default=default, metadata={"kind": kind, "help": help, "places": places, "flag": flag,
                                            "metavar": metavar, "bare": bare})


EVERYWHERE = (STACK, WATCH, CONFIG, MANIFEST)
SERVICE = (WATCH, CONFIG)
CLUSTER = (WATCH, WORKER, CONFIG)


@dataclass(frozen=True)
class Settings:
    """All settings, typed. Each field's metadata (see ``setting``) says how it is given."""

    # how a stack is made
    method: Method = setting(Method.DEPTHMAP, _choice(Method), "depthmap: a soft per-pixel choice of the "
                             "sharpest frames (clean, low noise); pyramid: the strongest detail at every "
                             "scale (crossing hairs and bristles; flat results only)", EVERYWHERE)
    order: Order = setting(Order.AUTO, _choice(Order), "focus order, for the layers and for which frames are "
                           "registered to which: auto finds it from the frames when file-name order is "
                           "clearly wrong; name, reverse (of name) or given (as listed) force that order",
                           EVERYWHERE)
    reference: int | None = setting(None, _frame_index(), "align to frame N (0 for the first; default: the "
                                    "middle one)", (STACK, MANIFEST), metavar="N")
    crop: bool = setting(True, _boolean(), "crop the result to the area every frame covers (--no-crop keeps "
                         "the reference frame's full size)", EVERYWHERE, flag="--no-crop")
    skip_unaligned: bool = setting(False, _boolean(), "leave out, with a warning, a frame that cannot be "
                                   "aligned or whose alignment is uncertain, instead of failing", EVERYWHERE)
    pyramid_layer: bool = setting(False, _boolean(), "in a PSD, add the pyramid method's result as a hidden "
                                  "layer to paint fine detail from", EVERYWHERE)
    white_balance: WhiteBalance = setting("as-shot", _white_balance(), "raw frames' one white balance: "
                                          "as-shot (the reference frame's), daylight (the camera's), or R,G,B "
                                          "multipliers such as 2.1,1,1.4", EVERYWHERE, metavar="WB")
    max_megapixels: float = setting(MAX_MEGAPIXELS, _number(1, "megapixels"), "the largest frame taken, in "
                                    "megapixels (a guard against files no camera wrote)", (STACK, WATCH, CONFIG),
                                    metavar="MP")
    # what the hot folder writes
    format: Format = setting(Format.PSD, _choice(Format), "the hot folder's result: psd (layered), tif "
                             "(flat), or both", (WATCH, CONFIG, MANIFEST))
    # the hot-folder service
    hot_folder: Path = setting(Path("~/FocusDrop/In").expanduser(), _folder(), "the hot folder (focusdrop "
                               "watch and status take it as their first argument)", (INSTALL, CONFIG),
                               metavar="FOLDER")
    out: Path = setting(Path("~/FocusDrop/Out").expanduser(), _folder(), "where results go",
                        (WATCH, INSTALL, CONFIG), metavar="FOLDER")
    quiet: float = setting(10.0, _number(0, "seconds"), "seconds without a new or growing frame that end a "
                           "stack", SERVICE, metavar="SECONDS")
    gap: float = setting(60.0, _number(0, "seconds", above=True), "seconds between capture times that split "
                         "loose frames into two stacks", SERVICE, metavar="SECONDS")
    give_up: float = setting(60.0, _number(0, "seconds"), "seconds an empty, cut-off or unreadable file may "
                             "sit unchanged before it goes to failed/ with an error.txt", SERVICE,
                             metavar="SECONDS")
    workers: int = setting(1, _number(1, "stacks", whole=True), "stacks processed at once on this machine",
                           SERVICE, metavar="N")
    polling: bool = setting(False, _boolean(), "poll the folder instead of relying on file-system events "
                            "(SMB/NFS shares)", SERVICE)
    open: bool = setting(False, _boolean(), "open each new result in the system's default application for "
                         "it (Photoshop, for PSD)", SERVICE)
    # the status page (bridge.statuspage)
    ui: str = setting("", _address(), f"serve the status page at HOST:PORT ({UI_ADDRESS} when given bare); "
                      "an address beyond this machine needs ui_token", (WATCH, UI, CONFIG), metavar="HOST:PORT",
                      bare=UI_ADDRESS)
    ui_token: str = setting("", _secret(), "a token every request to the status page must carry (open "
                            "http://HOST:PORT/?token=TOKEN once; the browser keeps it)", (WATCH, UI, CONFIG),
                            metavar="TOKEN|@FILE")
    # a cluster (bridge.cluster)
    cluster: str = setting("", _text(), "a Dask scheduler, tls://HOST:8786, to stack on its workers (the hot "
                           "folder and the output folder on a share they mount)", (WATCH, CONFIG),
                           metavar="ADDRESS")
    cluster_ca: Path | None = setting(None, _file(), "the studio's ca.pem (focusdrop cluster certs)", CLUSTER,
                                      metavar="FILE")
    cluster_cert: Path | None = setting(None, _file(), "this machine's NAME.pem (focusdrop cluster certs)",
                                        CLUSTER, metavar="FILE")
    cluster_fallback: Fallback = setting(Fallback.WAIT, _choice(Fallback), "while the scheduler cannot be "
                                         "reached: wait (stacks wait for it) or local (stack on this "
                                         "machine)", (WATCH, CONFIG))
    insecure: bool = setting(False, _boolean(), "allow a tcp:// scheduler: no encryption, no certificates, "
                             "and anyone who reaches it runs code on every worker", CLUSTER)

    def stack_options(self) -> StackOptions:
        """What the engine needs of these settings (the frames are passed in the order ``order`` says)."""
        from focusdrop.engine.pipeline import StackOptions
        return StackOptions(method=self.method.value, reference=self.reference, crop=self.crop,
                            skip_unaligned=self.skip_unaligned, pyramid_layer=self.pyramid_layer,
                            order="auto" if self.order is Order.AUTO else "given",
                            white_balance=self.white_balance, max_megapixels=self.max_megapixels)

    def amended(self, values: dict[str, Any], where: str = "") -> "Settings":
        """These settings with ``values`` (already typed: from ``parse``) in place; the combination is
        checked, naming ``where``."""
        amended = replace(self, **values)
        amended.check(where)
        return amended

    def check(self, where: str = "") -> None:
        """Raise SettingError for settings that do not go together."""
        if self.method is Method.PYRAMID and self.format is not Format.TIF:
            raise SettingError(where, "format", self.format.value, FLAT_ONLY + ': give format "tif"')
        if self.ui and not self.ui_token and not is_loopback(self.ui.rpartition(":")[0]):
            raise SettingError(where, "ui", self.ui, "the status page would be open to the network; give "
                               "ui_token (--ui-token TOKEN or @FILE) so that only those who have it see it")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (localhost, 127.x.x.x, ::1)."""
    import ipaddress
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


FLAT_ONLY = "the pyramid method gives a flat result only"
FIELDS = {f.name: f for f in fields(Settings)}


class SettingError(ValueError):
    """A value refused, naming where it was written: a file or a flag."""

    def __init__(self, where: str, name: str, value: Any, must: str):
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{name} = {value!r} must be {must}" if not must.startswith("the ")
                         else f"{prefix}{name} = {value!r}: {must}")


def places(name: str) -> tuple[str, ...]:
    return FIELDS[name].metadata["places"]


def parse(raw: dict[str, Any], place: str, where: str) -> dict[str, Any]:
    """Typed values from one file (``place`` CONFIG or MANIFEST; ``where`` names it in errors). Keys this
    place does not take, and values of the wrong type, are refused."""
    values = {}
    for name, value in raw.items():
        if name not in FIELDS or place not in places(name):
            known = sorted(n for n in FIELDS if place in places(n))
            raise ValueError(f"{where}: unknown setting {name!r} (known: {', '.join(known)})")
        try:
            values[name] = FIELDS[name].metadata["kind"].convert(value)
        except ValueError as e:
            raise SettingError(where, name, value, str(e)) from None
    return values


def to_json(values: dict[str, Any]) -> dict[str, Any]:
    """Typed values as JSON-ready data that ``parse`` reads back to the same values (the journal keeps a
    job's manifest settings so)."""
    return {name: FIELDS[name].metadata["kind"].to_json(value) for name, value in values.items()}


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "focusdrop" / "config.toml"


def read_config(path: Path | None) -> dict[str, Any]:
    """The config file's typed values ({} if the default file does not exist). Raises ValueError naming
    the file."""
    if path is None:
        path = default_config_path()
        if not path.exists():
            return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror or e})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a valid TOML file ({e})") from None
    return parse(raw, CONFIG, str(path))


def arrange(paths: list[Path], order: Order) -> list[Path]:
    """Frames in the order ``order`` asks for: by name (natural: frame_2 before frame_10), reversed, or as
    they come (given; auto, whose estimate starts from there)."""
    from focusdrop.engine.frames import natural_key
    if order is Order.NAME:
        return sorted(paths, key=natural_key)
    if order is Order.REVERSE:
        return sorted(paths, key=natural_key, reverse=True)
    return list(paths)


def say_hint(hint: Hint, place: str) -> str:
    """An engine Hint in the words of ``place``: a flag of that command, else a manifest key, else the
    config key; for example "to leave such frames out: --skip-unaligned"."""
    name, value, where = hint.setting, hint.value, places(hint.setting)
    shown = "…" if value is None else json.dumps(FIELDS[name].metadata["kind"].to_json(value))
    if place in COMMANDS and place in where:
        how = flag(name) if isinstance(value, bool) else \
            f"{flag(name)} {FIELDS[name].metadata['metavar'] or 'VALUE' if value is None else value}"
    elif place == MANIFEST and MANIFEST in where:
        how = f'"{name}": {shown} in the job\'s manifest.json'
    else:
        how = f"{name} = {shown} in {default_config_path()}"
    return f"{hint.purpose}: {how}"


def flag(name: str) -> str:
    return FIELDS[name].metadata["flag"] or "--" + name.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """Add ``command``'s flags from the table (each with dest = the setting's name, default None)."""
    for name, f in FIELDS.items():
        if command not in f.metadata["places"]:
            continue
        kind: Kind = f.metadata["kind"]
        if kind.switch:
            value = flag(name) != "--no-" + name.replace("_", "-")
            parser.add_argument(flag(name), dest=name, action="store_const", const=value, default=None,
                                help=f.metadata["help"])
            continue
        metavar = f.metadata["metavar"] or ("{" + ",".join(kind.choices) + "}" if kind.choices else None)
        bare = {} if f.metadata["bare"] is None else {"nargs": "?", "const": kind.from_text(f.metadata["bare"])}
        parser.add_argument(flag(name), dest=name, type=_argparse_type(kind), default=None, metavar=metavar,
                            help=_flag_help(f), **bare)


def _flag_help(f) -> str:
    default = f.default
    shown = default.value if isinstance(default, enum.Enum) else f"{default:g}" if isinstance(default, float) \
        else default
    return f.metadata["help"] + ("" if shown in (None, "") else f" (default {shown})")


def argument_type(name: str) -> Callable[[str], Any]:
    """An argparse ``type`` for setting ``name``: its value from text, or argparse's one-line error."""
    return _argparse_type(FIELDS[name].metadata["kind"])


def _argparse_type(kind: Kind) -> Callable[[str], Any]:
    def typed(text: str) -> Any:
        try:
            return kind.from_text(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{text!r} must be {e}") from None
    typed.__name__ = kind.must  # argparse names the type in some messages
    return typed


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (typed by ``add_flags``' parsers)."""
    return {name: getattr(args, name) for name in FIELDS if getattr(args, name, None) is not None}


def resolve(*layers: dict[str, Any], where: str = "", check: bool = True) -> Settings:
    """Defaults, then each layer of typed values in turn; the combination checked (not for ``focusdrop
    stack``, whose output file, not ``format``, says whether the result is layered: bridge.stacking)."""
    values: dict[str, Any] = {}
    for layer in layers:
        values.update(layer)
    return Settings().amended(values, where) if check else replace(Settings(), **values)


def markdown() -> str:
    """docs/settings.md: every setting with its flag, config key, manifest key and default."""
    rows = ["# Settings", "",
            "Generated from `bridge/settings.py` (`python -m focusdrop.bridge.settings > docs/settings.md`). "
            "Later places win: the default, then `~/.config/focusdrop/config.toml`, then the command line; a "
            "job's `manifest.json` amends them for that job.", "",
            "| setting | flag | config key | manifest key | default | what it does |", "|---|---|---|---|---|---|"]
    for name, f in FIELDS.items():
        p = f.metadata["places"]
        commands = " ".join(c for c in COMMANDS if c in p)
        flag_cell = f"`{flag(name)}` ({commands})" if commands else ""
        default = f.default.value if isinstance(f.default, enum.Enum) else f.default
        if isinstance(default, bool):
            default = str(default).lower()
        elif isinstance(default, float):
            default = f"{default:g}"
        elif isinstance(default, Path):
            default = "~/" + str(default.relative_to(Path.home())) if default.is_relative_to(Path.home()) else default
        rows.append(f"| {name} | {flag_cell} | {f'`{name}`' if CONFIG in p else ''} | "
                    f"{f'`{name}`' if MANIFEST in p else ''} | {'' if default in (None, '') else f'`{default}`'} | "
                    f"{f.metadata['help']}; {f.metadata['kind'].must} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
