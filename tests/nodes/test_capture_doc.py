"""docs/capture.md's CI path, run as written (issue 26, item 6): its expected file, its jobs'
commands (GitHub Actions and GitLab CI), its recorded-file commands and its pytest file, in a
scratch repository holding the sample node as fixtures/nodes/rpi4-gw. Each passes, fails on a
wrong count, and fails when it finds no bundle."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from tests.conftest import FIXTURES, ROOT

DOC = ROOT / "docs" / "capture.md"
SAMPLE = FIXTURES / "nodes" / "rpi4b-ncs2-webcam"
BLOCK = re.compile(r"^ *```(\w+)\n(.*?)^ *```\n", re.MULTILINE | re.DOTALL)
INSTALL = re.compile(r'^pip install "nfd-hooks @ git\+https://\S+@v\d+\.\d+\.\d+"$')


def blocks() -> Dict[str, str]:
    """The doc's fenced blocks by their first line, indentation removed."""
    found = {}
    for match in BLOCK.finditer(DOC.read_text()):
        indent = len(match.group(0)) - len(match.group(0).lstrip(" "))
        text = "".join(line[indent:] + "\n" for line in match.group(2).splitlines())
        found[text.splitlines()[0]] = text
    return found


def block(first_line: str) -> str:
    found = blocks()
    assert first_line in found, f"docs/capture.md has no block starting {first_line!r}"
    return found[first_line]


def job_commands() -> Dict[str, List[str]]:
    """The shell commands of each CI job in the doc, in order."""
    github = yaml.safe_load(block("# .github/workflows/node-labels.yml"))
    gitlab = yaml.safe_load(block("# .gitlab-ci.yml"))
    return {
        "github": [step["run"] for step in github["jobs"]["node-labels"]["steps"] if "run" in step],
        "gitlab": list(gitlab["node-labels"]["script"]),
    }


@pytest.fixture
def repository(tmp_path):
    """A user's repository: the sample node captured as fixtures/nodes/rpi4-gw, the doc's expected file beside it."""
    repo = tmp_path / "repo"
    bundle = repo / "fixtures" / "nodes" / "rpi4-gw"
    shutil.copytree(SAMPLE, bundle, symlinks=True, ignore=shutil.ignore_patterns("expected.features", "README.md"))
    (bundle / "expected.features").write_text(block("# fixtures/nodes/rpi4-gw/expected.features: what our rules select this gateway by"))
    return repo


def run_job(commands: List[str], cwd: Path) -> subprocess.CompletedProcess:
    """The job's commands in bash, as a runner does, the install aside (this checkout's nfd-hooks is on PATH)."""
    assert INSTALL.match(commands[0]), commands[0]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = "set -e\n" + "\n".join(commands[1:]) + "\n"
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_the_ci_jobs_pass_fail_on_a_wrong_label_and_on_no_bundle(ci, repository):
    commands = job_commands()[ci]
    assert any(command.startswith("nfd-hooks test") for command in commands)
    done = run_job(commands, repository)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout + done.stderr == block("ok    fixtures/nodes/rpi4-gw (3 listed labels and raw features match)")
    expected = repository / "fixtures" / "nodes" / "rpi4-gw" / "expected.features"
    expected.write_text(expected.read_text().replace("arm-cortex-a72=4", "arm-cortex-a72=2"))
    wrong = run_job(commands, repository)
    assert wrong.returncode == 1
    assert wrong.stdout.splitlines()[1:] == ["      ~ beta.devicetree.org/arm-cortex-a72=2 -> 4"]  # once, not as label and raw
    shutil.rmtree(repository / "fixtures" / "nodes" / "rpi4-gw")
    none = run_job(commands, repository)
    assert none.returncode == 2 and "no bundle in it" in none.stderr


def test_the_recorded_file_commands_pass_and_then_compare_everything(repository):
    commands = [line for line in block("# exact: record what the deployed hook gives the board, review it, commit it").splitlines()
                if not line.startswith("#")]
    done = run_job(['pip install "nfd-hooks @ git+https://x/nfd-hooks@v0.1.0"', *commands], repository)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok    fixtures/nodes/rpi4-gw (11 labels and raw features match)")  # 5 labels, 6 raw
    with_usb = subprocess.run([sys.executable, "-m", "nfd_hooks", "test", "--usb", "fixtures/nodes"], cwd=repository,
                              capture_output=True, text=True, timeout=120)
    assert with_usb.returncode == 1  # exact: the USB labels are extra
    assert "+ feature.node.kubernetes.io/usb-ff_03e7_2485.present=true" in with_usb.stdout


def test_the_pytest_file_passes_from_another_directory_and_fails_without_bundles(repository, tmp_path):
    """Before: Path("fixtures/nodes") from another directory gave '1 skipped', exit 0."""
    test_file = repository / "tests" / "test_nodes.py"
    test_file.parent.mkdir()
    test_file.write_text(block("# tests/test_nodes.py"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pytest_run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)]
    done = subprocess.run(pytest_run, cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout
    shutil.rmtree(repository / "fixtures" / "nodes" / "rpi4-gw")
    (repository / "fixtures" / "nodes" / "notes").mkdir()
    empty = subprocess.run(pytest_run, cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert empty.returncode != 0 and "no bundle in it" in empty.stdout, empty.stdout
