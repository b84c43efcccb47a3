"""``nfd-hooks test``: the CI user's command (issue 26, item 6).

Before it, the documented pytest pattern run from another directory gave '1 skipped' (exit 0), a
bundle without expected.features was skipped silently, replay scanned USB although the shipped hook
runs --no-usb, and the exact comparison reported each extra label twice."""

import inspect
import os
import shutil
from pathlib import Path

import click
import pytest
import typer.main
import yaml

from nfd_hooks import api, cli
from nfd_hooks.flags import scan_options
from nfd_hooks.nodes import differences
from tests.conftest import FIXTURES, ROOT, run_cli

SAMPLE = FIXTURES / "nodes" / "rpi4b-ncs2-webcam"
MANIFESTS = ROOT / "manifests"
LEGEND = "(- expected, not given; + given, not expected; ~ expected -> given)"
# What a replay takes from the bundle, whatever the flags: not the hook's choice.
PATHS = ("sysfs", "devicetree", "devicetree_required", "dev", "usb_backend")


def bundle_with(tmp_path: Path, name: str, expected) -> Path:
    """The sample node's bundle under ``name``, with ``expected`` as its expected.features (None: none)."""
    bundle = tmp_path / name
    shutil.copytree(SAMPLE, bundle, symlinks=True, ignore=shutil.ignore_patterns("expected.features"))
    if expected is not None:
        (bundle / "expected.features").write_text(expected)
    return bundle


def test(args, cwd=None):
    done = run_cli(["test", *map(str, args)], cwd=cwd)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


test.__test__ = False  # a helper, not a test


def options_of(command: str, args) -> api.Options:
    """The options ``command`` builds from ``args``, parsed by the real command line."""
    group = typer.main.get_command(cli.app)
    context = group.get_command(click.Context(group), command).make_context(command, list(args))
    names = [name for name in inspect.signature(scan_options).parameters if name in context.params]
    return scan_options(context, **{name: context.params[name] for name in names})


def shipped_hook_args():
    daemonset = next(d for d in yaml.safe_load_all((MANIFESTS / "base" / "worker-daemonset.yaml").read_text()) if d)
    (base,) = [c for c in daemonset["spec"]["template"]["spec"]["initContainers"] if c["name"] == "nfd-hooks"]
    (helm,) = yaml.safe_load((MANIFESTS / "helm" / "values.yaml").read_text())["worker"]["initContainers"]
    return {"manifests/base": base["args"], "manifests/helm/values.yaml": helm["args"]}


@pytest.mark.parametrize("where", ["manifests/base", "manifests/helm/values.yaml"])
def test_the_defaults_are_the_shipped_hooks_and_cannot_drift(where):
    """The hook's args, parsed by `write` itself, give api.DEPLOYED_HOOK; `test` without flags gives it too."""
    command, *args = shipped_hook_args()[where]
    assert command == "write"
    hook = options_of("write", args)._asdict()
    tested = options_of("test", ["bundle"])._asdict()
    deployed = api.DEPLOYED_HOOK._asdict()
    for name in PATHS:
        del hook[name], tested[name], deployed[name]
    assert hook == deployed, f"{where} runs the hook with other options than api.DEPLOYED_HOOK"
    assert tested == deployed, "nfd-hooks test's defaults (flags.HOOK_DEFAULTS) are not api.DEPLOYED_HOOK"
    assert options_of("test", ["--usb", "bundle"]).use_usb and not deployed["use_usb"]


def test_it_replays_as_the_shipped_hook_and_says_so(tmp_path):
    """The sample's expected file lists its USB labels: the shipped hook (--no-usb) does not give them."""
    code, out, err = test([SAMPLE])
    assert code == 1
    assert out.splitlines() == [
        f"FAIL  {SAMPLE}: 5 differences from its expected.features {LEGEND}",
        "      - accelerator.feature.node.kubernetes.io/movidius-vpu.count=1",
        "      - accelerator.feature.node.kubernetes.io/movidius-vpu.present=true",
        "      - feature.node.kubernetes.io/usb-0e_046d_0825.present=true",
        "      - feature.node.kubernetes.io/usb-ef_046d_0825.present=true",
        "      - feature.node.kubernetes.io/usb-ff_03e7_2485.present=true",
        "      (USB labels expected: replayed without USB, as the shipped hook; --usb if yours scans USB)",
    ]
    assert err == "nfd-hooks: 0 passed, 1 failed; replayed as the shipped hook scans (--no-usb)\n"
    assert test(["--usb", SAMPLE])[:2] == (0, f"ok    {SAMPLE} (16 labels and raw features match)\n")


def test_exact_reports_each_difference_once_and_subset_only_what_is_listed(tmp_path):
    listed = "beta.devicetree.org/arm-cortex-a72=2\nbeta.devicetree.org/raspberrypi-4-model-b=1\nexample.com/gone=x\n"
    bundle = bundle_with(tmp_path / "nodes", "pi", listed)
    code, out, _ = test([bundle])
    lines = out.splitlines()
    assert code == 1 and lines[0] == f"FAIL  {bundle}: 11 differences from its expected.features {LEGEND}"
    assert "      ~ beta.devicetree.org/arm-cortex-a72=2 -> 4" in lines
    assert "      - example.com/gone=x" in lines
    assert "      + beta.devicetree.org/compatible/arm,cortex-a72=4 (raw)" in lines
    assert len(lines) == len(set(lines))  # a label is one line, not a label line and a raw feature line
    code, out, _ = test(["--subset", bundle])
    assert (code, out.splitlines()[1:]) == (1, ["      ~ beta.devicetree.org/arm-cortex-a72=2 -> 4", "      - example.com/gone=x"])
    (bundle / "expected.features").write_text("beta.devicetree.org/raspberrypi-4-model-b=1\n# +no-label\nbeta.devicetree.org/brcm-bcm2711=1\n")
    code, out, _ = test(["--subset", bundle])
    assert (code, out.splitlines()[1:]) == (1, ["      ~ beta.devicetree.org/brcm-bcm2711=1 (raw) -> 1"])  # a label, not raw


