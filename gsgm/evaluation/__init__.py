"""gsgm.evaluation."""
