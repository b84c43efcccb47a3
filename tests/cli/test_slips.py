"""Small slips of the command line a new user met (issue 26, item 9), each as that user saw it."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nfd_hooks import cli
from tests.conftest import DTB_DIR, FIXTURES, ROOT, require_tool, run_cli

SAMPLE = str(FIXTURES / "nodes" / "rpi4b-ncs2-webcam")
COMMANDS = sorted(info.name or info.callback.__name__ for info in cli.app.registered_commands)


def one_error_line(done) -> str:
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert len(stderr.splitlines()) == 1 and stderr.startswith("nfd-hooks: error: "), stderr
    return stderr.strip()


def test_a_mistyped_command_is_suggested_once():
    line = one_error_line(run_cli(["shwo"]))
    assert line == "nfd-hooks: error: No such command 'shwo'. Did you mean 'show'?"


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "--node", "--replay", SAMPLE], "--node needs a value, not the option --replay"),
        # before, the option became the value: a devicetree named '--no-usb', a node named '--no-usb'
        (["show", "--devicetree", "--no-usb"], "--devicetree needs a value, not the option --no-usb"),
        (["show", "--no-usb", "--node", "--prefix=x.example.com"], "--node needs a value, not the option --prefix=x.example.com"),
        (["write", "--features-dir", "-q"], "--features-dir needs a value, not the option -q"),
    ],
)
def test_an_option_is_never_taken_as_the_value_of_the_one_before(args, message):
    assert one_error_line(run_cli(args)) == f"nfd-hooks: error: {message}"


def test_values_that_only_look_like_options_are_still_values():
    done = run_cli(["show", "--devicetree", str(DTB_DIR / "rpi-4-b.dtb"), "--no-usb", "--node", "-gpu-", "--", ])
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as uid 65534")
def test_write_as_another_uid_names_the_features_directory():
    """NFD's worker runs as 65534; a hook run so (Helm's unprivileged values) cannot write a root-owned 0755 features.d."""
    with tempfile.TemporaryDirectory(prefix="nfd-hooks-uid-") as top:  # pytest's tmp_path is private to root
        os.chmod(top, 0o755)
        features = Path(top) / "features.d"
        features.mkdir(mode=0o755)
        _write_as_nobody(features)


def _write_as_nobody(features: Path) -> None:
    setpriv = require_tool("setpriv")  # util-linux; subprocess's user= cannot reach a venv under /root
    done = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "nfd_hooks",
         "write", "--replay", SAMPLE, "--no-usb", "--features-dir", str(features)],
        capture_output=True, timeout=60, cwd=ROOT,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert stderr == f"nfd-hooks: error: cannot write into features directory {features}: Permission denied (as uid 65534)\n"


@pytest.mark.parametrize(
    "command, argument, description",
    [
        ("capture", "DIR", "Where to write the bundle: a new or empty directory."),
        ("check", "FILE...", "Features files; a directory stands for the files NFD reads in it."),
    ],
)
def test_arguments_are_described_once_in_help(command, argument, description):
    out = run_cli([command, "--help"], env={**os.environ, "COLUMNS": "200"}).stdout.decode()
    lines = [line.strip() for line in out.splitlines() if line.strip().startswith(argument + " ")]
    assert len(lines) == 1 and lines[0].startswith(f"{argument}  {description}"), out


def test_the_command_summaries_are_whole():
    out = run_cli(["--help"], env={**os.environ, "COLUMNS": "80"}).stdout.decode()
    listing = out.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    summaries, name = {}, ""
    for line in listing.splitlines():
        if line[2] != " ":  # a command's first line; click wraps the rest under the summary
            name, _, text = line.strip().partition(" ")
            summaries[name] = text.strip()
        else:
            summaries[name] += " " + line.strip()
    assert sorted(summaries) == COMMANDS
    for info in cli.app.registered_commands:
        name = info.name or info.callback.__name__
        first_paragraph = " ".join(info.callback.__doc__.split("\n\n")[0].split())
        assert summaries[name] == first_paragraph
        assert not summaries[name].endswith("...") and re.search(r"[.)]$", summaries[name]), summaries[name]
