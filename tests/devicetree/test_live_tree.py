"""The live-tree reader lists only directories that can hold subnodes, and only
where the filesystem's link counts say so; the walk is the same either way."""

import os
from pathlib import Path
from typing import List

import pytest

from nfd_hooks.safe_read import Tree
from nfd_hooks.sources.devicetree import tree
from nfd_hooks.sources.devicetree.tree import filesystem_type, open_live_tree, walk
from tests.conftest import DTB_DIR
from tests.fdt_expand import expand


def _counts_subdirectories(path: Path) -> bool:
    probe = path / "link-count-probe"
    (probe / "child").mkdir(parents=True)
    counts = os.stat(probe).st_nlink == 3
    (probe / "child").rmdir()
    probe.rmdir()
    return counts


def _walk(root: Path, monkeypatch, filesystem: str) -> List[str]:
    """The paths the walk yields when the tree's filesystem is said to be ``filesystem``."""
    monkeypatch.setattr(tree, "filesystem_type", lambda device: filesystem)
    with Tree.open(str(root)) as opened:
        return [path for path, _ in walk(open_live_tree(opened, []))]


@pytest.fixture
def listed(monkeypatch):
    """Every directory the tree reader lists (it lists open directories, by fd)."""
    seen: List[str] = []
    real = tree.entries

    def counting(directory):
        seen.append(os.readlink(f"/proc/self/fd/{directory}"))
        return real(directory)

    monkeypatch.setattr(tree, "entries", counting)
    return seen


@pytest.mark.parametrize("board", ["am572x-idk", "rpi-4-b"])
def test_leaves_are_not_listed_where_link_counts_are_kept(board, tmp_path, monkeypatch, listed):
    if not _counts_subdirectories(tmp_path):
        pytest.skip(f"{tmp_path}'s filesystem does not count subdirectories in st_nlink")
    root = expand((DTB_DIR / f"{board}.dtb").read_bytes(), tmp_path / "base")
    every_node = [str(root)] + sorted(str(p) for p in root.rglob("*") if p.is_dir())
    with_subnodes = [d for d in every_node if any(e.is_dir() for e in os.scandir(d))]

    listed.clear()
    pruned = _walk(root, monkeypatch, "tmpfs")
    assert sorted(listed) == sorted(with_subnodes)
    assert len(with_subnodes) < len(every_node) / 2  # most nodes are leaves

    listed.clear()
    full = _walk(root, monkeypatch, "fuseblk")
    assert sorted(listed) == sorted(every_node)
    assert pruned == full and len(full) == len(every_node)


def test_a_filesystem_that_does_not_count_is_listed_whole(tmp_path, monkeypatch, listed):
    """btrfs and overlayfs report 1 for directories; a FUSE daemon may say 2 for any:
    only the known filesystems are trusted, and a count other than 2 is never a leaf."""
    (tmp_path / "base" / "cpus" / "cpu@0").mkdir(parents=True)
    (tmp_path / "base" / "cpus" / "cpu@0" / "compatible").write_bytes(b"arm,cortex-a72\0")
    assert _walk(tmp_path / "base", monkeypatch, "btrfs") == ["/", "/cpus", "/cpus/cpu@0"]
    assert len(listed) == 3


def test_filesystem_type_comes_from_mountinfo(tmp_path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
        "23 27 0:22 / /host\\040sys rw,nosuid shared:7 - sysfs sysfs rw\n"
        "25 24 8:1 / / rw,relatime master:1 - ext4 /dev/sda1 rw\n"
    )
    assert filesystem_type(os.makedev(0, 22), str(mountinfo)) == "sysfs"
    assert filesystem_type(os.makedev(8, 1), str(mountinfo)) == "ext4"
    assert filesystem_type(os.makedev(0, 99), str(mountinfo)) is None
    assert filesystem_type(os.makedev(0, 22), str(tmp_path / "absent")) is None


def test_this_machine_proc_is_found():
    """On a real mountinfo: /proc is procfs (not a counting filesystem)."""
    if not os.path.exists(tree.MOUNTINFO):
        pytest.skip("no /proc/self/mountinfo")
    assert filesystem_type(os.stat("/proc").st_dev) == "proc"
