"""The README's command output and options table are this checkout's, so they cannot go stale.

Each ```console block is run line by line (``$ nfd-hooks ...`` as a user runs it, from the
checkout, stdout and stderr interleaved as on a terminal) and must show exactly what it prints.
``NFD_HOOKS_UPDATE_README=1`` rewrites the blocks from a run instead of comparing them.
The quick start's first command is run as written, in a copy of the checkout, and its output
must be the ```text block under it; what the README says of the second command holds too.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest
import typer.main

from nfd_hooks import cli
from nfd_hooks.sources.usb.ids import USB_IDS_PATHS
from tests.conftest import ROOT

README = ROOT / "README.md"
BLOCK = re.compile(r"^```console\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
# The README's scratch directory; each block gets a fresh one in its place.
SCRATCH = "/tmp/features.d"


def run_block(block: str, scratch: Path) -> str:
    """``block``'s commands and what they print now."""
    out: List[str] = []
    for line in block.splitlines():
        if not line.startswith("$ "):
            continue
        out.append(line)
        words = shlex.split(line[2:])
        if words == ["mkdir", "-p", SCRATCH]:
            scratch.mkdir(exist_ok=True)
            continue
        assert words[0] == "nfd-hooks", f"README runs only nfd-hooks (and mkdir -p {SCRATCH}): {line}"
        args = [word.replace(SCRATCH, str(scratch)) for word in words[1:]]
        done = subprocess.run(
            [sys.executable, "-m", "nfd_hooks", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=60,
        )
        assert done.returncode == 0, done.stdout.decode()
        out += done.stdout.decode().replace(str(scratch), SCRATCH).splitlines()
    return "\n".join(out) + "\n"


def test_console_blocks_show_what_the_commands_print(tmp_path):
    if not any(path.is_file() for path in USB_IDS_PATHS):
        if os.environ.get("NFD_HOOKS_REQUIRE_TOOLS") == "1":
            pytest.fail("usb.ids missing (Debian package usb.ids): the README's names need it")
        pytest.skip("usb.ids not installed (Debian package usb.ids): the README shows its names")
    text = README.read_text()
    blocks = BLOCK.findall(text)
    commands = " ".join(blocks)
    for shown in ("--format table --replay fixtures/nodes/rpi4b-ncs2-webcam", "--format table --sysfs fixtures/usb/edge-node",
                  "show --diff --replay fixtures/nodes/rpi4b-ncs2-webcam", "fixtures/usb/edge-node --no-devicetree --features-dir"):
        assert shown in commands, shown
    fresh = []
    for n, block in enumerate(blocks):
        (tmp_path / f"block{n}").mkdir()
        fresh.append(run_block(block, tmp_path / f"block{n}" / "features.d"))
    if os.environ.get("NFD_HOOKS_UPDATE_README") == "1":
        parts = iter(fresh)
        README.write_text(BLOCK.sub(lambda _: f"```console\n{next(parts)}```\n", text))
        return
    for block, now in zip(blocks, fresh):
        assert block == now, f"README.md is stale (NFD_HOOKS_UPDATE_README=1 rewrites it); now:\n{now}"


def readme_options() -> Dict[str, Set[str]]:
    """The options table: command (``nfd-hooks`` for the group) -> its options, from the first column."""
    text = README.read_text()
    table = text.split("| option | commands | meaning |\n| --- | --- | --- |\n", 1)[1].split("\n\n", 1)[0]
    found: Dict[str, Set[str]] = {}
    for row in table.splitlines():
        option, commands, _ = re.split(r"(?<!\\)\|", row.strip().strip("|"), maxsplit=2)
        flags = set(re.findall(r"`(--?[a-z][a-z-]*)", option))
        assert flags, row
        for command in commands.split():
            found.setdefault(command, set()).update(flags)
    return found


def app_options() -> Dict[str, Set[str]]:
    """Every option the typer application declares, per command (help aside)."""
    group = typer.main.get_command(cli.app)

    def flags(params) -> Set[str]:
        return {flag for p in params if p.param_type_name == "option" for flag in [*p.opts, *p.secondary_opts]}

    found = {"nfd-hooks": flags(group.params)}
    found.update((name, flags(command.params)) for name, command in group.commands.items())
    return found


def test_the_options_table_covers_every_option_of_every_command():
    documented, declared = readme_options(), app_options()
    assert documented.keys() == declared.keys()
    for command, flags in declared.items():
        assert documented[command] == flags, (
            f"{command}: README lacks {sorted(flags - documented[command])}, "
            f"has extra {sorted(documented[command] - flags)}"
        )


# The quick start: the first command, and the output the README shows right under it.
FIRST = re.compile(r"^## Quick start\n.*?^```sh\n(?P<command>[^\n]*)\n```\n.*?^```text\n(?P<output>.*?)^```\n",
                   re.MULTILINE | re.DOTALL)
INSTALL = "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/nfd-hooks "


def quick_start():
    match = FIRST.search(README.read_text())
    assert match, "README: no '## Quick start' with a sh block and its text output"
    command = match.group("command")
    assert command.startswith(INSTALL), command
    return command, match.group("output")


def test_quick_start_output_is_what_the_first_command_prints():
    command, output = quick_start()
    shown = subprocess.run([sys.executable, "-m", "nfd_hooks", *shlex.split(command[len(INSTALL):])],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (shown.returncode, shown.stderr) == (0, "")
    assert output == shown.stdout, f"README's quick start output is stale; now:\n{shown.stdout}"


@pytest.mark.slow  # a fresh virtualenv and a real install from PyPI
def test_the_first_command_works_as_written(tmp_path):
    """In a copy of what a clone holds (no .venv), exactly as written: venv, pip install, run."""
    copy = tmp_path / "nfd-hooks"
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file() or (ROOT / name).is_symlink():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name, follow_symlinks=False)
    command, output = quick_start()
    done = subprocess.run(["bash", "-c", command], cwd=copy, capture_output=True, text=True, timeout=900,
                          env={k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == output


def test_the_package_count_is_the_lists():
    listed = [line.split("#", 1)[0].strip() for line in (ROOT / "scripts" / "system-packages.txt").read_text().splitlines()]
    count = sum(1 for package in listed if package)
    said = re.search(r"whichever of the (\d+) Debian packages\s+listed in `scripts/system-packages.txt`", README.read_text())
    assert said and int(said.group(1)) == count, f"README should say {count} packages"


def test_the_fast_subset_leaves_out_what_builds_or_boots():
    """``scripts/test -m "not slow"`` as the README gives it: no e2e test, no image build, the rest kept."""
    assert 'scripts/test -m "not slow"' in README.read_text()
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not slow", "-p", "no:cacheprovider",
         "tests/e2e", "tests/deploy", "tests/test_readme.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    ).stdout
    ids = [line for line in collected.splitlines() if "::" in line]
    assert not [i for i in ids if i.startswith(("tests/e2e/", "tests/deploy/test_deploy_container.py"))]
    assert any(i.startswith("tests/deploy/test_deploy_manifests.py") for i in ids)
    assert "tests/test_readme.py::test_quick_start_output_is_what_the_first_command_prints" in ids
    assert "tests/test_readme.py::test_the_first_command_works_as_written" not in ids
