"""Entry point for ``python -m nfd_hooks`` and the ``nfd-hooks`` console script."""

import gc
import os
import sys


def main() -> None:
    """Run the CLI and leave at once; the hook is on the start path of the NFD pod.

    The modules typer and click load live until exit, so the collector is kept
    off while they load and they are then frozen out of later collections.
    Once ``run`` has returned, nothing is left to do but flush stdout and
    stderr: skipping the interpreter's teardown (freeing every module one by
    one) saves about 15 ms a start. Every file the CLI writes is closed (and
    fsynced) before ``run`` returns. The commands flush what they print
    (``cli._out``); should the last flush of stdout still fail, a run that
    succeeded says so in one line and exits 1 (EPIPE aside: its reader left),
    and the interpreter's own exit never retries it (a traceback).
    """
    gc.disable()
    from nfd_hooks.cli import run  # lazy: loaded with the collector off

    gc.freeze()
    gc.enable()
    code = run()
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        pass
    except (OSError, ValueError) as error:
        if code == 0:
            from nfd_hooks.errors import say

            say(f"error: cannot write to standard output: {getattr(error, 'strerror', None) or error}")
            code = 1
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


if __name__ == "__main__":
    main()
