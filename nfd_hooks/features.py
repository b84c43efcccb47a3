"""The features model: what the sources produce, how it is validated and rendered.

The rendering follows NFD's local source (source/local/local.go): one
``name=value`` per line, ``#`` comments, ``# +no-label`` before a raw feature,
``# +expiry-time=`` applying to every line after it. The file is deterministic
(sorted, no timestamps unless an expiry is asked for) so that the same node
always yields the same bytes and NFD sees no churn.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Iterable, List, NamedTuple, Optional

from nfd_hooks import __version__
from nfd_hooks.errors import OutputError

# NFD skips a features file larger than this, whole (local.go, maxFileSize).
MAX_FILE_SIZE = 65536

_NAME_RE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
_DNS_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


class Feature(NamedTuple):
    """One line of the features file.

    ``label`` False makes it a raw feature (``local.feature`` in NodeFeatureRules)
    that NFD does not turn into a node label and does not validate.

    The immutable records on the start path (features, devices, options) are
    NamedTuples, not frozen dataclasses: they compare, sort and hash the same
    way, and Python builds one in a tenth of the time a frozen, ordered
    dataclass takes at import (about 0.1 ms against 1 ms each), which the
    start-up budget of the hook counts (docs/performance.md).
    """

    name: str
    value: str
    label: bool = True


def prefix_problem(prefix: str) -> Optional[str]:
    """Why ``prefix`` is not a DNS subdomain usable as a label prefix, or None."""
    if not prefix or len(prefix) > 253:
        return "must be 1 to 253 characters"
    if not all(_DNS_LABEL_RE.match(part) for part in prefix.split(".")):
        return "must be a lowercase DNS subdomain (a-z, 0-9, '-', '.')"
    if prefix == "kubernetes.io" or (
        prefix.endswith(".kubernetes.io")
        and prefix not in ("feature.node.kubernetes.io", "profile.node.kubernetes.io")
        and not prefix.endswith(".feature.node.kubernetes.io")
        and not prefix.endswith(".profile.node.kubernetes.io")
    ):
        return "kubernetes.io namespaces are rejected by nfd-master"
    return None


def label_problem(name: str, value: str) -> Optional[str]:
    """Why ``name=value`` is not a valid, fully prefixed Kubernetes label, or None."""
    prefix, slash, short = name.rpartition("/")
    if not slash:
        return f"label {name!r} has no prefix"
    problem = prefix_problem(prefix)
    if problem:
        return f"label prefix {prefix!r} {problem}"
    if len(short) > 63 or not _NAME_RE.match(short):
        return f"label name {short!r} is not a valid Kubernetes label name"
    if len(value) > 63 or not _VALUE_RE.match(value):
        return f"label value {value!r} of {name!r} is not a valid Kubernetes label value"
    return None


def raw_feature_problem(name: str, value: str) -> Optional[str]:
    """Why a raw feature cannot be expressed as one features-file line, or None.

    NFD trims each line, splits it at its first ``=``, and reads ``#`` as a comment:
    a name may end in spaces (``=`` follows), a value may not (the line ends).
    """
    if not name or "=" in name or name != name.lstrip() or name.startswith("#"):
        return f"raw feature name {name!r} cannot be written"
    if any(c in name + value for c in "\n\r\0") or value != value.strip():
        return f"raw feature {name!r} has a value that cannot be written"
    return None


def merge(features: Iterable[Feature]) -> List[Feature]:
    """Deduplicate and sort; two different values for one name is a bug in a source."""
    by_name = {}
    for feature in features:
        seen = by_name.setdefault(feature.name, feature)
        if seen != feature:
            raise OutputError(
                f"two sources disagree on {feature.name!r}: {seen.value!r} and {feature.value!r}"
            )
    return sorted(by_name.values(), key=lambda f: (not f.label, f.name))


def validate(features: Iterable[Feature]) -> None:
    """Raise OutputError on the first feature NFD would drop or misread."""
    for feature in features:
        check = label_problem if feature.label else raw_feature_problem
        problem = check(feature.name, feature.value)
        if problem:
            raise OutputError(problem)


def render(features: Iterable[Feature], expires: Optional[datetime] = None) -> bytes:
    """Render the features file: header, optional expiry, labels, then raw features.

    Refuses (OutputError) anything NFD would drop: an invalid label, or a file
    over NFD's 64 KiB limit, which NFD would skip whole.
    """
    ordered = merge(features)
    validate(ordered)
    lines = [f"# Written by nfd-hooks {__version__}; rewritten at every run, do not edit."]
    if expires is not None:
        stamp = expires.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"# +expiry-time={stamp}")
    for feature in ordered:
        if not feature.label:
            lines.append("# +no-label")
        lines.append(f"{feature.name}={feature.value}")
    content = ("\n".join(lines) + "\n").encode("utf-8")
    if len(content) > MAX_FILE_SIZE:
        raise OutputError(
            f"features file would be {len(content)} bytes; NFD skips files over {MAX_FILE_SIZE}"
        )
    return content
