"""``python -m openl3lite``: the ``l3embed`` command line."""

from openl3lite.cli import main

if __name__ == "__main__":
    main(prog_name="l3embed")
