#!/usr/bin/env python
"""Sample from a trained run into sample files (FPCD: JetNet-format class files + timing): `gsgm sample`.

Example:
    python scripts/sample.py --run runs/quick --jets-per-class 1000 --steps 64 --out runs/quick/samples
"""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("sample")
