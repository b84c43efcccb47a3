"""The atomic writer: the old file survives any failure, no dotfile is left behind."""

import errno
import os
import stat
from pathlib import Path

import pytest

from nfd_hooks import writer
from nfd_hooks.errors import InputError, OutputError

OLD = b"# old\nbeta.devicetree.org/old=1\n"
NEW = b"# new\nbeta.devicetree.org/new=1\n"


@pytest.fixture
def features_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "features.d"
    directory.mkdir()
    (directory / "nfd-hooks").write_bytes(OLD)
    return directory


def _left_in(directory: Path):
    """What a write leaves: the visible names, and nothing in the scratch directory."""
    scratch = directory / f".nfd-hooks-tmp.{os.getuid()}"
    assert not scratch.exists() or list(scratch.iterdir()) == []
    return sorted(p.name for p in directory.iterdir() if p != scratch)


def test_replaces_the_file_world_readable_even_under_a_strict_umask(features_dir):
    previous = os.umask(0o077)
    try:
        target = writer.write_atomically(features_dir, "nfd-hooks", NEW)
    finally:
        os.umask(previous)
    assert target.read_bytes() == NEW
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert _left_in(features_dir) == ["nfd-hooks"]


def test_temporary_file_is_in_a_private_hidden_subdirectory(features_dir, monkeypatch):
    """NFD's fsnotify watch on features.d must see the rename and nothing before it."""
    seen = []
    real_replace = os.replace

    def spy(source, destination):
        seen.append(Path(source))
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", spy)
    writer.write_atomically(features_dir, "nfd-hooks", NEW)
    scratch = seen[0].parent
    assert scratch.parent == features_dir and scratch.name.startswith(".")
    assert stat.S_IMODE(scratch.stat().st_mode) == 0o700 and scratch.stat().st_uid == os.getuid()
    assert seen[0].name.startswith(".nfd-hooks.") and seen[0].name.endswith(".tmp")


def test_a_planted_scratch_directory_is_refused(features_dir):
    """A symlink (or someone else's directory) where the scratch goes: never written through."""
    elsewhere = features_dir.parent / "elsewhere"
    elsewhere.mkdir()
    (features_dir / f".nfd-hooks-tmp.{os.getuid()}").symlink_to(elsewhere)
    with pytest.raises(OutputError, match="not a private directory"):
        writer.write_atomically(features_dir, "nfd-hooks", NEW)
    assert (features_dir / "nfd-hooks").read_bytes() == OLD
    assert list(elsewhere.iterdir()) == []


def test_scratch_directory_is_made_once(features_dir):
    assert writer.temporary_directory(features_dir)[1] is True
    assert writer.temporary_directory(features_dir)[1] is False


def _fail(*_args, **_kwargs):
    raise OSError(errno.EIO, os.strerror(errno.EIO))


class _FullDisk:
    """A stream whose write fails as on a full disk."""

    def __init__(self, stream):
        self._stream = stream

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stream.close()

    def write(self, _data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._stream, name)


@pytest.mark.parametrize("step", ["write", "fsync", "fchmod", "replace"])
def test_failure_at_each_step_keeps_the_old_file_and_leaves_no_dotfile(features_dir, monkeypatch, step):
    if step == "write":
        real_fdopen = os.fdopen
        monkeypatch.setattr(os, "fdopen", lambda *a, **k: _FullDisk(real_fdopen(*a, **k)))
    else:
        monkeypatch.setattr(os, step, _fail)
    with pytest.raises(OutputError, match="cannot write"):
        writer.write_atomically(features_dir, "nfd-hooks", NEW)
    assert (features_dir / "nfd-hooks").read_bytes() == OLD
    assert _left_in(features_dir) == ["nfd-hooks"]


def test_full_disk_message_says_so(features_dir, monkeypatch):
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda *a, **k: _FullDisk(real_fdopen(*a, **k)))
    with pytest.raises(OutputError, match="No space left on device"):
        writer.write_atomically(features_dir, "nfd-hooks", NEW)


def test_interrupt_between_write_and_rename_cleans_up_and_propagates(features_dir, monkeypatch):
    def interrupted(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        writer.write_atomically(features_dir, "nfd-hooks", NEW)
    assert (features_dir / "nfd-hooks").read_bytes() == OLD
    assert _left_in(features_dir) == ["nfd-hooks"]


def test_cannot_create_the_temporary_file(features_dir, monkeypatch):
    def denied(*_args, **_kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(writer.tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match="Permission denied"):
        writer.write_atomically(features_dir, "nfd-hooks", NEW)
    assert (features_dir / "nfd-hooks").read_bytes() == OLD


def test_missing_directory_is_refused_not_created(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        writer.write_atomically(tmp_path / "absent", "nfd-hooks", NEW)
    assert not (tmp_path / "absent").exists()


def test_a_file_where_the_directory_should_be(tmp_path):
    (tmp_path / "features.d").write_text("not a directory")
    with pytest.raises(OutputError, match="not a directory"):
        writer.write_atomically(tmp_path / "features.d", "nfd-hooks", NEW)


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "..", "."])
def test_names_nfd_would_not_read_are_refused(features_dir, name):
    with pytest.raises(InputError):
        writer.write_atomically(features_dir, name, NEW)
