"""``python -m clvmodel``: the ``clvmodel`` console script (:func:`clvmodel.cli.main`) for an
environment whose scripts folder is not on ``PATH`` (a venv used without activating it)."""

from clvmodel.cli import main

if __name__ == "__main__":
    main()
