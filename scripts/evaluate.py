#!/usr/bin/env python
"""Generated jets vs truth: FPCD metrics per class with the truth-vs-truth floor: `gsgm evaluate jets`.
"""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("evaluate", "jets")
