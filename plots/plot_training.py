#!/usr/bin/env python
"""Training curves of a run (losses per epoch, learning rate): `gsgm plot training`.
"""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("plot", "training")
