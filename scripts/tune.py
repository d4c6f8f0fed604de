#!/usr/bin/env python
"""Hyperband search (KerasTuner) over architecture and learning rate: `gsgm tune`."""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("tune")
