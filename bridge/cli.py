"""The ``focusdrop`` command: argument parsing, and turning every expected failure into one line and exit 2.

Each command imports what it runs when it runs. Settings come from bridge.settings (flags, config file);
an engine Hint is worded here as the flag, or for the service as the manifest key, that acts on it.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from focusdrop.bridge import settings as setting
from focusdrop.bridge.settings import (MANIFEST, STACK, WATCH, Order, argument_type, default_config_path,
                                       from_args, read_config, resolve, say_hint)

log = logging.getLogger("focusdrop")

EXIT_BAD_INPUT = 2


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments in one line, as every other error: ``focusdrop: error: ...``, exit 2. No abbreviated
    flags: --out must not be taken for --output."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"focusdrop: error: {message} (focusdrop {self.prog.partition(' ')[2] or ''} "
                                  f"--help lists the options)\n".replace("  --help", " --help"))


class HintWording(logging.Filter):
    """Appends an engine log record's Hint (``extra={"hint": ...}``) in the words of ``place``."""

    def __init__(self, place: str):
        super().__init__()
        self.place = place

    def filter(self, record: logging.LogRecord) -> bool:
        hint = getattr(record, "hint", None)
        if hint is not None:
            record.msg, record.args, record.hint = f"{record.getMessage()} ({say_hint(hint, self.place)})", (), None
        return True


def input_frames(inputs: list[str], order: Order) -> list[Path]:
    """Frame paths from files or one folder, in the order ``order`` asks for; "auto" starts from natural
    file-name order (the frames' own order replaces it where clearly better)."""
    from focusdrop.engine.frameinfo import FrameError
    from focusdrop.engine.frames import list_frames
    paths = [Path(p) for p in inputs]
    for path in paths:
        if not path.exists():
            raise FrameError(path, "no such file or folder")
    if len(paths) == 1 and paths[0].is_dir():
        paths = list_frames(paths[0])
        if not paths:
            raise FrameError(inputs[0], "no TIFF, JPEG, PNG or raw frames in this folder")
    elif any(p.is_dir() for p in paths):
        raise FrameError(next(p for p in paths if p.is_dir()), "is a folder; give one folder or only files")
    return setting.arrange(paths, Order.NAME if order is Order.AUTO else order)


def run_stack(args: argparse.Namespace) -> int:
    from focusdrop.bridge.progress import ProgressBar
    from focusdrop.bridge.stacking import stack_to_file
    chosen = resolve(from_args(args), check=False)
    paths = input_frames(args.inputs, chosen.order)
    started = time.perf_counter()
    result, written = stack_to_file(paths, [Path(args.output)], chosen.stack_options(),
                                    Path(args.depthmap) if args.depthmap else None,
                                    Path(args.report) if args.report else None, args.overwrite, ProgressBar(),
                                    Path(args.report_html) if args.report_html else None)
    h, w, _ = result.image.shape
    print(f"focusdrop: wrote {', '.join(map(str, written))} ({w}x{h}, {result.image.dtype.itemsize * 8}-bit) "
          f"from {len(result.alignment.frames)} frames in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.timings:
        print("focusdrop: time per step: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()),
              file=sys.stderr)
    return 0


def service_settings(args: argparse.Namespace) -> setting.Settings:
    """The config file's settings, then the command line's; a combination that does not go together is
    named where it was written."""
    config_path = Path(args.config) if args.config else None
    config, given = read_config(config_path), from_args(args)
    where = "the command line" if {"method", "format", "ui", "ui_token"} & given.keys() \
        else str(config_path or default_config_path())
    return resolve(config, given, where=where)


def run_watch(args: argparse.Namespace) -> int:
    from focusdrop.bridge.hotfolder.service import Service
    chosen = service_settings(args)
    logging.getLogger().handlers[0].setFormatter(logging.Formatter("%(asctime)s focusdrop: %(message)s"))
    if not args.verbose:
        log.setLevel(logging.INFO)
    service = Service(chosen)
    page = None
    if chosen.ui:
        from focusdrop.bridge.statuspage.server import StatusPage
        page = StatusPage(chosen).start()
    try:
        service.run()
    finally:
        if page is not None:
            page.close()
    return 0


def run_ui(args: argparse.Namespace) -> int:
    from focusdrop.bridge.hotfolder.layout import Layout
    from focusdrop.bridge.statuspage.server import StatusPage
    chosen = service_settings(args)
    if not Layout(chosen.hot_folder, chosen.out).journal.exists():
        raise ValueError(f"{chosen.hot_folder}: not a FocusDrop hot folder yet (start focusdrop watch on it)")
    logging.getLogger().handlers[0].setFormatter(logging.Formatter("%(asctime)s focusdrop: %(message)s"))
    log.setLevel(logging.INFO)
    StatusPage(chosen).serve()
    return 0


def run_status(args: argparse.Namespace) -> int:
    from focusdrop.bridge.hotfolder.journal import Journal
    from focusdrop.bridge.hotfolder.layout import Layout
    from focusdrop.bridge.hotfolder.status import status_data, status_text
    chosen = service_settings(args)
    layout = Layout(chosen.hot_folder, chosen.out)
    if not layout.journal.exists():
        raise ValueError(f"{layout.hot_folder}: not a FocusDrop hot folder yet (start focusdrop watch on it)")
    data = status_data(Journal(layout.journal), layout, chosen.quiet, args.last, chosen.max_megapixels)
    print(json.dumps(data, indent=1) if args.json else status_text(data))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from focusdrop.bridge.demo import run
    return run(args)


def run_bench(args: argparse.Namespace) -> int:
    from focusdrop.bridge.bench import run
    return run(args)


def _hot_folder_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hot_folder", nargs="?", metavar="HOT_FOLDER", type=argument_type("hot_folder"),
                        help="the hot folder (default: hot_folder in the config file, else ~/FocusDrop/In)")
    parser.add_argument("--config", help=f"settings file (default {default_config_path()})")


