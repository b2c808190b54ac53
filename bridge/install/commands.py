"""``focusdrop install`` and ``focusdrop uninstall``: write (or remove) what each application needs."""
from __future__ import annotations

import argparse
from pathlib import Path

from focusdrop.bridge.install import adobe, service
from focusdrop.bridge.install.record import Record
from focusdrop.bridge.settings import INSTALL, add_flags, default_config_path, from_args, read_config, resolve

WHAT = adobe.APPLICATIONS + ("service", "all")


def record_path(dest: Path | None) -> Path:
    """Where the record of an install lives: inside ``dest``, else beside the config file."""
    return dest / ".focusdrop-installed.json" if dest else default_config_path().parent / "installed.json"


def install(args: argparse.Namespace) -> int:
    config = resolve(read_config(Path(args.config) if args.config else None), from_args(args))
    dest = Path(args.dest).expanduser().resolve() if args.dest else None
    if dest is not None and not dest.is_dir():
        raise ValueError(f"{dest}: --dest must be an existing folder")
    record = Record(record_path(dest))
    chosen = adobe.APPLICATIONS + ("service",) if args.what == "all" else (args.what,)
    steps = []
    for what in chosen:
        if what == "service":
            for path, kind in service.service_files(dest).items():
                record.write_file(path, service.contents(kind, config.hot_folder, config.out))
                print(f"focusdrop: wrote {path}")
                steps.append(service.NEXT_STEP[kind])
            continue
        for folder in adobe.targets(what, dest):
            for name, data in adobe.files_for(what, config.hot_folder, config.out, args.colour_space).items():
                record.write_file(folder / name, data)
                print(f"focusdrop: wrote {folder / name}")
        steps.append(adobe.NEXT_STEP[what])
    record.save()
    for step in steps:
        print(f"focusdrop: left to do: {step}")
    return 0


def uninstall(args: argparse.Namespace) -> int:
    dest = Path(args.dest).expanduser().resolve() if args.dest else None
    path = record_path(dest)
    if not path.exists():
        raise ValueError(f"{path}: no record of an install here; nothing removed")
    for removed in Record(path).remove_all():
        print(f"focusdrop: removed {removed}")
    return 0


def add_commands(commands) -> None:
    """The install and uninstall subcommands, on the ``focusdrop`` parser's subparsers."""
    p = commands.add_parser("install", help="install the Lightroom preset, the Bridge and Photoshop scripts, "
                                            "or the login service")
    p.add_argument("what", choices=WHAT)
    add_flags(p, INSTALL)  # --hot-folder, --out
    p.add_argument("--colour-space", choices=tuple(adobe.COLOUR_SPACES), default="prophoto",
                   help="the Lightroom preset's colour space (default prophoto)")
    p.add_argument("--dest", help="write into this folder instead of the applications' own (required where "
                                  "Adobe's applications do not run)")
    p.add_argument("--config", help=f"settings file (default {default_config_path()})")
    p.set_defaults(run=install)
    p = commands.add_parser("uninstall", help="remove exactly what focusdrop install wrote")
    p.add_argument("--dest", help="the folder given to install --dest")
    p.set_defaults(run=uninstall)
