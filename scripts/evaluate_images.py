#!/usr/bin/env python
"""Generated jet images vs truth (FD, pixel WD, DI, m/pT KS, Welch): `gsgm evaluate images`.
"""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("evaluate", "images")
