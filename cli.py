"""Run the ``l3embed`` command line from a source checkout: ``python cli.py audio FILE.wav``.

The real CLI lives in :mod:`openl3lite.cli`; an installed package provides ``l3embed``.
"""

from openl3lite.cli import main

if __name__ == "__main__":
    main()
