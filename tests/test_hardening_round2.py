"""Regressions of issue 25, the second adversarial trial: each of these leaked a
file the tool was not asked to read, cost a node its file, killed the watcher,
printed a traceback or gave a wrong exit code or output before its fix (each was
run against the code before the fix and failed there). Processes run under a
timeout, so a regression that hangs fails here instead of hanging the suite."""

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from nfd_hooks import api, safe_read
from nfd_hooks.errors import InputError
from tests.conftest import DTB_DIR
from tests.fdt_expand import expand

RPI = DTB_DIR / "rpi-4-b.dtb"
SECRET = b"TOPSECRET-shadow-line"


def run(args: List[str], timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
    """``nfd-hooks ARGS`` as a process; a hang past ``timeout`` is a failure."""
    try:
        return subprocess.run([sys.executable, "-m", "nfd_hooks", *args], capture_output=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        pytest.fail(f"nfd-hooks {' '.join(args)} still running after {timeout} s")


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    """In-process tests run through openat2 and through the walk used where it is refused."""
    monkeypatch.setattr(safe_read, "_openat2", None if request.param == "openat2" else False)
    return request.param


def secret_tree(directory: Path) -> Path:
    """A devicetree outside every root the tests name, whose model is a 0600 secret."""
    (directory / "base").mkdir(parents=True)
    (directory / "base" / "compatible").write_bytes(b"acme,outside\0")
    (directory / "base" / "model").write_bytes(SECRET + b"\0")
    os.chmod(directory / "base" / "model", 0o600)
    return directory


def files_of(directory: Path) -> bytes:
    """Every byte of every regular file under ``directory``."""
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file() and not p.is_symlink())


# ---------------------------------------------------------------- 2: --sysfs ROOT confines the devicetree


@pytest.mark.parametrize("linked", ["devicetree", "base"])
def test_a_symlinked_devicetree_under_sysfs_is_not_followed_out(tmp_path, resolver, linked):
    """ROOT/firmware/devicetree (or .../base) linking out of ROOT was followed: an outside
    0600 model became root/model=..., and capture packed it into the bundle."""
    outside = secret_tree(tmp_path / "outside")
    sysfs = tmp_path / "sys"
    (sysfs / "firmware").mkdir(parents=True)
    if linked == "devicetree":
        (sysfs / "firmware" / "devicetree").symlink_to(outside)
    else:
        (sysfs / "firmware" / "devicetree").mkdir()
        (sysfs / "firmware" / "devicetree" / "base").symlink_to(outside / "base")
    options = api.Options(sysfs=sysfs, use_usb=False)
    result = api.scan(options)
    assert SECRET not in api.render_scan(result, options)
    assert not any("acme" in f.name for f in result.features)
    assert not any(SECRET.decode() in notice for notice in result.notices)
    assert any("leads outside" in notice for notice in result.notices), result.notices
    bundle = tmp_path / "bundle"
    api.capture(bundle, sysfs)
    assert SECRET not in files_of(bundle) and not (bundle / "devicetree.dtb").exists()


def test_a_devicetree_linked_inside_sysfs_is_still_read(tmp_path, resolver):
    """Confinement is by where a link really leads: one that stays in ROOT is read."""
    sysfs = tmp_path / "sys"
    expand(RPI.read_bytes(), sysfs / "real-tree")
    (sysfs / "firmware" / "devicetree").mkdir(parents=True)
    (sysfs / "firmware" / "devicetree" / "base").symlink_to("../../real-tree")
    options = api.Options(sysfs=sysfs, use_usb=False)
    labels = {f.name: f.value for f in api.scan(options).features if f.label}
    assert labels["beta.devicetree.org/raspberrypi-4-model-b"] == "1"


def test_a_devicetree_linked_to_the_root_is_refused_at_once(tmp_path):
    """Pointing base at / walked the whole filesystem (12.8 s)."""
    sysfs = tmp_path / "sys"
    (sysfs / "firmware" / "devicetree").mkdir(parents=True)
    (sysfs / "firmware" / "devicetree" / "base").symlink_to("/")
    done = run(["show", "--sysfs", str(sysfs), "--no-usb"], timeout=10)
    assert done.returncode == 0, done.stderr
    assert b"leads outside" in done.stderr and b"beta.devicetree.org" not in done.stdout


def test_the_devicetree_directory_check_follows_no_link_out(tmp_path, resolver):
    """Issue 26's "is this a devicetree directory" looks at the opened tree, not at path
    text: a 'name' linked out of it is no top, and its hints (a 'base' or a sysfs root
    below) are looked up beneath it, so a link to a real tree elsewhere gives none."""
    outside = secret_tree(tmp_path / "outside")
    (outside / "base" / "name").write_bytes(b"\0")
    named = tmp_path / "named"
    named.mkdir()
    (named / "name").symlink_to(outside / "base" / "name")
    (named / "base").symlink_to(outside / "base")
    with pytest.raises(InputError) as refused:
        api.scan(api.Options(devicetree=named, use_usb=False))
    assert "not a devicetree directory" in str(refused.value) and "did you mean" not in str(refused.value)
    (named / "base").unlink()
    (named / "base").mkdir()
    (named / "base" / "name").write_bytes(b"\0")
    with pytest.raises(InputError, match="did you mean .*named/base"):
        api.scan(api.Options(devicetree=named, use_usb=False))
    sysfs = tmp_path / "sys"
    (sysfs / "firmware" / "devicetree").mkdir(parents=True)
    (sysfs / "firmware" / "devicetree" / "base").symlink_to(outside / "base")
    result = api.scan(api.Options(sysfs=sysfs, use_usb=False))
    assert any("leads outside" in notice for notice in result.notices), result.notices
    assert not any(f.name.startswith("beta.devicetree.org") for f in result.features)


# ---------------------------------------------------------------- 7: capture and replay agree at every size limit


def live_and_replay(sysfs: Path, bundle: Path) -> List[bytes]:
    """What ``show --sysfs`` prints for ``sysfs``, and what ``show --replay`` prints for its capture."""
    live = api.Options(sysfs=sysfs, usb_backend="sysfs")
    api.capture(bundle, sysfs)
    replayed = api.replay_options(bundle, api.Options())
    return [api.render_scan(api.scan(options), options) for options in (live, replayed)]


def test_descriptors_past_64_kib_replay_as_read_live(tmp_path):
    """Capture cut every attribute at 64 KiB while the reader reads descriptors up to
    512 KiB: an interface described past 64 KiB lost its label on replay, silently."""
    from tests.fakehost import NCS2, add_usb_device
    from tests.usb.test_usb_descriptors import DEVICE, config, interface

    sysfs = tmp_path / "sys"
    add_usb_device(sysfs, NCS2)
    device = sysfs / NCS2.path
    for directory in device.glob("2-1:*"):  # a recording with the descriptors only
        (sysfs / "bus" / "usb" / "devices" / directory.name).unlink()
        for attribute in directory.iterdir():
            attribute.unlink()
        directory.rmdir()
    filler = bytes([255, 0x24]) + bytes(253)  # class-specific descriptors, 255 bytes each
    head = config(1)
    (device / "descriptors").write_bytes(DEVICE + head + filler * 300 + interface(0, 0xFF))
    assert (device / "descriptors").stat().st_size > 64 * 1024
    live, replay = live_and_replay(sysfs, tmp_path / "bundle")
    assert b"feature.node.kubernetes.io/usb-ff_03e7_2485.present=true" in live
    assert replay == live


def test_a_devicetree_property_over_64_kib_replays_as_read_live(tmp_path):
    """The live reader skipped a property over 64 KiB, the blob reader had no limit: a
    72 KB root compatible gave 3 labels live and thousands on replay."""
    sysfs = tmp_path / "sys"
    base = expand(RPI.read_bytes(), sysfs / "firmware" / "devicetree" / "base")
    (base / "compatible").write_bytes(b"".join(b"acme,board-%05d\0" % n for n in range(4500)))
    assert (base / "compatible").stat().st_size > 64 * 1024
    live, replay = live_and_replay(sysfs, tmp_path / "bundle")
    assert b"acme-board" not in live and b"beta.devicetree.org/arm-cortex-a72=4" in live
    assert replay == live


# ---------------------------------------------------------------- 1: a symlink at our names in features.d is never followed


def planted(tmp_path: Path, at: str) -> Path:
    """features.d with a symlink named ``at`` to a 0600 file of label-shaped secret lines."""
    secret = tmp_path / "shadow"
    secret.write_bytes(SECRET + b"=1\nroot:$6$salt$hash:19000:0:99999:7:::\n")
    os.chmod(secret, 0o600)
    features = tmp_path / "features.d"
    features.mkdir()
    (features / at).symlink_to(secret)
    return features


PLANTED = ["nfd-hooks", "nfd-hooks.part-0123abcd"]


@pytest.mark.parametrize("command", ["show", "write"])
@pytest.mark.parametrize("at", PLANTED)
def test_diff_never_prints_a_symlinked_file(tmp_path, command, at):
    """show --diff and write --diff printed every line of the link's target as '- line=true'."""
    features = planted(tmp_path, at)
    done = run([command, "--diff", "--devicetree", str(RPI), "--no-usb", "--features-dir", str(features)])
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr and b"root:" not in done.stdout + done.stderr
    assert f"{at} not read: a symbolic link (not followed)".encode() in done.stderr
    assert (tmp_path / "shadow").read_bytes().startswith(SECRET)  # never written through
    if command == "write":  # the link at the main name is replaced, the stale part's removed
        assert sorted(os.listdir(features)) == [".nfd-hooks-tmp." + str(os.getuid()), "nfd-hooks"]
        assert not (features / "nfd-hooks").is_symlink()


@pytest.mark.parametrize("at", PLANTED)
def test_watch_never_logs_a_symlinked_file(tmp_path, at):
    """watch read the link's target as the existing file and logged its lines (kubectl logs)."""
    from nfd_hooks.watch import Watch

    features = planted(tmp_path, at)
    logged: List[str] = []
    watcher = Watch(api.Options(devicetree=RPI, use_usb=False), features, "nfd-hooks", log=logged.append, spacing=0)
    watcher._sync(api.scan(watcher.options))
    assert logged and not any(SECRET.decode() in line or "root:" in line for line in logged), logged
    assert not (features / "nfd-hooks").is_symlink() and not (features / "nfd-hooks.part-0123abcd").exists()
    assert (tmp_path / "shadow").read_bytes().startswith(SECRET)



def test_check_of_a_directory_reads_no_link_out_of_it(tmp_path):
    """check DIR read a features.d symlink to any file and printed its lines in its
    problems; one staying in DIR is still read, as NFD reads it."""
    features = planted(tmp_path, "zz-planted")
    (features / "10-own").write_text("example.com/a=1\n")
    (features / "20-alias").symlink_to(features / "10-own")  # absolute, but inside
    done = run(["check", str(features)])
    assert SECRET not in done.stdout + done.stderr and b"root:" not in done.stdout + done.stderr
    assert b"zz-planted: warning: a symbolic link out of" in done.stdout
    assert b"20-alias:1: warning: label 'example.com/a'='1' overrides" in done.stdout


# ---------------------------------------------------------------- 3: two writers on one features.d


def another_writers_cleanup(directory: Path, name: str = "nfd-hooks") -> None:
    """What a second writer on ``directory`` does first: remove the temporaries it can lock."""
    from nfd_hooks import writer

    writer.remove_stale_temporaries(writer.temporary_directory(directory)[0], name)


def test_a_temporary_is_locked_until_it_is_renamed(tmp_path, monkeypatch):
    """The lock was released when the temporary was closed, before its rename: a second
    writer's stale cleanup deleted it and the first failed ('No such file or directory')."""
    from nfd_hooks import writer

    real = os.replace

    def replace_after_cleanup(source, target):
        another_writers_cleanup(tmp_path)
        real(source, target)

    monkeypatch.setattr(writer.os, "replace", replace_after_cleanup)
    writer.write_atomically(tmp_path, "nfd-hooks", b"new=1\n")
    assert (tmp_path / "nfd-hooks").read_bytes() == b"new=1\n"


def test_a_temporary_taken_before_it_is_locked_is_made_again(tmp_path, monkeypatch):
    """Between its creation and its lock another writer's cleanup may take a temporary."""
    from nfd_hooks import writer

    real = writer.tempfile.mkstemp

    def mkstemp_then_cleanup(*args, **kwargs):
        made = real(*args, **kwargs)
        if not getattr(mkstemp_then_cleanup, "done", False):
            mkstemp_then_cleanup.done = True  # once: the next one is kept
            another_writers_cleanup(tmp_path)
        return made

    monkeypatch.setattr(writer.tempfile, "mkstemp", mkstemp_then_cleanup)
    writer.write_atomically(tmp_path, "nfd-hooks", b"new=1\n")
    assert (tmp_path / "nfd-hooks").read_bytes() == b"new=1\n"
    assert os.listdir(writer.temporary_directory(tmp_path)[0]) == []


WRITER = """
import sys
from pathlib import Path
from nfd_hooks.writer import write_files
directory, me, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for n in range(rounds):
    parts = [("", f"{me}={n}\\n".encode())] + [(f".part-{i:08x}", f"{me}-{i}={n}\\n".encode()) for i in range(n % 3)]
    write_files(directory, "nfd-hooks", parts)
"""


def test_two_concurrent_writers_never_fail(tmp_path):
    """Two writers of one name (the write initContainer and a watch, or two watches) in
    a race, split outputs included: every write of both succeeds and nothing is left over."""
    rounds = 150
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), me, str(rounds)], stderr=subprocess.PIPE)
        for me in ("a", "b")
    ]
    outcomes = [(w.wait(120), w.stderr.read().decode()) for w in writers]
    assert outcomes == [(0, ""), (0, "")]
    assert os.listdir(tmp_path / f".nfd-hooks-tmp.{os.getuid()}") == []
    assert (tmp_path / "nfd-hooks").read_bytes() in (f"a={rounds - 1}\n".encode(), f"b={rounds - 1}\n".encode())


