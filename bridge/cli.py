"""The ``focusdrop`` command: argument parsing, and turning every expected failure into one line and exit 2."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from focusdrop.bridge import bench, demo
from focusdrop.bridge.config import FORMATS, default_config_path, load_config, parse_white_balance
from focusdrop.bridge.journal import Journal
from focusdrop.bridge.service import Service
from focusdrop.bridge.cluster.commands import add_commands as add_cluster_commands
from focusdrop.bridge.install.commands import add_commands as add_install_commands
from focusdrop.bridge.jobs import LOG_NAME
from focusdrop.bridge.status import status_data, status_text
from focusdrop.bridge.stacking import stack_to_file
from focusdrop.engine.frames import FrameError, list_frames, natural_key
from focusdrop.engine.pipeline import METHODS, StackOptions

log = logging.getLogger("focusdrop")

EXIT_BAD_INPUT = 2


def input_frames(inputs: list[str], order: str) -> list[Path]:
    """Frame paths from files or one folder, in focus order: natural file-name order unless told."""
    paths = [Path(p) for p in inputs]
    for path in paths:
        if not path.exists():
            raise FrameError(path, "no such file or folder")
    if len(paths) == 1 and paths[0].is_dir():
        paths = list_frames(paths[0])
        if not paths:
            raise FrameError(inputs[0], "no TIFF, JPEG or PNG frames in this folder")
    elif any(p.is_dir() for p in paths):
        raise FrameError(next(p for p in paths if p.is_dir()), "is a folder; give one folder or only files")
    if order != "given":
        paths.sort(key=natural_key)  # "auto" starts from it: the frames' own order replaces it if clearly better
    if order == "reverse":
        paths.reverse()
    return paths


WHITE_BALANCE_HELP = ("raw frames' one white balance: as-shot (the reference frame's), daylight (the camera's), "
                      "or R,G,B multipliers such as 2.1,1,1.4")


def run_stack(args: argparse.Namespace) -> int:
    paths = input_frames(args.inputs, args.order)
    options = StackOptions(method=args.method, reference=args.reference, crop=not args.no_crop,
                           skip_unaligned=args.skip_unaligned, also_pyramid=args.pyramid_layer,
                           order="estimate" if args.order == "auto" else "given",
                           white_balance=parse_white_balance(args.white_balance))
    result, _ = stack_to_file(paths, [Path(args.output)], options,
                              Path(args.depthmap) if args.depthmap else None,
                              Path(args.report) if args.report else None, overwrite=args.overwrite)
    if args.timings:
        print("focusdrop: time per step: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()),
              file=sys.stderr)
    return 0


def run_watch(args: argparse.Namespace) -> int:
    overrides = {"inbox": args.inbox, "out": args.out, "quiet": args.quiet, "gap": args.gap,
                 "format": args.format, "method": args.method, "workers": args.workers,
                 "polling": args.polling or None, "give_up": args.give_up, "open": args.open or None,
                 "white_balance": args.white_balance, "cluster": args.cluster, "cluster_ca": args.cluster_ca,
                 "cluster_cert": args.cluster_cert, "cluster_fallback": args.cluster_fallback,
                 "insecure": args.insecure or None}
    config = load_config(Path(args.config) if args.config else None, overrides)
    logging.getLogger().handlers[0].setFormatter(logging.Formatter("%(asctime)s focusdrop: %(message)s"))
    if not args.verbose:
        logging.getLogger("focusdrop").setLevel(logging.INFO)
    Service(config).run()
    return 0


def run_status(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config) if args.config else None, {"inbox": args.inbox})
    journal_path = config.inbox / ".focusdrop" / "journal.sqlite"
    if not journal_path.exists():
        raise ValueError(f"{config.inbox}: not a FocusDrop hot folder yet (start focusdrop watch on it)")
    inside = (config.out.name,) if config.out.parent == config.inbox else ()
    data = status_data(Journal(journal_path), config.inbox, config.quiet, journal_path.parent / LOG_NAME,
                       args.last, inside)
    print(json.dumps(data, indent=1) if args.json else status_text(data))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="focusdrop", description="Focus stacking for product and macro "
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
    p.add_argument("--pyramid-layer", action="store_true",
                   help="in a .psd, add the pyramid method's result as a hidden top layer to paint detail from")
    p.add_argument("--method", choices=METHODS, default="depthmap",
                   help="depthmap: soft per-pixel choice of the sharpest frames (default); "
                        "pyramid: keep the strongest detail at every scale (fine crossing hairs)")
    p.add_argument("--depthmap", metavar="FILE", help="also write which frame each pixel came from "
                   "(8-bit grey: 0 = first frame, 255 = last)")
    p.add_argument("--order", choices=("auto", "name", "reverse", "given"), default="auto",
                   help="focus order (the PSD's layer order, and which frames are registered to which): auto "
                        "(default) finds it from the frames when file-name order is clearly wrong; name, "
                        "reverse (of name) or given (as listed) force that order")
    p.add_argument("--reference", type=int, metavar="N", help="align to frame N (0-based; default: middle)")
    p.add_argument("--no-crop", action="store_true",
                   help="keep the reference frame's full size instead of the area every frame covers")
    p.add_argument("--skip-unaligned", action="store_true",
                   help="leave out, with a warning, frames that cannot be aligned instead of failing")
    p.add_argument("--overwrite", action="store_true", help="replace the output, depth map or report if it "
                   "exists (never an input frame)")
    p.add_argument("--white-balance", default="as-shot", metavar="WB", help=WHITE_BALANCE_HELP + " (default as-shot)")
    p.add_argument("--timings", action="store_true", help="print the time spent in each step")
    p.add_argument("--report", metavar="FILE", help="write a JSON report: output area, each frame's "
                   "transform to the reference, gain and matches, time per step")
    p.set_defaults(run=run_stack)

    p = commands.add_parser("watch", help="watch a hot folder: stack each bracket that lands in it",
                            parents=[verbose])
    p.add_argument("inbox", nargs="?", metavar="IN", help="the hot folder (default: from the config file, "
                   "else ~/FocusDrop/In)")
    p.add_argument("--out", help="where results go (default: from the config file, else ~/FocusDrop/Out)")
    p.add_argument("--config", help=f"settings file (default {default_config_path()})")
    p.add_argument("--quiet", type=float, help="seconds without a new frame that end a stack (default 10)")
    p.add_argument("--gap", type=float, help="capture-time gap, seconds, that splits two stacks (default 60)")
    p.add_argument("--format", choices=FORMATS, help="psd (default), tif, or both")
    p.add_argument("--method", choices=METHODS, help="fusion method (default depthmap)")
    p.add_argument("--workers", type=int, help="stacks processed at once (default 1)")
    p.add_argument("--polling", action="store_true", help="poll the folder: for SMB/NFS shares")
    p.add_argument("--open", action="store_true", help="open each new result in the system's default "
                   "application for it (Photoshop, for PSD, where installed)")
    p.add_argument("--give-up", type=float, metavar="SECONDS", help="how long an empty, cut-off or unreadable "
                   "file may sit unchanged before it goes to failed/ with an error.txt (default 60)")
    p.add_argument("--white-balance", metavar="WB", help=WHITE_BALANCE_HELP + " (default as-shot; a manifest's "
                   "white_balance wins)")
    p.add_argument("--cluster", metavar="ADDRESS", help="stack on a Dask cluster: its scheduler, tls://HOST:8786 "
                   "(the hot folder and output folder must be on a share its workers mount)")
    p.add_argument("--cluster-ca", metavar="FILE", help="the studio's ca.pem (focusdrop cluster certs)")
    p.add_argument("--cluster-cert", metavar="FILE", help="this machine's NAME.pem (focusdrop cluster certs)")
    p.add_argument("--cluster-fallback", choices=("local",), help="local: stack on this machine while the "
                   "scheduler cannot be reached (default: stacks wait for it)")
    p.add_argument("--insecure", action="store_true", help="allow a tcp:// scheduler (no encryption, no "
                   "certificates: anyone who reaches it runs code on every worker)")
    p.set_defaults(run=run_watch)

    p = commands.add_parser("status", help="show the hot folder's queue: waiting, running, done, failed")
    p.add_argument("inbox", nargs="?", metavar="IN", help="the hot folder (default: from the config file)")
    p.add_argument("--config", help=f"settings file (default {default_config_path()})")
    p.add_argument("--last", type=int, default=10, help="how many recent stacks to list (default 10)")
    p.add_argument("--json", action="store_true", help="print it as JSON (for scripts and the Lightroom plug-in)")
    p.set_defaults(run=run_status)

    add_install_commands(commands)
    add_cluster_commands(commands)

    p = commands.add_parser("demo", help="the real job on a generated bracket: a hot folder, an export "
                                         "into it, a layered PSD out")
    p.add_argument("--dir", help="where to put the bracket and the result (default: a new temporary folder)")
    p.set_defaults(run=demo.run)

    p = commands.add_parser("bench", help="measure time per step and peak memory on a generated bracket")
    p.add_argument("--size", default="3000x2000", help="frame size WxH (default 3000x2000)")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--bits", type=int, choices=(8, 16), default=16)
    p.add_argument("--method", choices=METHODS, default="depthmap")
    p.add_argument("--format", choices=("tif", "psd"), default="tif", help="result format (default tif)")
    p.add_argument("--raw", action="store_true", help="a DNG bracket (Bayer, 14-bit): reports the decoding time")
    p.add_argument("--dir", help="keep the bracket here (default: a temporary folder, removed after)")
    p.set_defaults(run=bench.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="focusdrop: %(message)s", level=logging.WARNING)
    logging.getLogger("focusdrop").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return args.run(args)
    except (FrameError, ValueError) as e:
        print(f"focusdrop: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as e:
        print(f"focusdrop: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("focusdrop: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
