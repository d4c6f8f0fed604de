#!/usr/bin/env python
"""Per-class statistics of the JetNet files in a directory: `gsgm inspect`."""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("inspect")
