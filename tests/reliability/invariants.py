"""The invariants every reliability test checks, and the count of cases checked.

Whatever the input, a scan either yields features files of valid labels that
are byte-identical when repeated, each within NFD's 64 KiB, or raises the one
documented error with a one-line message: InputError (exit 2) for bad input.
An oversized or colliding node still gets its devicetree labels: each one the
devicetree source found is written, unless another source gives its name (then
a notice names it).
"""

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from collections import Counter
from typing import Dict, Optional

from hypothesis import settings

from nfd_hooks import api
from nfd_hooks.errors import InputError, NfdHooksError
from nfd_hooks.features import MAX_FILE_SIZE, PART_INFIX
from nfd_hooks.nfdfile import label_problem
from tests.conftest import labels_of

# Cases checked per test, reported at the end of the run (conftest).
CASES: Counter = Counter()


def scratch_dir() -> Path:
    """A fresh directory for generated files, on tmpfs when there is one: thousands
    of files and fsyncs per run cost little there, and a lot on a loaded disk."""
    shm = Path("/dev/shm")
    path = Path(tempfile.mkdtemp(prefix="nfd-hooks-fuzz-", dir=shm if shm.is_dir() else None))
    atexit.register(shutil.rmtree, path, True)
    return path


def scaled(divisor: int) -> settings:
    """The active profile's budget divided by ``divisor``, for costly tests."""
    return settings(max_examples=max(3, settings.default.max_examples // divisor))


def count(test: str) -> None:
    CASES[test] += 1


def check_error(error: NfdHooksError) -> None:
    """A documented error class, with a one-line message."""
    message = str(error)
    assert message and "\n" not in message and "\r" not in message, repr(message)
    assert isinstance(error, InputError), f"{type(error).__name__}: {message}"


def check_scan(options: api.Options) -> Optional[bytes]:
    """Scan twice and check every invariant; the file's bytes, or None on an error."""
    outcomes = []
    for _ in range(2):
        try:
            result = api.scan(options)
            content = api.render_scan(result, options)
        except NfdHooksError as error:
            check_error(error)
            outcomes.append((type(error), str(error)))
            continue
        outcomes.append(content)
        check_files(result, options)
        for feature in result.features:
            if feature.label:
                assert label_problem(feature.name, feature.value) is None, feature
        for name, value in labels_of(content).items():
            assert label_problem(name, value) is None, (name, value)
        document = json.loads(api.render_json(result).encode("utf-8"))  # strict UTF-8
        assert [f["name"] for f in document["features"]] == [f.name for f in result.features]
    assert outcomes[0] == outcomes[1], "the same input gave different results"
    return outcomes[0] if isinstance(outcomes[0], bytes) else None


FUZZ_PROFILE = "long" if os.environ.get("NFD_HOOKS_FUZZ") == "long" else "ci"


def check_files(result: api.Scan, options: api.Options) -> None:
    """Each file within NFD's limit, no feature in two, together exactly the
    scan's features; and the devicetree labels kept (see the module)."""
    files = api.files(result, options)
    assert files[0][0] == "" and all(suffix.startswith(PART_INFIX) for suffix, _ in files[1:])
    assert len({suffix for suffix, _ in files}) == len(files)
    seen: Dict[str, str] = {}
    for _, content in files:
        assert len(content) <= MAX_FILE_SIZE, len(content)
        features = labels_of(content, raw_features=True)
        assert not seen.keys() & features.keys()
        seen.update(features)
    assert seen == {f.name: f.value for f in result.features}
    check_devicetree_labels_kept(result)


def check_devicetree_labels_kept(result: api.Scan) -> None:
    """An oversized or colliding node still gets its devicetree labels."""
    written = {f.name: f.value for f in result.features if f.label}
    others = {f.name for r in result.reports if r.name != "devicetree" for f in r.features}
    for report in result.reports:
        if report.name != "devicetree":
            continue
        for feature in report.features:
            if not feature.label or written.get(feature.name) == feature.value:
                continue
            assert feature.name in others, f"devicetree label {feature.name} lost"
            assert any(n.startswith(f"left out label {feature.name}={feature.value} (compatible ") for n in result.notices)
