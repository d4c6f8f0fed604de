#!/usr/bin/env python
"""Train a jet-image diffusion model (score-based VE SDE or consistency model) into a run directory.

Examples:
    python scripts/train_images.py --model score --config configs/images_quick.json --data builtin \\
        --out runs/img_score
    python scripts/train_images.py --model consistency --config configs/images_quick.json --data builtin \\
        --out runs/img_ct
    python scripts/train_images.py --model consistency --mode distill --teacher runs/img_score \\
        --config configs/images_quick.json --data builtin --out runs/img_cd
    python scripts/train_images.py --model score --out runs/img_score --resume   # after an interruption
"""

from __future__ import annotations

import argparse

from gsgm.utils.cli import quiet_tensorflow, run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, choices=("score", "consistency"))
    parser.add_argument(
        "--mode",
        default="isolation",
        choices=("isolation", "distill"),
        help="consistency model: consistency training (isolation, default) or distillation from --teacher",
    )
    parser.add_argument("--teacher", help="trained score run to distil from (--mode distill)")
    parser.add_argument("--config", help="JSON config (configs/images_*.json); not needed with --resume")
    parser.add_argument("--data", default="builtin", help="directory of JetNet files, or 'builtin' (default)")
    parser.add_argument("--out", required=True, help="run directory to create (or to resume)")
    parser.add_argument("--epochs", type=int, help="override training.epochs")
    parser.add_argument("--seed", type=int, help="override training.seed")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    parser.add_argument("--max-jets-per-class", type=int, help="use only this many training jets per class")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras verbosity")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if not args.resume and not args.config:
        raise ValueError("--config is required unless --resume is given")
    quiet_tensorflow()
    from gsgm.training.image_training import train_images

    run = train_images(
        args.config,
        args.model,
        args.data,
        args.out,
        mode=args.mode,
        teacher=args.teacher,
        epochs=args.epochs,
        resume=args.resume,
        seed=args.seed,
        max_jets_per_class=args.max_jets_per_class,
        verbose=args.verbose,
    )
    history = run.read_history()
    if history:
        best = min(history, key=lambda row: row["val_loss"])
        print(
            f"trained {len(history)} epochs into {run.path}; best val_loss {best['val_loss']:.4g} "
            f"at epoch {int(best['epoch'])}"
        )
    return 0


if __name__ == "__main__":
    run_cli(main)
