"""Facts of the JetNet dataset that the config layer needs to validate against.

They live at the bottom of the package (with gsgm.config) rather than in gsgm.data so that validating a
config never imports the data stack (h5py, numpy); :mod:`gsgm.data.jetnet_format` re-exports them.
"""

from __future__ import annotations

#: JetNet's jet classes in label order (gluon, light quark, top, W, Z); a class label indexes this.
JET_CLASSES: tuple[str, ...] = ("g", "q", "t", "w", "z")
#: Particle slots of the two JetNet variants.
NUM_PARTICLES: tuple[int, ...] = (30, 150)
