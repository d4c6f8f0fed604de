"""Figure creation and saving with the mplhep style, without touching global matplotlib state.

Figures are built with :class:`matplotlib.figure.Figure` directly instead of ``pyplot``: no GUI backend
is needed (the command-line scripts still select Agg explicitly), nothing accumulates in pyplot's
figure registry, and importing gsgm.plotting does not change a notebook's backend. The mplhep style is
applied with :func:`style_context` around creating *and* saving a figure, because matplotlib reads
some style parameters when artists are made and others when the figure is drawn.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from gsgm.utils.atomic import atomic_path

# One colour per sample: truth first, then generated variants in the order given.
TRUTH_COLOR = "0.55"
MODEL_COLORS: tuple[str, ...] = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
FORMATS: tuple[str, ...] = ("png", "pdf")


@contextlib.contextmanager
def style_context() -> Iterator[None]:
    """mplhep's ROOT-like style (a neutral HEP look, not an experiment's) for the block."""
    import mplhep

    with matplotlib.rc_context(mplhep.style.ROOT):
        # Smaller than mplhep's default: our figures hold several panels side by side.
        with matplotlib.rc_context({"font.size": 14, "legend.fontsize": 11, "savefig.dpi": 110}):
            yield


def model_color(index: int) -> str:
    """Colour of the ``index``-th generated sample."""
    return MODEL_COLORS[index % len(MODEL_COLORS)]


def save_figure(
    figure: Figure, out_dir: str | os.PathLike, stem: str, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """Write ``figure`` as ``out_dir/stem.png`` and ``.pdf`` (each atomically); return the paths."""
    paths = []
    with style_context():
        for fmt in formats:
            path = Path(out_dir) / f"{stem}.{fmt}"
            with atomic_path(path) as tmp:
                # The temporary name ends in .tmp, so the format must be given explicitly.
                figure.savefig(tmp, format=fmt, bbox_inches="tight")
            paths.append(path)
    return paths
