"""Entry point for ``python -m nfd_hooks`` and the ``nfd-hooks`` console script."""

import sys


def main() -> None:
    """Run the CLI; imported lazily so ``python -m nfd_hooks --version`` stays cheap."""
    from nfd_hooks.cli import run

    sys.exit(run())


if __name__ == "__main__":
    main()
