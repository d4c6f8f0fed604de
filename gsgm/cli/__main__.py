"""``python -m gsgm.cli`` is the ``gsgm`` command (for environments without the console script)."""

from gsgm.cli import main

main()
