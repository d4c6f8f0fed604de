#!/usr/bin/env python
"""Train the jet-image classifier whose embedding the image evaluation uses: `gsgm train-classifier`.
"""

from gsgm.cli import run_script

if __name__ == "__main__":
    run_script("train-classifier")
