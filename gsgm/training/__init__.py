"""gsgm.training."""