# ---------------------------------------------------------------- 4: out-of-range and non-ASCII numbers in sysfs


@pytest.mark.parametrize("number", ["1:99999999999999999999", "1:\u00b2", "\u0661:3", "4096:3", "1:-3", "1 3"])
def test_a_malformed_dev_number_costs_readiness_not_the_file(tmp_path, number):
    """A bound accelerator whose dev was 120:99999999999999999999 (OverflowError) or 120:\u00b2
    (passed str.isdigit, failed int: ValueError) crashed the scan: write exited 1 with no
    file, the devicetree labels lost too. Its node is DEVNAME=null, so that /dev (this
    machine's) holds a character device by that name, as a bound device's would."""
    from tests.fakehost import ClassDevice, add_pci_device

    sysfs = tmp_path / "sys"
    node = add_pci_device(sysfs, "0000:01:00.0", "1ac1", "089a", driver="apex", class_device=ClassDevice("apex", "null", 1, 3))
    (node / "apex" / "null" / "dev").write_text(number + "\n")
    features = tmp_path / "features.d"
    features.mkdir()
    done = run(["write", "--sysfs", str(sysfs), "--dev", "/dev", "--devicetree", str(RPI), "--no-usb",
                "--features-dir", str(features)])
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    written = (features / "nfd-hooks").read_text()
    assert "beta.devicetree.org/raspberrypi-4-model-b=1" in written
    assert "accelerator.feature.node.kubernetes.io/edgetpu.present=true" in written
    assert "edgetpu.ready" not in written
    assert "device node of null not checked" in done.stderr.decode()


