"""Label names from compatible strings: the 2020 labeller's names, made always valid.

The labeller kept only the first two comma fields (merging distinct boards such
as ``arm,vexpress,v2p-ca15,tc1`` and ``arm,vexpress,v2p-ca9``) and did not
sanitise, so ``solidrun,cubox-i/q`` gave an invalid label. Here every field is
kept, unsafe characters become ``-``, and over-long names get a stable hash.
"""

from __future__ import annotations

import re
from typing import Optional

MAX_NAME_LENGTH = 63
_KEPT_PREFIX = 54  # 54 + "-" + 8 hex digits = 63
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_EDGES = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")


def decode(raw: bytes) -> str:
    """Text of a devicetree string; each invalid UTF-8 byte becomes U+FFFD."""
    return raw.decode("utf-8", errors="replace")


def label_name(raw: bytes) -> Optional[str]:
    """The label name (without prefix) for one compatible string, or None when
    nothing label-safe is left of it (say ``",,,"``)."""
    fields = decode(raw).split(",")
    if fields[0] == "xlnx":  # the labeller's one rename; kept so selectors keep working
        fields[0] = "xilinx"
    name = _EDGES.sub("", _UNSAFE.sub("-", "-".join(fields)))
    if len(name) > MAX_NAME_LENGTH:
        import hashlib  # lazy: few strings are this long, and hashlib loads OpenSSL

        digest = hashlib.sha256(raw).hexdigest()[:8]
        name = f"{name[:_KEPT_PREFIX]}-{digest}"
    return name or None
