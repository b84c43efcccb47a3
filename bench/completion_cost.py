#!/usr/bin/env python3
"""What typer's shell completion (``add_completion=True``) costs each start of ``nfd-hooks show``.

    .venv/bin/python bench/completion_cost.py

typer imports its completion modules (and shellingham) whether completion is on
or not; what completion adds per start is building its two options into the
click command. This builds the command ``run()`` builds for ``show`` with
completion on and off, interleaved, and prints the CPU time of each (median).
"""

import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import typer.main  # noqa: E402

from nfd_hooks import cli  # noqa: E402

ROUNDS, BUILDS = 15, 200


def build_ms(completion: bool) -> float:
    """CPU ms per build of the narrowed ``show`` command."""
    app = copy.copy(cli._narrowed(cli.app, ["show"]))
    app._add_completion = completion
    started = time.process_time()
    for _ in range(BUILDS):
        typer.main.get_command(app)
    return (time.process_time() - started) / BUILDS * 1000


def main() -> None:
    on, off = [], []
    for _ in range(ROUNDS):
        on.append(build_ms(True))
        off.append(build_ms(False))
    with_it, without = statistics.median(on), statistics.median(off)
    print(f"typer {typer.__version__}: show's command built in {with_it:.3f} ms with completion, "
          f"{without:.3f} ms without: {with_it - without:.3f} ms a start (CPU, median of {ROUNDS} x {BUILDS}, interleaved)")


if __name__ == "__main__":
    main()
