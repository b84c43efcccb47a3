"""Node bundles as tests: each captured bundle with an ``expected.features`` is one case.

A test suite lists the bundles with ``node_bundles`` and asserts that
``node_differences`` is empty (docs/capture.md has the five-line pytest
pattern). Both files are compared as NFD sees them (``check.parse``): comments
and line order do not matter, ``# +no-label`` and values do.
"""

from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional

from nfd_hooks import api
from nfd_hooks.bundle import MANIFEST
from nfd_hooks.nfdfile import Entry, parse

EXPECTED = "expected.features"


def node_bundles(directory: Path) -> List[Path]:
    """Every ``directory/<name>/`` holding a bundle manifest and an ``expected.features``, sorted."""
    if not directory.is_dir():
        return []
    return sorted(
        child for child in directory.iterdir() if (child / MANIFEST).is_file() and (child / EXPECTED).is_file()
    )


def replay(bundle: Path, options: Optional[api.Options] = None) -> bytes:
    """The features file ``write --replay bundle`` would write."""
    replayed = api.replay_options(bundle, options or api.Options())
    return api.render_scan(api.scan(replayed), replayed)


def differences(expected: bytes, actual: bytes, now: Optional[datetime] = None) -> List[str]:
    """How ``actual`` differs from ``expected`` in NFD's view; problems in either file too."""
    now = now or datetime.now(timezone.utc)
    want, got = parse(expected, now), parse(actual, now)
    found = [f"{EXPECTED}:{p.line}: {p.message}" for p in want.problems if not p.warning]
    found += [f"replayed output:{p.line}: {p.message}" for p in got.problems]
    found += _compare("label", want.labels, got.labels)
    found += _compare("raw feature", want.features, got.features)
    return found


def node_differences(bundle: Path, options: Optional[api.Options] = None) -> List[str]:
    """``differences`` between the bundle's ``expected.features`` and its replay."""
    return differences((bundle / EXPECTED).read_bytes(), replay(bundle, options))


def _compare(kind: str, want: Dict[str, Entry], got: Dict[str, Entry]) -> List[str]:
    lines = []
    for key in sorted(set(want) | set(got)):
        if key not in got:
            lines.append(f"missing {kind} {key}={want[key].value}")
        elif key not in want:
            lines.append(f"unexpected {kind} {key}={got[key].value}")
        elif want[key].value != got[key].value:
            lines.append(f"{kind} {key}: expected {want[key].value!r}, replay gives {got[key].value!r}")
    return lines
