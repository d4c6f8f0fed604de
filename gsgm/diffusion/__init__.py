"""gsgm.diffusion."""
