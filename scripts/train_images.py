#!/usr/bin/env python
"""Train a jet-image model (score or consistency) into a run directory: `gsgm train --model ...`.

Example:
    python scripts/train_images.py --model score --config configs/images_quick.json --data builtin \\
        --out runs/img_score
"""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("train")
