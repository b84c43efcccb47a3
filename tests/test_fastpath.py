"""The fast path must be invisible: same bytes, same errors, same exit codes as typer.

Every command line here runs twice in-process, once as users get it and once
with the fast path switched off (all of it through typer), and the two results
must match. The grammar table must also match what typer itself declares.
"""

import errno
import io
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nfd_hooks import api, cli, fastpath
from tests.conftest import DTB_DIR, ROOT

PI = str(DTB_DIR / "rpi-4-b.dtb")
OUT = "@OUT@"  # stands for a fresh features directory per run
Result = Tuple[int, bytes, str, bytes]


@contextmanager
def captured() -> Iterator[Tuple[io.BytesIO, io.StringIO]]:
    """Capture what the CLI prints (it writes bytes to sys.stdout.buffer)."""
    stdout, stderr = io.BytesIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    wrapper = io.TextIOWrapper(stdout, write_through=True)
    sys.stdout, sys.stderr = wrapper, stderr
    try:
        yield stdout, stderr
    finally:
        sys.stdout, sys.stderr = saved
        wrapper.detach()  # keep stdout open for the caller


def run_once(argv: List[str], out: Path) -> Result:
    out.mkdir()
    args = [str(out) if a == OUT else a.replace(OUT, str(out)) for a in argv]
    with captured() as (stdout, stderr):
        try:
            code = cli.run(args)
        except SystemExit as done:
            code = done.code
    written = (out / "nfd-hooks").read_bytes() if (out / "nfd-hooks").exists() else b""
    return code, stdout.getvalue(), stderr.getvalue().replace(str(out), OUT), written


def both(argv: List[str], tmp: Path, monkeypatch) -> Tuple[Result, Result, bool]:
    """(fast path result, typer result, whether the fast path took it)."""
    taken = fastpath.parse(argv, cli.FAST_COMMANDS, cli.FAST_OPTIONS) is not None
    fast = run_once(argv, tmp / "fast")
    with monkeypatch.context() as patch:
        patch.setattr(fastpath, "parse", lambda *_: None)
        slow = run_once(argv, tmp / "typer")
    return normalised(fast), normalised(slow), taken


def normalised(result: Result) -> Result:
    """The expiry time follows the clock; both runs may straddle a second."""
    code, stdout, stderr, written = result
    stamp = re.compile(rb"expiry-time=\S+")
    return code, stamp.sub(b"expiry-time=T", stdout), stderr, stamp.sub(b"expiry-time=T", written)


COMMON = [
    ["show", "--devicetree", PI, "--no-usb"],
    ["show", "--devicetree=" + PI, "--no-usb", "--format", "json"],
    ["show", "--devicetree", PI, "--node", "cpus", "--node", "soc", "--include-disabled"],
    ["show", "--devicetree", PI, "--prefix", "dt.example.com", "--no-raw-features", "--expires-in", "1h30m"],
    ["show", "--sysfs", "/nonexistent", "--no-usb"],
    ["show", "--no-devicetree", "--no-usb"],
    ["write", "--devicetree", PI, "--no-usb", "--features-dir", OUT],
    ["write", "--devicetree", PI, "--features-dir", OUT, "--name", "dt", "--expires-in", "2d"],
]

ODD = [
    [],
    ["show", "--help"],
    ["show", "-h"],
    ["--version"],
    ["show", "--version"],
    ["show", "--bogus"],
    ["show", "--format", "xml"],
    ["show", "--format=xml", "--devicetree", PI],
    ["show", "--expires-in", "soon"],
    ["show", "--expires-in", "0s", "--devicetree", PI],
    ["show", "--expires-in"],
    ["show", "--prefix", "Not A Prefix"],
    ["show", "--prefix", "kubernetes.io", "--devicetree", PI],
    ["show", "--prefix="],
    ["show", "--prefix", "-x"],
    ["show", "--devicetree", "/nonexistent/tree"],
    ["show", "--devicetree", str(ROOT / "README.md")],
    ["show", "--devicetree", PI, "--devicetree", PI],
    ["show", "--node", "a/b", "--devicetree", PI],
    ["show", "--no-usb", "--no-usb", "--devicetree", PI],
    ["show", "--no-usb=1"],
    ["show", "--features-dir", OUT],
    ["show", "--", "--no-usb"],
    ["show", "extra"],
    ["frobnicate"],
    ["write", "--devicetree", PI, "--features-dir", "/nonexistent/features.d"],
    ["write", "--devicetree", PI, "--features-dir", OUT, "--name", ".hidden"],
    ["write", "--devicetree", PI, "--features-dir", OUT, "--format", "json"],
]


