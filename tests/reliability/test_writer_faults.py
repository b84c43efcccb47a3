"""Any failure while writing leaves the previous file byte-identical and no dotfile.

Each example picks the failing step (creating the temporary file, a full or
failing write after part of the data went out, fsync, fchmod, rename) and an
errno, over random old and new contents; the old file may also be absent.
"""

import errno
import os
import tempfile
from pathlib import Path
from typing import Optional
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nfd_hooks import writer
from nfd_hooks.errors import OutputError
from tests.reliability.invariants import count, scaled, scratch_dir

SCRATCH = scratch_dir()
STEPS = ("mkstemp", "write", "fsync", "fchmod", "replace", None)
ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EACCES, errno.EISDIR)


class _TornStream:
    """Writes part of the data to the real file, then fails: a disk filling up mid-write."""

    def __init__(self, stream, code: int, fraction: float) -> None:
        self._stream, self._code, self._fraction = stream, code, fraction

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stream.close()

    def write(self, data: bytes) -> int:
        self._stream.write(data[: int(len(data) * self._fraction)])
        self._stream.flush()
        raise OSError(self._code, os.strerror(self._code))

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _visible(directory: Path):
    """Names in ``directory`` besides the writer's scratch directory, which must be empty."""
    scratch = f".nfd-hooks-tmp.{os.getuid()}"
    if (directory / scratch).exists():
        assert os.listdir(directory / scratch) == []
    return sorted(name for name in os.listdir(directory) if name != scratch)


def _failing(code: int):
    def fail(*_args, **_kwargs):
        raise OSError(code, os.strerror(code))

    return fail


@scaled(2)
@given(
    old=st.one_of(st.none(), st.binary(max_size=4096)),
    new=st.binary(min_size=1, max_size=4096),
    step=st.sampled_from(STEPS),
    code=st.sampled_from(ERRNOS),
    fraction=st.floats(0, 1),
)
def test_a_failure_at_any_step_keeps_the_old_file(old: Optional[bytes], new, step, code, fraction):
    count("writer-fault")
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        directory = Path(scratch)
        target = directory / "nfd-hooks"
        if old is not None:
            target.write_bytes(old)
        patches = {
            "mkstemp": mock.patch.object(writer.tempfile, "mkstemp", _failing(code)),
            "write": mock.patch.object(
                writer.os, "fdopen", lambda *a, _real=os.fdopen, **k: _TornStream(_real(*a, **k), code, fraction)
            ),
        }
        patch = patches.get(step) or (mock.patch.object(writer.os, step, _failing(code)) if step else None)
        if patch is None:
            assert writer.write_atomically(directory, "nfd-hooks", new) == target
            assert target.read_bytes() == new
            assert os.stat(target).st_mode & 0o777 == writer.FILE_MODE
        else:
            with patch, pytest.raises(OutputError) as raised:
                writer.write_atomically(directory, "nfd-hooks", new)
            assert "\n" not in str(raised.value) and os.strerror(code) in str(raised.value)
            assert (target.read_bytes() if old is not None else None) == old
        expected = ["nfd-hooks"] if old is not None or patch is None else []
        assert _visible(directory) == expected


def test_a_directory_where_the_file_should_be(tmp_path):
    """The rename fails (EISDIR); the directory and its content stay, no dotfile."""
    (tmp_path / "nfd-hooks").mkdir()
    (tmp_path / "nfd-hooks" / "keep").write_bytes(b"x")
    with pytest.raises(OutputError, match="cannot write"):
        writer.write_atomically(tmp_path, "nfd-hooks", b"new\n")
    assert _visible(tmp_path) == ["nfd-hooks"]
    assert (tmp_path / "nfd-hooks" / "keep").read_bytes() == b"x"


def test_a_symlinked_target_is_replaced_not_written_through(tmp_path):
    """A planted symlink must not make the privileged hook write elsewhere."""
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious\n")
    directory = tmp_path / "features.d"
    directory.mkdir()
    (directory / "nfd-hooks").symlink_to(outside)
    writer.write_atomically(directory, "nfd-hooks", b"new\n")
    assert outside.read_bytes() == b"precious\n"
    assert not (directory / "nfd-hooks").is_symlink()
    assert (directory / "nfd-hooks").read_bytes() == b"new\n"
