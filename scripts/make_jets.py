#!/usr/bin/env python
"""Generate JetNet-format jets with Pythia 8 + FastJet: `gsgm make-data`."""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("make-data")
