"""safe_read: paths resolved beneath a root, by openat2 and by the component-wise walk alike."""

import os

import pytest

from nfd_hooks import safe_read
from nfd_hooks.safe_read import NotARegularFile, OutsideRoot, SymlinkRefused, read_regular_file, read_small_attribute


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    """Each test runs through openat2 (this kernel has it) and through the fallback walk."""
    monkeypatch.setattr(safe_read, "_openat2", None if request.param == "openat2" else False)
    return request.param


@pytest.fixture
def tree(tmp_path):
    """root/ with real files and every kind of link; a secret beside it."""
    (tmp_path / "secret").write_bytes(b"outside\n")
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "file").write_bytes(b"inside\n")
    (root / "to-b").symlink_to("a/b")
    (root / "a" / "b" / "up").symlink_to("..")  # lexically inside, and really inside
    (root / "a" / "up").symlink_to("..")
    (root / "a" / "b" / "file-link").symlink_to("file")
    (root / "escape").symlink_to("../secret")
    (root / "absolute").symlink_to(str(tmp_path / "secret"))
    (root / "loop").symlink_to("loop")
    os.mkfifo(root / "fifo")
    # up/up/.. looks like a/b/up/up/.. (inside) to a text check, but is root/.. for real
    (root / "a" / "b" / "chain").symlink_to("up/up/../secret")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def read(fd, path, follow=True):
    return read_regular_file(path, 100, follow_symlinks=follow, dir_fd=fd, beneath=True)


def test_paths_inside_resolve_through_inside_symlinks(tree, resolver):
    assert read(tree, "a/b/file") == b"inside\n"
    assert read(tree, "to-b/file") == b"inside\n"
    assert read(tree, "a/b/up/b/file") == b"inside\n"
    assert read(tree, "a/b/file-link") == b"inside\n"


@pytest.mark.parametrize("path", ["escape", "absolute", "..", "a/../../secret", "a/b/up/../../secret", "a/b/chain"])
def test_nothing_outside_the_root_is_read(tree, resolver, path):
    with pytest.raises(OutsideRoot):
        read(tree, path)


def test_a_final_symlink_is_refused_by_name_when_not_followed(tree, resolver):
    with pytest.raises(SymlinkRefused, match="a symbolic link"):
        read(tree, "a/b/file-link", follow=False)


def test_loops_fifos_and_absence(tree, resolver):
    with pytest.raises(OSError):
        read(tree, "loop")
    with pytest.raises(NotARegularFile):
        read(tree, "fifo")  # opened non-blocking: no hang
    with pytest.raises(FileNotFoundError):
        read(tree, "a/nothing")


def test_without_beneath_a_symlink_is_refused_by_name(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "link").symlink_to("file")
    with pytest.raises(SymlinkRefused):
        read_regular_file(str(tmp_path / "link"), 10, follow_symlinks=False)
    assert read_regular_file(str(tmp_path / "link"), 10) == b"x"


def test_a_small_attribute_is_its_bytes_and_any_failure_is_none(tree, resolver):
    assert read_small_attribute("a/b/file", 7, tree) == b"inside\n"
    assert read_small_attribute("a/b/file", 6, tree) is None  # oversized: refused, not truncated
    for path in ("a/b/file-link", "escape", "a/b/chain", "loop", "fifo", "a/nothing"):
        assert read_small_attribute(path, 100, tree) is None, path
