#!/usr/bin/env python
"""Simulate calorimeter photon showers (GFlash stand-in, or Geant4 where installed): `gsgm make-showers`."""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("make-showers")
