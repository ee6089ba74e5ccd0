"""``python -m openl3lite``: the ``l3embed`` command line.

As OpenL3's ``openl3/__main__.py``, importing this module runs the command line on
``sys.argv`` (``python -m openl3lite audio x.wav``); it returns after a successful run.
"""

from openl3lite.cli import main

main(prog_name="l3embed")
