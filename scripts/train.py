#!/usr/bin/env python
"""Train a model (any family) into a run directory, or continue it: `gsgm train`.

With no arguments: the paper's JetNet30 FPCD model on JetNet (see --help for the defaults)."""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("train")
