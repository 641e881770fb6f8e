"""``python -m socialmirror ...`` (and ``torchrun -m socialmirror train ...``): the ``socialmirror`` command."""
import sys

from socialmirror.cli import main

sys.exit(main())
