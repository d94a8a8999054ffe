"""``python -m launcher``: the whole stack on one machine (README command 1)."""

from launcher.stack import main

if __name__ == "__main__":
    raise SystemExit(main())
