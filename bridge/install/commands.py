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
    catalog = Path(args.catalog).expanduser().resolve() if args.catalog else None
    record = Record(record_path(dest))
    chosen = adobe.APPLICATIONS + ("service",) if args.what == "all" else (args.what,)
    steps, skipped = [], []
    for what in chosen:
        try:
            written = _install_one(what, config, dest, args.colour_space, catalog, record)
        except adobe.NotInstalled as e:
            print(f"focusdrop: skipped {what}: {e}")
            skipped.append(what)
            continue
        for path in written:
            print(f"focusdrop: wrote {path}")
        steps += [service.NEXT_STEP[kind] for kind in dict.fromkeys(written.values())] if what == "service" \
            else [adobe.NEXT_STEP[what]]
    if len(skipped) == len(chosen):
        raise ValueError(f"nothing installed: {', '.join(skipped)} not found on this machine")
    for step in steps:
        print(f"focusdrop: left to do: {step}")
    return 0


def _install_one(what: str, config, dest: Path | None, colour_space: str, catalog: Path | None,
                 record: Record) -> dict[Path, str]:
    """Write one application's files (or the login service's), each noted in ``record`` as it is written.
    Returns {path: kind} of what was written. Raises adobe.NotInstalled, or ValueError naming a folder
    that cannot be written and the way out."""
    if what == "service":
        planned = {path: (kind, service.contents(kind, config.hot_folder, config.out))
                   for path, kind in service.service_files(dest).items()}
    else:
        planned = {folder / name: (what, data) for folder in adobe.targets(what, dest)
                   for name, data in adobe.files_for(what, config.hot_folder, config.out, colour_space).items()}
        if what == "lightroom" and catalog is not None:
            planned |= {path: (what, data) for path, data in
                        adobe.catalog_presets(catalog, config.hot_folder, colour_space).items()}
    written = {}
    for path, (kind, data) in planned.items():
        try:
            record.write_file(path, data)
        except OSError as e:
            folder = next((p for p in path.parents if p.is_dir()), path.parent)
            raise ValueError(f"{folder}: cannot write {what}'s files here ({e.strerror or e}); run the installer "
                             f"as a user who may write there (an administrator, for a folder under Program "
                             f"Files), or give --dest DIR and copy them by hand; focusdrop uninstall removes "
                             f"what was written so far") from None
        written[path] = kind
    return written


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
    p.add_argument("--catalog", metavar="PATH", help="a Lightroom catalogue (.lrcat, or its folder) that stores "
                   "presets with it (Catalog Settings > Presets): the export preset goes there too")
    p.add_argument("--config", help=f"settings file (default {default_config_path()})")
    p.set_defaults(run=install)
    p = commands.add_parser("uninstall", help="remove exactly what focusdrop install wrote")
    p.add_argument("--dest", help="the folder given to install --dest")
    p.set_defaults(run=uninstall)
