"""The CLI as a user meets it: exit codes, one-line errors, never a traceback."""

import os
import stat
import subprocess
from pathlib import Path
from typing import List

import pytest
from typer.main import get_command_name

from nfd_hooks import cli
from nfd_hooks.usage import narrowed
from nfd_hooks.nfdfile import label_problem
from tests.conftest import DTB_DIR, ROOT, features_entries, labels_of, require_tool, run_cli
from tests.fdt_expand import expand

PI = str(DTB_DIR / "rpi-4-b.dtb")


def assert_one_line_error(done, code):
    stderr = done.stderr.decode()
    assert done.returncode == code, stderr
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("nfd-hooks: error: ")


def test_show_prints_exactly_what_write_writes(tmp_path):
    shown = run_cli(["show", "--devicetree", PI, "--no-usb"])
    written = run_cli(["write", "--devicetree", PI, "--no-usb", "--features-dir", str(tmp_path)])
    assert shown.returncode == written.returncode == 0
    assert (tmp_path / "nfd-hooks").read_bytes() == shown.stdout


def test_write_with_name(tmp_path):
    done = run_cli(["write", "--devicetree", PI, "--no-usb", "--features-dir", str(tmp_path), "--name", "dt"])
    assert done.returncode == 0
    assert (tmp_path / "dt").is_file()
    assert stat.S_IMODE((tmp_path / "dt").stat().st_mode) == 0o644


def test_node_without_devicetree_or_usb_still_gets_a_valid_file(tmp_path):
    """Like this machine: nothing under <sysfs>/firmware/devicetree, no USB."""
    sysfs = tmp_path / "sys"
    sysfs.mkdir()
    out = tmp_path / "features.d"
    out.mkdir()
    done = run_cli(["write", "--sysfs", str(sysfs), "--features-dir", str(out)])
    assert done.returncode == 0, done.stderr
    assert "no devicetree" in done.stderr.decode()
    content = (out / "nfd-hooks").read_text()
    assert content.startswith("# Written by nfd-hooks")
    assert all(label_problem(k, v) is None for k, v in labels_of(content.encode()).items())


def test_write_on_this_machine_exits_zero(tmp_path):
    done = run_cli(["write", "--features-dir", str(tmp_path), "--no-usb"])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "nfd-hooks").read_text().startswith("# Written by nfd-hooks")


def test_expires_in_adds_an_rfc3339_expiry(tmp_path):
    done = run_cli(["show", "--devicetree", PI, "--no-usb", "--expires-in", "1h30m"])
    assert done.returncode == 0
    line = done.stdout.decode().splitlines()[1]
    assert line.startswith("# +expiry-time=20") and line.endswith("Z")


def test_output_is_byte_identical_across_runs():
    runs = {run_cli(["show", "--devicetree", str(DTB_DIR / "hostile.dtb"), "--no-usb"]).stdout for _ in range(3)}
    assert len(runs) == 1


@pytest.mark.parametrize(
    "args,code",
    [
        (["show", "--bogus"], 2),
        (["show", "--format", "xml"], 2),
        (["show", "--expires-in", "soon"], 2),
        (["show", "--prefix", "Not A Prefix"], 2),
        (["show", "--prefix", "kubernetes.io"], 2),
        (["show", "--devicetree", "/nonexistent/tree"], 2),
        (["show", "--devicetree", str(ROOT / "README.md")], 2),
        (["show", "--node", "a/b"], 2),
        (["frobnicate"], 2),
        (["write", "--devicetree", PI, "--features-dir", "/nonexistent/features.d"], 1),
    ],
)
def test_errors_are_one_line_with_documented_codes(args, code):
    assert_one_line_error(run_cli(args), code)


@pytest.mark.parametrize("cut", [8, 40, 100, 1000, 20000])
def test_truncated_dtb_is_one_line_exit_2(tmp_path, cut):
    blob = tmp_path / "torn.dtb"
    blob.write_bytes((DTB_DIR / "rpi-4-b.dtb").read_bytes()[:cut])
    assert_one_line_error(run_cli(["show", "--devicetree", str(blob), "--no-usb"]), 2)


def test_bad_name_keeps_previous_file(tmp_path):
    (tmp_path / "nfd-hooks").write_text("previous\n")
    done = run_cli(["write", "--devicetree", PI, "--features-dir", str(tmp_path), "--name", ".hidden"])
    assert_one_line_error(done, 2)
    assert (tmp_path / "nfd-hooks").read_text() == "previous\n"


