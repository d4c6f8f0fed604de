#!/usr/bin/env python
"""Sample jet images from a trained score or consistency run into one HDF5 file: `gsgm sample`.

Example:
    python scripts/sample_images.py --run runs/img_score --images-per-class 300 --steps 15 \\
        --out runs/img_score/samples.h5
"""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("sample")
