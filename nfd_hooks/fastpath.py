"""A strict reading of the everyday command lines, so they skip typer's parsing.

typer >= 0.22 validates every non-flag option through a pydantic TypeAdapter:
importing pydantic and building the adapters costs about three times the
whole scan and ten megabytes, on the start path of the NFD worker pod. This
module accepts only ``COMMAND`` followed by known long options, each value
plain (not empty, not starting with ``-``, printable) and each single option
given once, and converts values exactly as typer would. For anything else (help,
a typo, a bad value, an unreadable path, shell completion) it answers None and
the caller hands the command line to typer, which gives its usual answer;
tests/test_fastpath.py holds the two paths to the same bytes and exit codes.
"""

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

# typer answers shell-completion requests when this is set (prog_name nfd-hooks).
COMPLETE_VAR = "_NFD_HOOKS_COMPLETE"


@dataclass(frozen=True)
class Spec:
    """How one option maps onto a command parameter.

    ``convert`` None makes a flag (True when present); ``multiple`` collects a list.
    """

    parameter: str
    convert: Optional[Callable[[str], Any]] = None
    multiple: bool = False


Parsed = Tuple[Callable[..., Any], Dict[str, Any]]


def parse(argv: Sequence[str], commands: Dict[str, Callable[..., Any]], options: Dict[str, Spec]) -> Optional[Parsed]:
    """The command and its keyword arguments, or None when typer must decide."""
    if not argv or argv[0] not in commands or os.environ.get(COMPLETE_VAR):
        return None
    command = commands[argv[0]]
    signature = inspect.signature(command)
    values: Dict[str, Any] = {}
    tokens = iter(argv[1:])
    for token in tokens:
        name, equals, inline = token.partition("=")
        spec = options.get(name)
        if spec is None or spec.parameter not in signature.parameters:
            return None
        if spec.convert is None:
            if equals or spec.parameter in values:
                return None
            values[spec.parameter] = True
            continue
        value = inline if equals else next(tokens, "")
        converted = _convert(spec, value)
        if converted is None:
            return None
        if spec.multiple:
            values.setdefault(spec.parameter, []).append(converted)
        elif spec.parameter in values:
            return None
        else:
            values[spec.parameter] = converted
    if not _paths_readable(signature, values):
        return None
    return command, values


def _convert(spec: Spec, value: str) -> Optional[Any]:
    """The converted value, or None to leave the value to typer's error message."""
    if not value or value.startswith("-") or not value.isprintable():
        return None
    assert spec.convert is not None
    try:
        return spec.convert(value)
    except Exception:  # whatever a parser raises, typer turns it into its one-line usage error
        return None


def _paths_readable(signature: inspect.Signature, values: Dict[str, Any]) -> bool:
    """typer refuses an existing path it cannot read, defaults included: leave those to it."""
    paths: List[Path] = [
        value
        for value in (values.get(name, parameter.default) for name, parameter in signature.parameters.items())
        if isinstance(value, Path)
    ]
    for path in paths:
        try:
            os.stat(path)
        except OSError:
            continue
        if not os.access(path, os.R_OK):
            return False
    return True