def test_the_real_number_still_makes_it_ready(tmp_path):
    """The same device with the number /dev/null really has: ready."""
    from tests.fakehost import ClassDevice, add_pci_device

    sysfs = tmp_path / "sys"
    add_pci_device(sysfs, "0000:01:00.0", "1ac1", "089a", driver="apex", class_device=ClassDevice("apex", "null", 1, 3))
    options = api.Options(sysfs=sysfs, dev=Path("/dev"), use_devicetree=False, use_usb=False)
    labels = {f.name: f.value for f in api.scan(options).features}
    assert labels["accelerator.feature.node.kubernetes.io/edgetpu.ready"] == "true"


@pytest.mark.parametrize("value", [b"300\n", b"\xc2\xb2\n", b"\xd9\xa1\n", b"99999999999999999999999\n"])
def test_a_malformed_configuration_value_counts_every_interface(tmp_path, value):
    """bConfigurationValue is one byte: anything else is unknown, with a notice, and the
    device keeps the labels of its interfaces (300 left it with none before)."""
    from tests.fakehost import NCS2, add_usb_device

    sysfs = tmp_path / "sys"
    add_usb_device(sysfs, NCS2)
    (sysfs / NCS2.path / "bConfigurationValue").write_bytes(value)
    result = api.scan(api.Options(sysfs=sysfs, usb_backend="sysfs", use_devicetree=False))
    assert "feature.node.kubernetes.io/usb-ff_03e7_2485.present" in {f.name for f in result.features}
    assert any("bConfigurationValue" in notice and "taken as unknown" in notice for notice in result.notices)


