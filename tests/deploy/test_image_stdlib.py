"""image/stdlib.txt is exactly the standard library the CLI imports (issue 28 item 1).

Every case the image tests run (tests/deploy/imagecases.py), and the live USB
backends besides, runs here on the host with ``PYTHONPROFILEIMPORTTIME``; each
top-level standard-library module it imports that has a file (a module, a
package or an extension module: built-in ones need none) must be listed in
image/stdlib.txt or left out there on purpose, and every listed module must be
imported by some case. The image tests then run the same cases in the images
built from that list. Fast: no container.
"""

import re
import sys
import sysconfig
from pathlib import Path
from typing import Dict, Set, Tuple

import pytest

import imagecases
from imagecases import CASES, LIVE_CASES, ROOT

STDLIB_LIST = ROOT / "image" / "stdlib.txt"

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="the image's Python is 3.11 (Debian bookworm): its imports are traced"
)


def read_list(path: Path = STDLIB_LIST) -> Tuple[Set[str], Set[str]]:
    """The names to ship and the names left out (``-name``), comments and blank lines skipped."""
    shipped, left_out = set(), set()
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name.startswith("-"):
            left_out.add(name[1:])
        elif name:
            shipped.add(name)
    return shipped, left_out


def has_file(name: str) -> bool:
    """A module the image needs a file for: source, package or extension in this Python's stdlib."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    dynload = stdlib / "lib-dynload"
    return ((stdlib / f"{name}.py").exists() or (stdlib / name / "__init__.py").exists()
            or any(dynload.glob(f"{name}.cpython-*.so")))


@pytest.fixture(scope="module")
def traced(tmp_path_factory) -> Dict[str, str]:
    """Each top-level stdlib module with a file that some case imports: the first case that does."""
    work = tmp_path_factory.mktemp("trace")
    imagecases.prepare(work)
    env = dict(imagecases.host_env(), PYTHONPROFILEIMPORTTIME="1")
    seen: Dict[str, str] = {}
    for case in CASES + LIVE_CASES:
        result = imagecases.run_host(work, case, env=env)
        assert result.code == case.code, f"{case.name}: {result.stderr.decode()[-2000:]}"
        for module in re.findall(rb"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", result.stderr, re.MULTILINE):
            top = module.decode().split(".")[0]
            if top in sys.stdlib_module_names and has_file(top):
                seen.setdefault(top, case.name)
    assert "json" in seen and "logging" in seen  # the cases did run: show --format json, the libusb backend
    return seen


def test_every_imported_module_is_listed(traced):
    shipped, left_out = read_list()
    missing = {name: case for name, case in traced.items() if name not in shipped | left_out}
    assert not missing, f"add to image/stdlib.txt (module: first case importing it): {missing}"


def test_every_listed_module_is_imported(traced):
    """Names built into this interpreter are not traced (a module built into one Python is an
    extension module of another: Debian's builds in math, select, zlib and more)."""
    shipped, left_out = read_list()
    unused = sorted(name for name in (shipped | left_out) - set(traced) if has_file(name))
    assert not unused, f"no case imports these: remove them from image/stdlib.txt: {unused}"
    assert not shipped & left_out


def test_the_list_reads_as_it_should(tmp_path):
    listing = tmp_path / "stdlib.txt"
    listing.write_text("# comment\njson  # why\n\n-_hashlib  # why not\n")
    assert read_list(listing) == ({"json"}, {"_hashlib"})
