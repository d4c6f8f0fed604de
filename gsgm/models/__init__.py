"""gsgm.models."""
