"""The invariants every reliability test checks, and the count of cases checked.

Whatever the input, a scan either yields a features file of valid labels that
is byte-identical when repeated, or raises one of the documented errors with a
one-line message: InputError (exit 2) for bad input, OutputError (exit 1) only
when the file would exceed NFD's 64 KiB limit.
"""

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from collections import Counter
from typing import Optional

from hypothesis import settings

from nfd_hooks import api
from nfd_hooks.errors import InputError, NfdHooksError, OutputError
from nfd_hooks.features import MAX_FILE_SIZE, label_problem
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
    assert isinstance(error, InputError) or (
        isinstance(error, OutputError) and str(MAX_FILE_SIZE) in message
    ), f"{type(error).__name__}: {message}"


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
        assert len(content) <= MAX_FILE_SIZE
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
