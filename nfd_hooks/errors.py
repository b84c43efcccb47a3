"""One exception hierarchy, mapped by the CLI to documented exit codes, and the
one way a message reaches stderr (``say``).

Exit codes: 0 success (a node without a devicetree is a success), 1 the output
could not be produced or written, 2 bad input the user named.
"""

import re
import sys

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """``text`` with control characters escaped (``\\n``): paths and node names
    come from the node and may hold newlines, yet each message stays one line."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def say(message: str) -> None:
    """``message`` as one line on stderr, ``nfd-hooks: message`` (errors, notices, progress),
    flushed at once: ``watch`` runs for days and its log must keep up."""
    print(f"nfd-hooks: {one_line(message)}", file=sys.stderr, flush=True)


class NfdHooksError(Exception):
    """Base class: the message is one line meant for stderr."""

    exit_code = 1


class InputError(NfdHooksError):
    """Input the user named is unusable (a corrupt DTB, a bad flag value)."""

    exit_code = 2


class OutputError(NfdHooksError):
    """The features file cannot be rendered or written."""

    exit_code = 1


class Terminated(NfdHooksError):
    """SIGTERM arrived mid-write; the temporary file is gone, the old file unchanged."""

    exit_code = 143  # 128 + SIGTERM, what a shell reports for a process it ended
