#!/usr/bin/env python
"""Print per-class statistics of the JetNet files in a directory.

Examples:
    python scripts/inspect_data.py builtin                 # shipped sample, 30 particles
    python scripts/inspect_data.py ~/jetnet --particles 150 --classes g,t
    python scripts/inspect_data.py builtin --json          # stdout is pure JSON

Exit codes: 0 success, 2 bad arguments or missing/invalid data (message on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

# Let ``python scripts/inspect_data.py`` work from a checkout without installing gsgm.
_ROOT = Path(__file__).resolve().parents[1]
if (_ROOT / "gsgm").is_dir() and str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from gsgm.data.jetnet_format import JET_CLASSES, PARTICLE_COUNTS, JetNetFormatError, parse_classes  # noqa: E402
from gsgm.data.loading import (  # noqa: E402
    BUILTIN,
    MissingDataError,
    detect_num_particles,
    download_with_jetnet,
    resolve_data_dir,
)
from gsgm.data.summary import format_table, summarize  # noqa: E402

PROG = "inspect_data.py"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", help="directory with g.hdf5 ... z.hdf5 (or g150.hdf5 ...), or 'builtin'")
    parser.add_argument(
        "--particles",
        type=int,
        choices=PARTICLE_COUNTS,
        default=None,
        help="30 or 150 particles per jet (default: whichever files exist, 30 if both)",
    )
    parser.add_argument(
        "--classes", default=None, help="comma-separated classes, e.g. g,q (default: all present)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of a table (stdout is pure JSON)"
    )
    parser.add_argument(
        "--download",
        action="store_true",
        help="first fetch missing files from Zenodo through the jetnet package (needs internet)",
    )
    return parser


def fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        classes = parse_classes(args.classes) if args.classes is not None else None
    except ValueError as err:
        return fail(str(err))
    directory = resolve_data_dir(args.directory)
    if args.download:
        if args.directory == BUILTIN:
            return fail("--download needs a directory of your own, not the shipped 'builtin' sample")
        try:
            # jetnet prints progress on stdout; keep stdout for our table/JSON.
            with contextlib.redirect_stdout(sys.stderr):
                download_with_jetnet(directory, classes or list(JET_CLASSES), args.particles or 30)
        except (JetNetFormatError, OSError) as err:
            return fail(f"download failed: {err}")
        except Exception as err:  # jetnet/requests errors (no internet, Zenodo down) have many types
            return fail(f"download through jetnet failed ({type(err).__name__}): {err}")
    try:
        num_particles = args.particles or detect_num_particles(directory, classes)
        summary = summarize(directory, classes=classes, num_particles=num_particles)
    except (MissingDataError, JetNetFormatError) as err:
        return fail(str(err))
    except FileNotFoundError as err:  # e.g. a file removed while reading
        return fail(str(err))

    if args.json:
        payload = {"directory": str(directory), "num_particles": num_particles, "classes": summary}
        print(json.dumps(payload, indent=2))
    else:
        print(f"{directory}  ({num_particles} particles per jet)")
        print(format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
