#!/usr/bin/env python
"""Generate NC e- p DIS events with Pythia 8 into one HDF5 file: `gsgm make-data --kind dis`."""

import sys

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("make-data", argv=["--kind", "dis", *sys.argv[1:]])