def test_unwritable_directory_is_exit_1_and_keeps_the_file(tmp_path):
    """An immutable directory refuses new files even to root, like a read-only mount."""
    chattr = require_tool("chattr")
    out = tmp_path / "features.d"
    out.mkdir()
    (out / "nfd-hooks").write_text("previous\n")
    if subprocess.run([chattr, "+i", str(out)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem or user cannot set the immutable attribute")
    try:
        done = run_cli(["write", "--devicetree", PI, "--no-usb", "--features-dir", str(out)])
    finally:
        subprocess.run([chattr, "-i", str(out)], check=True)
    assert_one_line_error(done, 1)
    assert (out / "nfd-hooks").read_text() == "previous\n"
    assert features_entries(out) == ["nfd-hooks"]


def test_unreadable_live_tree_property_is_skipped_not_fatal(tmp_path):
    tree = expand((DTB_DIR / "rpi-4-b.dtb").read_bytes(), tmp_path / "base")
    (tree / "cpus" / "cpu@0" / "compatible").unlink()
    (tree / "cpus" / "cpu@0" / "compatible").mkdir()  # torn: a directory where a property should be
    os.mkfifo(tree / "cpus" / "cpu@1" / "status")  # a FIFO must not hang the reader
    done = run_cli(["show", "--devicetree", str(tree), "--no-usb"])
    assert done.returncode == 0, done.stderr
    assert "beta.devicetree.org/arm-cortex-a72=3" in done.stdout.decode()


def test_help_has_examples():
    done = run_cli(["show", "--help"])
    assert done.returncode == 0
    assert "Examples:" in done.stdout.decode()


def test_version():
    done = run_cli(["--version"])
    assert done.returncode == 0
    assert done.stdout.decode().startswith("nfd-hooks ")


def test_symlink_loops_in_a_live_tree_are_not_followed(tmp_path):
    tree = expand((DTB_DIR / "rpi-4-b.dtb").read_bytes(), tmp_path / "base")
    (tree / "cpus" / "loop").symlink_to("..")
    (tree / "cpus" / "cpu@9").symlink_to("cpu@0")
    done = run_cli(["show", "--devicetree", str(tree), "--no-usb"])
    assert done.returncode == 0
    assert "beta.devicetree.org/arm-cortex-a72=4" in done.stdout.decode()


def test_cli_runs_from_outside_the_checkout(tmp_path):
    done = run_cli(["show", "--devicetree", PI, "--no-usb"], cwd=Path(tmp_path))
    assert done.returncode == 0


COMMANDS = sorted(info.name or get_command_name(info.callback.__name__) for info in cli.app.registered_commands)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("extra", [["--help"], ["--bogus"]])
def test_the_narrowed_application_behaves_as_the_full_one(command, extra, capsys):
    """run() builds only the command asked for (start-up time): help and usage errors are unchanged."""

    def outcome(application):
        try:
            code = application(args=[command, *extra], prog_name="nfd-hooks", standalone_mode=False)
        except cli.UsageProblem as error:
            code = f"{type(error).__name__}: {error.format_message()}"
        out = capsys.readouterr()
        return code, out.out, out.err

    only = narrowed(cli.app, [command, *extra])
    assert [info.name or get_command_name(info.callback.__name__) for info in only.registered_commands] == [command]
    assert outcome(only) == outcome(cli.app)


@pytest.mark.parametrize("argv", [[], ["--help"], ["--version"], ["frobnicate"], ["--sysfs", "show"]])
def test_anything_but_a_command_gets_the_full_application(argv):
    assert narrowed(cli.app, argv) is cli.app


SCANNING = ["show", "write", "watch"]
EDGE_NODE = str(ROOT / "fixtures" / "usb" / "edge-node")


@pytest.mark.parametrize("command", SCANNING)
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--prefix", "Bad Prefix"], "--prefix 'Bad Prefix' must be"),
        (["--accelerator-prefix", "-x"], "--accelerator-prefix '-x'"),
        (["--node", "soc/cpu"], "--node 'soc/cpu' must be a node name"),
        (["--usb-class", "zz"], "--usb-class"),
        (["--replay", "bundle", "--sysfs", "/sys"], "drop --sysfs"),
    ],
)
def test_the_shared_scan_options_reach_every_scanning_command(command, flags, message, tmp_path, capsys):
    """show, write and watch share one declaration of the scan options: each refuses the same bad value the same way."""
    extra = [] if command == "show" else ["--features-dir", str(tmp_path)]
    assert cli.run([command, "--no-devicetree", *extra, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nfd-hooks: error: ") and message in err and len(err.splitlines()) == 1, err
    assert features_entries(tmp_path) == []


def test_show_and_write_build_the_same_options_from_the_same_flags(tmp_path):
    flags = ["--sysfs", EDGE_NODE, "--no-devicetree", "--usb-class", "08", "--usb-label-fields", "class,vendor",
             "--accelerator-prefix", "accel.example.com"]
    shown = run_cli(["show", *flags])
    written = run_cli(["write", *flags, "--features-dir", str(tmp_path)])
    assert shown.returncode == written.returncode == 0, (shown.stderr, written.stderr)
    assert (tmp_path / "nfd-hooks").read_bytes() == shown.stdout
    labels = labels_of(shown.stdout)
    assert labels["feature.node.kubernetes.io/usb-08_0781.present"] == "true"  # the SanDisk stick, class and vendor only
    assert labels["accel.example.com/edgetpu.count"] == "2"
    assert not any(name.startswith("beta.devicetree.org/") for name in labels)


def examples(command: str) -> List[str]:
    """The example lines under COMMAND --help."""
    out = run_cli([command, "--help"], env={**os.environ, "COLUMNS": "80"}).stdout.decode()
    tail = out.split("Examples:", 1)[1]
    return [line.strip().split("  #")[0].strip() for line in tail.splitlines() if line.strip()]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_examples_of_its_own_that_parse(command):
    """Examples per command, each a command line the CLI accepts, none tied to the repository."""
    import shlex

    import typer.main

    own = examples(command)
    assert own and any(line.startswith(f"nfd-hooks {command}") for line in own)
    others = {line for other in COMMANDS if other != command for line in examples(other)}
    assert not set(own) & others  # not one block repeated under every command
    group = typer.main.get_command(cli.app)
    for line in own:
        assert "fixtures" not in line and len(line) + 4 <= 80, line
        name, *words = shlex.split(line.replace("COMMAND", command))
        sub = group.get_command(None, words[0])
        sub.make_context(words[0], words[1:])  # raises on an unknown flag or a bad choice


def test_help_lists_the_choices_of_format_and_usb_backend():
    out = " ".join(run_cli(["show", "--help"]).stdout.decode().split())
    assert "--format [nfd|json|table]" in out
    assert "--usb-backend [auto|sysfs|udev|libusb]" in out


def test_shell_completion_completes_flags_and_choices():
    script = run_cli(["--show-completion", "bash"], env={**os.environ, "SHELL": "/bin/bash"})
    assert script.returncode == 0 and "_NFD_HOOKS_COMPLETE=complete_bash" in script.stdout.decode()

    def complete(words: str) -> List[str]:
        env = {**os.environ, "_NFD_HOOKS_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split(" ")) - 1)}
        done = run_cli([], env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout.decode().split()

    assert complete("nfd-hooks show --for") == ["--format"]
    assert complete("nfd-hooks show --format ") == ["nfd", "json", "table"]
    assert complete("nfd-hooks show --usb-backend ") == ["auto", "sysfs", "udev", "libusb"]
    assert complete("nfd-hooks wa") == ["watch"]


def test_best_effort_reports_a_failed_write_exits_zero_and_keeps_the_old_file(tmp_path, monkeypatch):
    """The shipped initContainers' --best-effort: the write fails (the target is a
    directory), one error line says so, the previous file is untouched, exit 0;
    the same error is the termination message Kubernetes shows for the container."""
    old = tmp_path / "nfd-hooks"
    old.write_text("example.com/old=1\n")
    args = ["write", "--devicetree", PI, "--no-usb", "--features-dir", str(tmp_path / "missing")]
    failed = run_cli(args)
    assert_one_line_error(failed, 1)
    done = run_cli(args + ["--best-effort"])
    assert_one_line_error(done, 0)
    assert "--best-effort" in done.stderr.decode()
    assert old.read_text() == "example.com/old=1\n"
    # In a pod: the message also goes to the termination-message file the kubelet made.
    termination = tmp_path / "termination-log"
    termination.write_text("")
    monkeypatch.setattr(cli, "TERMINATION_LOG", termination)
    assert cli.run(args + ["--best-effort"]) == 0
    assert termination.read_text().startswith("nfd-hooks: error: ") and "missing" in termination.read_text()
    # Outside a pod there is no such file, and none is made.
    monkeypatch.setattr(cli, "TERMINATION_LOG", tmp_path / "absent")
    assert cli.run(args + ["--best-effort"]) == 0
    assert not (tmp_path / "absent").exists()
