"""``gsgm inspect``: per-class statistics of the JetNet files in a directory (or of generated samples)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from gsgm.utils.cli import class_list

NAME = "inspect"
HELP = "per-class statistics of JetNet-format files (data or generated samples)"
DESCRIPTION = """Print per-class statistics of the JetNet files in a directory.

Examples:
    gsgm inspect builtin                      # shipped sample, 30 particles (= scripts/inspect_data.py)
    gsgm inspect ~/jetnet --particles 150 --classes g,t
    gsgm inspect runs/quick/samples --json       # stdout is pure JSON

Exit codes: 0 success, 2 bad arguments or missing/invalid data (message on stderr).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="directory with g.hdf5 ... z.hdf5 (or g150.hdf5 ...), or 'builtin'")
    parser.add_argument(
        "--particles",
        type=int,
        choices=(30, 150),
        default=None,
        help="30 or 150 particles per jet (default: whichever files exist, 30 if both)",
    )
    parser.add_argument(
        "--classes",
        type=class_list,
        default=None,
        help="comma-separated classes, e.g. g,q (default: all present)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of a table (stdout is pure JSON)"
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="first fetch missing files from Zenodo through the jetnet package (needs internet)",
    )


def run(args: argparse.Namespace) -> int:
    from gsgm.data.jetnet_format import JET_CLASSES, JetNetFormatError, parse_classes
    from gsgm.data.loading import BUILTIN, detect_num_particles, download_with_jetnet, resolve_data_dir
    from gsgm.data.summary import format_table, summarize

    classes = parse_classes(args.classes) if args.classes is not None else None
    directory = resolve_data_dir(args.directory)
    if args.download:
        if args.directory == BUILTIN:
            raise ValueError("--download needs a directory of your own, not the shipped 'builtin' sample")
        try:
            # jetnet prints progress on stdout; keep stdout for our table/JSON.
            with contextlib.redirect_stdout(sys.stderr):
                download_with_jetnet(directory, classes or list(JET_CLASSES), args.particles or 30)
        except (JetNetFormatError, OSError) as err:
            raise ValueError(f"download failed: {err}") from None
        except Exception as err:  # jetnet/requests errors (no internet, Zenodo down) have many types
            raise ValueError(f"download through jetnet failed ({type(err).__name__}): {err}") from None
    num_particles = args.particles or detect_num_particles(directory, classes)
    summary = summarize(directory, classes=classes, num_particles=num_particles)
    if args.json:
        payload = {"directory": str(directory), "num_particles": num_particles, "classes": summary}
        print(json.dumps(payload, indent=2))
    else:
        print(f"{directory}  ({num_particles} particles per jet)")
        print(format_table(summary))
    return 0
