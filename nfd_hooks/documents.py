"""JSON and TOML from strangers (a bundle's ``manifest.json``, a ``--catalog``), in bounded depth.

Python's json and tomllib parse nested arrays and tables by recursion: a
document nested 100,000 deep (200 KB) exhausts the interpreter's stack, a
RecursionError no caller expects (a traceback; ``watch``, re-reading its
catalog, died). Every such document is parsed through ``bounded``: nesting
deeper than MAX_DEPTH is one InputError, the same whether the parser or the
check after it meets it, so the limit does not depend on how deep the caller's
own stack happens to be.
"""

import re
from typing import Any, Callable, List, Tuple, TypeVar

from nfd_hooks.errors import InputError

# The deepest real document is a catalog's: accelerators.<id>.ready.usb, 4 levels.
MAX_DEPTH = 32

T = TypeVar("T")


def bounded(parse: Callable[[], T], origin: str) -> T:
    """``parse()``'s document, if nested at most MAX_DEPTH levels; InputError naming ``origin`` otherwise."""
    try:
        document = parse()
    except RecursionError:
        raise _too_deep(origin) from None
    if depth(document) > MAX_DEPTH:
        raise _too_deep(origin)
    return document


# A TOML key of more than MAX_DEPTH dotted parts, bare or quoted (``a.b."c"``, in a
# key/value line, a [table] or [[array]] header or an inline table). tomllib builds
# such a key's tables without recursion, but in time quadratic in its parts: 100,000
# parts (200 KB, under the catalog's 1 MiB) took minutes, which no depth check after
# the parse can save. A string value holding such a run is refused too: no real
# catalog holds 33 dot-joined words.
_DOTTED_TOO_DEEP = re.compile(
    r"""(?:(?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')[ \t]*\.[ \t]*){%d}""" % MAX_DEPTH
)


def bounded_toml(parse: Callable[[str], T], text: str, origin: str) -> T:
    """``bounded`` for TOML ``text``: a dotted key deeper than MAX_DEPTH is refused
    before ``parse(text)``, not after minutes of it."""
    if _DOTTED_TOO_DEEP.search(text):
        raise _too_deep(origin)
    return bounded(lambda: parse(text), origin)


def depth(document: Any) -> int:
    """How many lists and dicts deep ``document`` is (a scalar: 0); iterative."""
    deepest = 0
    pending: List[Tuple[Any, int]] = [(document, 0)]
    while pending:
        value, level = pending.pop()
        if isinstance(value, dict):
            value = list(value.values())
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            return deepest
        pending.extend((item, level + 1) for item in value)
    return deepest


def _too_deep(origin: str) -> InputError:
    return InputError(f"{origin}: nested deeper than {MAX_DEPTH} levels")
