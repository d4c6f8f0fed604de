#!/usr/bin/env python
"""Progressive distillation of a trained run, stage by stage: `gsgm distill`."""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("distill")