@pytest.mark.parametrize("argv", COMMON, ids=" ".join)
def test_common_command_lines_take_the_fast_path_and_match_typer(argv, tmp_path, monkeypatch):
    fast, slow, taken = both(argv, tmp_path, monkeypatch)
    assert taken
    assert fast == slow
    assert fast[0] == 0, fast[2]


@pytest.mark.parametrize("argv", ODD, ids=" ".join)
def test_odd_command_lines_match_typer(argv, tmp_path, monkeypatch):
    fast, slow, _ = both(argv, tmp_path, monkeypatch)
    assert fast == slow


TOKENS = st.sampled_from(
    ["show", "write", "--devicetree", PI, "--no-usb", "--no-devicetree", "--node", "cpus", "--format", "json",
     "nfd", "--expires-in", "15m", "1x", "--prefix", "p.example", "--features-dir", OUT, "--name", "x",
     "--include-disabled", "--no-raw-features", "--sysfs", "/nonexistent", "-h", "--devicetree=" + PI, ""]
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(TOKENS, max_size=7))
def test_any_mix_of_tokens_matches_typer(tmp_path_factory, monkeypatch, argv):
    fast, slow, _ = both(argv, tmp_path_factory.mktemp("mix"), monkeypatch)
    assert fast == slow


@pytest.mark.parametrize("trouble", [KeyboardInterrupt, EOFError, BrokenPipeError, PermissionError])
def test_a_command_interrupted_ends_as_under_typer(trouble, tmp_path, monkeypatch):
    """typer's main loop turns these into exit codes; the fast path must do the same."""

    def scan(options):
        if trouble is BrokenPipeError:
            raise trouble(errno.EPIPE, "Broken pipe")
        raise trouble(errno.EACCES, "Permission denied") if trouble is PermissionError else trouble()

    monkeypatch.setattr(api, "scan", scan)
    argv = ["show", "--devicetree", PI]
    if trouble is PermissionError:  # any other OSError is a bug: both let it through
        with pytest.raises(PermissionError):
            run_once(argv, tmp_path / "a")
        return
    fast, slow, taken = both(argv, tmp_path, monkeypatch)
    assert taken and fast == slow


def test_closed_stdout_ends_as_under_typer():
    """A real closed pipe, in a real process: same exit code and stderr both ways."""
    results = []
    for prelude in ("", "nfd_hooks.fastpath.parse = lambda *a: None; "):
        read, write = os.pipe()
        os.close(read)
        code = f"import sys, nfd_hooks.cli, nfd_hooks.fastpath; {prelude}sys.exit(nfd_hooks.cli.run(sys.argv[1:]))"
        done = subprocess.run(
            [sys.executable, "-c", code, "show", "--devicetree", PI, "--no-usb"],
            stdout=write, stderr=subprocess.PIPE, timeout=60,
        )
        os.close(write)
        results.append((done.returncode, done.stderr))
    assert results[0] == results[1]
    assert results[0][0] == 1


def test_an_existing_unreadable_path_is_left_to_typer(monkeypatch):
    """typer refuses it (readable=True is its default); root cannot be denied, so os.access is."""
    monkeypatch.setattr(fastpath.os, "access", lambda path, mode: str(path) != PI)
    assert fastpath.parse(["show", "--devicetree", PI], cli.FAST_COMMANDS, cli.FAST_OPTIONS) is None
    monkeypatch.setattr(fastpath.os, "access", lambda path, mode: str(path) != "/sys")
    assert fastpath.parse(["show", "--devicetree", PI], cli.FAST_COMMANDS, cli.FAST_OPTIONS) is None


def test_shell_completion_is_left_to_typer(monkeypatch):
    monkeypatch.setenv(fastpath.COMPLETE_VAR, "bash_complete")
    assert fastpath.parse(["show", "--no-usb"], cli.FAST_COMMANDS, cli.FAST_OPTIONS) is None


def test_the_grammar_is_typers():
    """Every option typer declares is in the table with its parameter, flag-ness and
    multiplicity, so no option silently falls back (or is read differently)."""
    group = typer.main.get_command(cli.app)
    registered = {c.name or c.callback.__name__: c.callback for c in cli.app.registered_commands}
    assert cli.FAST_COMMANDS == registered
    assert set(registered) == set(group.commands)
    declared = {}
    for command in group.commands.values():
        for param in command.params:
            if param.name == "help":
                continue
            (option,) = param.opts
            declared[option] = (param.name, bool(param.is_flag), bool(param.multiple))
    table = {o: (s.parameter, s.convert is None, s.multiple) for o, s in cli.FAST_OPTIONS.items()}
    assert table == declared