# ---------------------------------------------------------------- 5: a stranger's bundle manifest


def forged_bundle(tmp_path: Path, edit) -> Path:
    """The sample bundle with its manifest's text replaced by ``edit(manifest dict)``."""
    import json
    import shutil

    from tests.conftest import FIXTURES

    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURES / "nodes" / "rpi4b-ncs2-webcam", bundle, symlinks=True)
    manifest = bundle / "manifest.json"
    manifest.write_text(edit(json.loads(manifest.read_text())))
    return bundle


def one_error(done: subprocess.CompletedProcess, code: int, *words: str) -> None:
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == code and b"Traceback" not in done.stderr, stderr
    assert stderr.startswith("nfd-hooks: error: ") and stderr.count("\n") == 1, stderr
    assert all(word in stderr for word in words), stderr


DEEP_JSON = '{"format": "nfd-hooks-bundle/1", "files": {}, "symlinks": {}, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"


def _with_key(kind: str, key: str):
    import json

    def edit(manifest):
        manifest[kind][key] = "0" * 64 if kind == "files" else "../../../devices/x"
        return json.dumps(manifest)

    return edit


def _nul_cut_to_a_real_file(manifest):
    """A key that, cut at its NUL, names a real attribute file: its digest matches."""
    import json

    real = next(key for key in sorted(manifest["files"]) if key.endswith("/idVendor"))
    manifest["files"][real + "\x00/idVendor"] = manifest["files"][real]
    return json.dumps(manifest)


