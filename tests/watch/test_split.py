"""The watcher with an output split over several files (issue 14, item 3): it
keeps them all current, removes those no longer needed, and gives NFD one more
event a tick after a write that changed several."""

import os
from pathlib import Path
from typing import Dict

from nfd_hooks import api
from nfd_hooks.features import MAX_FILE_SIZE, PART_INFIX
from tests.conftest import labels_of
from tests.watch.test_loop import INTERVAL, PI, Node, logged, start, wait_for  # noqa: F401 (logged: a fixture)


def devices(count: int) -> Dict[str, str]:
    return {f"feature.node.kubernetes.io/usb-ff_1209_{0x1000 + n:04x}.present": "true" for n in range(count)}


def on_disk(directory: Path) -> Dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory)) if not name.startswith(".")}


def expected(node: Node) -> Dict[str, bytes]:
    result = node.scan(api.Options(), None)
    return {"nfd-hooks" + suffix: content for suffix, content in api.files(result, api.Options())}


def test_split_files_follow_the_node_and_extra_ones_go(tmp_path, logged):
    node = Node()
    node.usb = devices(1500)
    running = start(node, tmp_path, logged)
    assert wait_for(lambda: on_disk(tmp_path) == expected(node), 20 * INTERVAL)
    files = on_disk(tmp_path)
    assert len(files) == 2 and all(len(c) <= MAX_FILE_SIZE for c in files.values())
    assert any(PART_INFIX in name for name in files)
    merged = {}
    for content in files.values():
        merged.update(labels_of(content))
    assert merged == {PI: "1", **node.usb}

    node.usb = devices(3000)
    assert wait_for(lambda: len(on_disk(tmp_path)) == 3 and on_disk(tmp_path) == expected(node), 20 * INTERVAL)
    node.usb = devices(10)
    assert wait_for(lambda: list(on_disk(tmp_path)) == ["nfd-hooks"], 20 * INTERVAL)
    running.finish()
    assert labels_of((tmp_path / "nfd-hooks").read_bytes()) == {PI: "1", **devices(10)}


def test_a_write_of_several_files_is_followed_by_one_more_event(tmp_path, logged):
    """NFD acts on the first event of each 1 s tick: the main file is replaced by
    itself a spacing later, so a worker that read between two renames reads again."""
    node = Node()
    node.usb = devices(1500)
    spacing = 4 * INTERVAL
    running = start(node, tmp_path, logged, spacing=spacing)
    first = os.stat(tmp_path / "nfd-hooks").st_ino
    assert wait_for(lambda: os.stat(tmp_path / "nfd-hooks").st_ino != first, 3 * spacing)
    settled = (tmp_path / "nfd-hooks").stat()
    assert wait_for(lambda: node.scans >= 6, 3 * spacing + 10 * INTERVAL)
    running.finish()
    # Once: the same bytes, no second "wrote" line, and nothing more after it.
    assert (tmp_path / "nfd-hooks").stat().st_ino == settled.st_ino
    assert sum(line.startswith("wrote") for line in logged) == 1