@pytest.mark.parametrize("layout", ["missing", "empty", "no bundles inside", "a file"])
def test_finding_no_bundle_fails(tmp_path, layout):
    target = tmp_path / "nodes"
    if layout == "empty":
        target.mkdir()
    elif layout == "no bundles inside":
        (target / "rpi4-gw" / "sys").mkdir(parents=True)
    elif layout == "a file":
        target.write_text("")
    code, out, err = test([target])
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and err.startswith(f"nfd-hooks: error: {target}: no ")


def test_a_relative_path_from_elsewhere_fails_instead_of_passing(tmp_path):
    """The doc's example test, run from another directory, gave '1 skipped' and exit 0."""
    code, _, err = test(["fixtures/nodes"], cwd=tmp_path)
    assert code == 2 and "fixtures/nodes: no such directory" in err
    assert test(["--usb", "fixtures/nodes"], cwd=ROOT)[0] == 0


def test_a_bundle_without_expected_fails_unless_told(tmp_path):
    nodes = tmp_path / "nodes"
    bare = bundle_with(nodes, "bare", None)
    good = bundle_with(nodes, "good", "beta.devicetree.org/brcm-bcm2711=1\n")
    code, out, _ = test(["--subset", nodes])
    assert code == 1 and out.splitlines() == [
        f"FAIL  {bare}: no expected.features", f"ok    {good} (1 listed labels and raw features match)"]
    code, out, err = test(["--subset", "--skip-without-expected", nodes])
    assert code == 0 and out.splitlines()[0] == f"skip  {bare}: no expected.features"
    assert err == "nfd-hooks: 1 passed, 0 failed, 1 skipped; replayed as the shipped hook scans (--no-usb)\n"
    assert test(["--skip-without-expected", bare])[0] == 2  # nothing compared is no pass


def test_a_damaged_bundle_is_an_error_and_the_others_are_still_tested(tmp_path):
    nodes = tmp_path / "nodes"
    broken = bundle_with(nodes, "broken", "beta.devicetree.org/brcm-bcm2711=1\n")
    good = bundle_with(nodes, "good", "beta.devicetree.org/brcm-bcm2711=1\n")
    (broken / "devicetree.dtb").write_bytes(b"\xd0\x0d\xfe\xed" + b"\0" * 60)
    (tmp_path / "nodes" / "notes").mkdir()
    code, out, err = test(["--subset", nodes])
    assert code == 2
    assert out.splitlines() == [
        f"ERROR {broken}: bundle damaged: devicetree.dtb does not match its sha256",
        f"ok    {good} (1 listed labels and raw features match)",
    ]
    assert err.splitlines() == [
        f"nfd-hooks: skipped {nodes / 'notes'}: not a bundle (no manifest.json)",
        "nfd-hooks: 1 passed, 0 failed, 1 could not be replayed; replayed as the shipped hook scans (--no-usb)",
    ]


def test_flags_of_the_hook_reach_the_replay(tmp_path):
    bundle = bundle_with(tmp_path, "pi", "dt.example.com/brcm-bcm2711=1\n")
    assert test(["--subset", bundle])[0] == 1
    assert test(["--subset", "--prefix", "dt.example.com", bundle])[0] == 0
    code, _, err = test(["--sysfs", "/sys", bundle])  # a bundle gives sysfs, devicetree, dev and the USB backend
    assert code == 2 and "No such option '--sysfs'" in err


def test_differences_of_the_library_are_those_of_the_command():
    expected = b"# hand-written\nexample.com/b=2\nexample.com/a=1\n# +no-label\nexample.com/raw=x y\n"
    actual = b"# Written by a tool\nexample.com/a=1\nexample.com/b=3\nexample.com/c=1\n# +no-label\nexample.com/raw=x y\n"
    assert differences(expected, actual) == ["~ example.com/b=2 -> 3", "+ example.com/c=1"]
    assert differences(expected, actual, subset=True) == ["~ example.com/b=2 -> 3"]


def test_an_expected_file_that_is_no_regular_file_is_an_error_not_a_hang(tmp_path):
    """Bundles come from strangers: a FIFO where expected.features should be must not block the run."""
    nodes = tmp_path / "nodes"
    fifo = bundle_with(nodes, "fifo", None)
    os.mkfifo(fifo / "expected.features")
    good = bundle_with(nodes, "good", "beta.devicetree.org/brcm-bcm2711=1\n")
    code, out, _ = test(["--subset", nodes])
    assert code == 2
    assert out.splitlines() == [
        f"ERROR {fifo}: cannot read expected.features: not a regular file",
        f"ok    {good} (1 listed labels and raw features match)",
    ]