@pytest.mark.parametrize("edit,words", [
    (lambda _: DEEP_JSON, ["manifest.json: nested deeper than"]),
    (_with_key("files", "sys/\ud800/idVendor"), ["names an unexpected file", "\\ud800"]),
    (_with_key("symlinks", "sys/bus/usb/devices/\ud800"), ["names an unsafe symlink", "\\ud800"]),
    (_nul_cut_to_a_real_file, ["names an unexpected file", "\\x00"]),
], ids=["nested-100000", "surrogate-file", "surrogate-symlink", "nul-file"])
@pytest.mark.parametrize("openat2", ["openat2", "refused"])
def test_a_forged_manifest_is_one_error(tmp_path, edit, words, openat2):
    """RecursionError, UnicodeEncodeError and (openat2 refused, as under seccomp) ValueError
    were tracebacks; with openat2 a NUL silently cut the path short."""
    bundle = forged_bundle(tmp_path, edit)
    code = (
        "import sys\nfrom nfd_hooks import safe_read\nsafe_read._openat2 = False\n"
        "from nfd_hooks.cli import run\nsys.exit(run(sys.argv[1:]))\n"
    )
    args = ["show", "--replay", str(bundle)]
    if openat2 == "refused":
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, timeout=30)
    else:
        done = run(args)
    one_error(done, 2, *words)


@pytest.mark.parametrize("openat2", [None, False])
def test_a_nul_in_a_path_is_refused_by_both_resolvers(tmp_path, monkeypatch, openat2):
    """openat2 took the path as a C string, cut at its NUL ('sys\\0x' read 'sys'); the walk
    raised ValueError. Both refuse it now, as an OSError every caller handles."""
    monkeypatch.setattr(safe_read, "_openat2", openat2)
    (tmp_path / "file").write_bytes(b"read by mistake\n")
    root = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for path in ("file\x00whatever", "\ud800"):
            with pytest.raises(OSError):
                safe_read.read_regular_file(path, 100, dir_fd=root, beneath=True)
    finally:
        os.close(root)


# ---------------------------------------------------------------- 6: a --catalog nested deep


DEEP_TOML = "x = " + "[" * 100_000 + "]" * 100_000 + "\n"


