#!/usr/bin/env python
"""Generation time per jet vs diffusion steps (FPCD Table V) from timing files: `gsgm plot timing`.
"""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("plot", "timing")
