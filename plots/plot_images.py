#!/usr/bin/env python
"""Jet images per class and m/pT (jet-image paper Figs. 5-8): `gsgm plot images`.
"""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("plot", "images")