@pytest.mark.parametrize("text", [
    DEEP_TOML, "x = " + "{a = " * 50_000 + "1" + "}" * 50_000 + "\n",
    ".".join(["a"] * 100_000) + " = 1\n", "[" + ".".join(["a"] * 100_000) + "]\n", '["a"' + '."a"' * 60_000 + "]\n",
], ids=["arrays", "tables", "dotted-key", "dotted-header", "quoted-header"])
def test_a_deeply_nested_catalog_is_one_error(tmp_path, text):
    """200 KB, under the 1 MiB limit: a RecursionError traceback; as dotted keys (found
    by the fuzz strategy of deep TOML), no recursion but minutes of tomllib's time."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(text)
    one_error(run(["show", "--no-devicetree", "--no-usb", "--catalog", str(catalog)]), 2, str(catalog), "nested deeper than")


def test_watch_survives_its_catalog_edited_into_a_deep_one(tmp_path):
    """watch re-reads the catalog at every rescan, and died when it was edited into that shape."""
    import time

    catalog = tmp_path / "catalog.toml"
    good = '[accelerators.acme]\nname = "Acme"\nusb = ["0403:6001"]\n'
    catalog.write_text(good)
    features = tmp_path / "features.d"
    features.mkdir()
    log = tmp_path / "watch.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "nfd_hooks", "watch", "--no-uevents", "--no-devicetree", "--no-usb",
             "--interval", "0.2", "--catalog", str(catalog), "--features-dir", str(features)],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )

    def wait_for(text: bytes) -> None:
        deadline = time.monotonic() + 20
        while text not in log.read_bytes() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert text in log.read_bytes(), log.read_text()

    try:
        wait_for(b"nfd-hooks: watching ")
        catalog.write_text(DEEP_TOML)
        wait_for(b"rescan failed")
        catalog.write_text(good)
        wait_for(b"rescan works again")
        assert process.poll() is None, log.read_text()
        process.terminate()
        assert process.wait(10) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert b"Traceback" not in log.read_bytes()


# ---------------------------------------------------------------- 8: --name as long as every name made from it allows


@pytest.mark.parametrize("command", ["write", "watch", "show --diff"])
@pytest.mark.parametrize("length", [228, 241, 242, 255, 256])
def test_a_name_too_long_for_the_writers_names_is_exit_2(tmp_path, command, length):
    """242 to 255 bytes exited 1 ('File name too long' from the temporary); 241 worked
    until the node's output split and its part files' temporaries were longer still."""
    features = tmp_path / "features.d"
    features.mkdir()
    done = run([*command.split(), "--no-devicetree", "--no-usb", *["--no-uevents"] * (command == "watch"),
                "--features-dir", str(features), "--name", "n" * length])
    one_error(done, 2, "--name is", "at most 227")
    assert os.listdir(features) == []


def test_the_longest_name_allowed_survives_a_split(tmp_path):
    """227 bytes: the main file, a part file and both their temporaries all fit."""
    from nfd_hooks import writer
    from nfd_hooks.errors import InputError

    name = "n" * 227
    written = writer.write_files(tmp_path, name, [("", b"a=1\n"), (".part-0123abcd", b"b=1\n")])
    assert written.target.read_bytes() == b"a=1\n" and (tmp_path / (name + ".part-0123abcd")).is_file()
    with pytest.raises(InputError):  # was OutputError ('File name too long'): exit 1
        writer.write_files(tmp_path, "n" * 241, [("", b"a=1\n"), (".part-0123abcd", b"b=1\n")])


# ---------------------------------------------------------------- 9: stdout and stderr that fail


def run_to(stdout, stderr, args: List[str], timeout: float = 30) -> subprocess.CompletedProcess:
    """``nfd-hooks ARGS`` with the given stdout and stderr (files, /dev/full, a closed pipe)."""
    try:
        return subprocess.run([sys.executable, "-m", "nfd_hooks", *args], stdout=stdout, stderr=stderr, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"nfd-hooks {' '.join(args)} still running after {timeout} s")


@pytest.mark.parametrize("args", [
    ["show", "--format", "nfd"], ["show", "--format", "json"], ["show", "--format", "table"], ["--version"], ["--help"],
], ids=lambda args: " ".join(args))
def test_a_full_stdout_is_one_line_and_exit_1(tmp_path, args):
    """show > /dev/full printed a 41-line traceback, in any format."""
    if args[0] == "show":
        args = [*args, "--devicetree", str(RPI), "--no-usb"]
    with open("/dev/full", "wb") as full, (tmp_path / "err").open("wb") as err:
        done = run_to(full, err, args)
    stderr = (tmp_path / "err").read_text()
    assert done.returncode == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith("nfd-hooks: error: cannot write") and stderr.count("\n") == 1, stderr
    assert "No space left on device" in stderr


def test_write_diff_to_a_full_stdout_still_writes_the_file(tmp_path):
    """The file is the job: the diff's lines are printed once it is written."""
    features = tmp_path / "features.d"
    features.mkdir()
    with open("/dev/full", "wb") as full, (tmp_path / "err").open("wb") as err:
        done = run_to(full, err, ["write", "--diff", "--devicetree", str(RPI), "--no-usb", "--features-dir", str(features)])
    stderr = (tmp_path / "err").read_text()
    assert done.returncode == 1 and "Traceback" not in stderr and stderr.count("nfd-hooks: error:") == 1, stderr
    assert "raspberrypi-4-model-b=1" in (features / "nfd-hooks").read_text()


