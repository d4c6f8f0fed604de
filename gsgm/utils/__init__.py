"""gsgm.utils."""
