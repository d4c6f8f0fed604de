"""gsgm.plotting."""