def test_a_reader_that_stops_reading_ends_the_run_quietly(tmp_path):
    """show | head: EPIPE is the reader's choice, exit 0 and nothing on stderr."""
    process = subprocess.Popen([sys.executable, "-m", "nfd_hooks", "show", "--devicetree", str(RPI), "--no-usb",
                                "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # before it writes a byte
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0 and stderr == b"", stderr


@pytest.mark.parametrize("stderr", ["full", "closed"])
def test_write_with_an_unwritable_stderr_writes_its_file(tmp_path, stderr):
    features = tmp_path / "features.d"
    features.mkdir()
    args = [sys.executable, "-m", "nfd_hooks", "write", "--devicetree", str(RPI), "--no-usb", "--features-dir", str(features)]
    if stderr == "full":
        with open("/dev/full", "wb") as full:
            done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=full, timeout=30)
    else:
        done = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                              preexec_fn=lambda: os.close(2))
    assert done.returncode == 0
    assert "raspberrypi-4-model-b=1" in (features / "nfd-hooks").read_text()


@pytest.mark.parametrize("stderr", ["full", "closed"])
def test_watch_with_an_unwritable_stderr_keeps_watching(tmp_path, stderr):
    """watch exited 1 at its first log line when stderr could not be written."""
    import signal
    import time

    features = tmp_path / "features.d"
    features.mkdir()
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[accelerators.acme]\nname = "Acme"\ndevicetree = ["acme,none"]\n')
    args = [sys.executable, "-m", "nfd_hooks", "watch", "--no-uevents", "--devicetree", str(RPI), "--no-usb",
            "--interval", "0.2", "--catalog", str(catalog), "--features-dir", str(features)]
    full = open("/dev/full", "wb")
    try:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=full if stderr == "full" else subprocess.DEVNULL,
                                   preexec_fn=None if stderr == "full" else (lambda: os.close(2)))
    finally:
        full.close()
    try:
        deadline = time.monotonic() + 20
        while not (features / "nfd-hooks").exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        catalog.write_text('[accelerators.acme]\nname = "Acme"\ndevicetree = ["brcm,bcm2711"]\n')  # a change to log
        while "acme.present" not in (features / "nfd-hooks").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, f"watch exited {process.returncode}"
        assert "accelerator.feature.node.kubernetes.io/acme.present=true" in (features / "nfd-hooks").read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("args", [["show", "--devicetree", str(RPI), "--no-usb"], ["--version"]], ids=["show", "version"])
def test_no_stdout_at_all_is_one_line_and_exit_1(tmp_path, args):
    """Found by the failing-streams strategy: started with descriptor 1 closed (>&-),
    Python has no sys.stdout, and show printed an AttributeError traceback."""
    with (tmp_path / "err").open("wb") as err:
        done = subprocess.run([sys.executable, "-m", "nfd_hooks", *args], stdout=subprocess.DEVNULL, stderr=err,
                              timeout=30, preexec_fn=lambda: os.close(1))
    stderr = (tmp_path / "err").read_text()
    assert done.returncode == 1 and "Traceback" not in stderr, stderr
    assert stderr == "nfd-hooks: error: cannot write to standard output: it is closed\n", stderr


def test_a_second_writer_finds_the_new_scratch_directory_private(tmp_path, monkeypatch):
    """Found by the long run of the two-writers strategy: the first writer made the
    scratch directory with the umask's mode and chmod-ed it after; a second writer
    looking in between refused it as 'not a private directory of this user'."""
    from nfd_hooks import writer

    real = os.chmod
    seen = []

    def second_writer_first(path, mode, *args, **kwargs):
        seen.append(writer.temporary_directory(tmp_path))  # raised OutputError before the fix
        real(path, mode, *args, **kwargs)

    old_umask = os.umask(0o022)
    try:
        monkeypatch.setattr(writer.os, "chmod", second_writer_first)
        writer.write_atomically(tmp_path, "nfd-hooks", b"new=1\n")
    finally:
        os.umask(old_umask)
    assert seen and (tmp_path / "nfd-hooks").read_bytes() == b"new=1\n"