def build_parser() -> argparse.ArgumentParser:
    from focusdrop.bridge.cluster.commands import add_commands as add_cluster_commands
    from focusdrop.bridge.install.commands import add_commands as add_install_commands
    parser = OneLineParser(prog="focusdrop", description="Focus stacking for product and macro "
                                     "photography: align a focus bracket and fuse it into one sharp image.")
    verbose = argparse.ArgumentParser(add_help=False)  # -v before or after the command
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="log each frame's transform and gain")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each frame's transform and gain")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("stack", help="align and fuse one focus bracket", parents=[verbose])
    p.add_argument("inputs", nargs="+", help="the frames (TIFF, JPEG, PNG, camera raw), or one folder holding them")
    p.add_argument("-o", "--output", required=True,
                   help="result file: .psd (one masked layer per frame, to refine in Photoshop, GIMP, Affinity "
                        "or Krita; .psb past 2 GB), or a flat .tif, .png or .jpg")
    p.add_argument("--depthmap", metavar="FILE", help="also write which frame each pixel came from "
                   "(8-bit grey: 0 = first frame, 255 = last)")
    p.add_argument("--report", metavar="FILE", help="write a JSON report: output area, each frame's "
                   "transform to the reference, gain and matches, time per step")
    p.add_argument("--report-html", metavar="FILE", help="write a report page (one self-contained .html): the "
                   "result and a 100 %% crop, the depth map, each frame with its mask and share, alignment and "
                   "flicker plots, warnings; with the result's preview beside it as FILE's name .jpg")
    p.add_argument("--overwrite", action="store_true", help="replace the output, depth map or report if it "
                   "exists (never an input frame)")
    p.add_argument("--timings", action="store_true", help="print the time spent in each step")
    setting.add_flags(p, STACK)
    p.set_defaults(run=run_stack, place=STACK)

    p = commands.add_parser("watch", help="watch a hot folder: stack each bracket that lands in it",
                            parents=[verbose])
    _hot_folder_argument(p)
    setting.add_flags(p, WATCH)
    p.set_defaults(run=run_watch, place=MANIFEST)

    p = commands.add_parser("status", help="show the hot folder's queue: waiting, running, done, failed")
    _hot_folder_argument(p)
    p.add_argument("--last", type=int, default=10, help="how many recent stacks to list (default 10)")
    p.add_argument("--json", action="store_true", help="print it as JSON (for scripts and the Lightroom plug-in)")
    p.set_defaults(run=run_status)

    p = commands.add_parser("ui", help=f"serve the status page of a hot folder whose service runs apart "
                                       f"(default http://{setting.UI_ADDRESS}/)")
    _hot_folder_argument(p)
    setting.add_flags(p, setting.UI)
    p.set_defaults(run=run_ui)

    add_install_commands(commands)
    add_cluster_commands(commands)

    p = commands.add_parser("demo", help="the real job on a generated bracket: a hot folder, an export "
                                         "into it, a layered PSD out")
    p.add_argument("--dir", help="where to put the bracket and the result (default: a new temporary folder)")
    p.set_defaults(run=run_demo)

    p = commands.add_parser("bench", help="measure time per step and peak memory on a generated bracket")
    p.add_argument("--size", default="3000x2000", help="frame size WxH (default 3000x2000)")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--bits", type=int, choices=(8, 16), default=16)
    p.add_argument("--method", choices=[m.value for m in setting.Method], default="depthmap")
    p.add_argument("--format", choices=("tif", "psd"), default="tif", help="result format (default tif)")
    p.add_argument("--raw", action="store_true", help="a DNG bracket (Bayer, 14-bit): reports the decoding time")
    p.add_argument("--live", action="store_true", help="feed the frames to a watched hot folder as tethered "
                   "shooting does; time the result after the last frame")
    p.add_argument("--interval", type=float, default=1.0, help="with --live: seconds between frames (default 1)")
    p.add_argument("--no-count", action="store_true", help="with --live: loose frames, no manifest count (the "
                   "quiet period ends the bracket)")
    p.add_argument("--quiet", type=float, default=3.0, help="with --live: the service's quiet period (default 3)")
    p.add_argument("--dir", help="keep the bracket here (default: a temporary folder, removed after)")
    p.set_defaults(run=run_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    from focusdrop.engine.frameinfo import FrameError
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="focusdrop: %(message)s", level=logging.WARNING)
    log.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    place = getattr(args, "place", STACK)
    for added in [f for f in log.filters if isinstance(f, HintWording)]:  # main() run again in one process
        log.removeFilter(added)
    log.addFilter(HintWording(place))
    try:
        return args.run(args)
    except (FrameError, ValueError) as e:
        hint = getattr(e, "hint", None)
        print(f"focusdrop: error: {e}" + (f" ({say_hint(hint, place)})" if hint else ""), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as e:
        print(f"focusdrop: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("focusdrop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
