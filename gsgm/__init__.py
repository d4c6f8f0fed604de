"""gsgm: diffusion-model simulation for particle physics in Keras 3 / TensorFlow."""

__version__ = "0.1.0"
