#!/usr/bin/env python
"""Truth vs generated jets per class: kinematics with ratio panels, average jet images: `gsgm plot jets`.
"""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("plot", "jets")
