"""docs/architecture.md's recipe for a new source works as written: its example
package type-checks, and registered beside the three sources it is scanned,
merged, printed as JSON and shown in the table like them."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

from nfd_hooks import api
from nfd_hooks.sources import SOURCES, accelerators
from nfd_hooks.table import render_table
from tests.conftest import ROOT

DOC = ROOT / "docs" / "architecture.md"


def example_source() -> str:
    """The first Python block under '## Adding a source'."""
    section = DOC.read_text().split("## Adding a source", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


@pytest.fixture
def thermal(tmp_path, monkeypatch):
    """The example package, registered before the accelerators as the document shows."""
    path = tmp_path / "thermal_example.py"
    path.write_text(example_source())
    spec = importlib.util.spec_from_file_location("thermal_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    registered = tuple(s for s in SOURCES if s is not accelerators.SOURCE) + (module.SOURCE, accelerators.SOURCE)
    monkeypatch.setattr(api, "SOURCES", registered)
    return path


def zones(sysfs, *kinds):
    """Thermal zones as sysfs shows them: class/thermal links to devices/virtual/thermal."""
    for number, kind in enumerate(kinds):
        real = sysfs / "devices" / "virtual" / "thermal" / f"thermal_zone{number}"
        real.mkdir(parents=True)
        (real / "type").write_text(f"{kind}\n")
        link = sysfs / "class" / "thermal" / f"thermal_zone{number}"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(real, link.parent))
    cooling = sysfs / "class" / "thermal" / "cooling_device0"  # not a zone: left alone
    cooling.mkdir(parents=True, exist_ok=True)
    (cooling / "type").write_text("Processor\n")


def test_the_documented_source_type_checks(thermal):
    pytest.importorskip("mypy", reason="mypy comes with the lint extra, which scripts/test installs")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(thermal)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_registered_source_is_scanned_printed_and_shown(thermal, tmp_path):
    sysfs = tmp_path / "sys"
    zones(sysfs, "cpu-thermal", "cpu-thermal", "gpu-thermal", "bad name!")
    options = api.Options(sysfs=sysfs, use_devicetree=False, use_usb=False, use_accelerators=False)
    result = api.scan(options)
    assert [report.name for report in result.reports] == ["thermal"]
    labels = {f.name: f.value for f in result.features}
    assert labels == {"thermal.example.com/cpu-thermal.count": "2", "thermal.example.com/gpu-thermal.count": "1"}
    assert b"thermal.example.com/cpu-thermal.count=2\n" in api.render_scan(result, options)
    document = json.loads(api.render_json(result))
    assert document["sources"]["thermal"]["zones"]["thermal_zone3"] == "bad name!"
    table = render_table(result.reports, result.features)
    assert "thermal: 2 features" in table and "thermal.example.com/gpu-thermal.count" in table


def test_a_registered_source_runs_beside_the_three(thermal, tmp_path):
    zones(tmp_path, "soc-thermal")
    result = api.scan(api.Options(sysfs=tmp_path, devicetree=ROOT / "fixtures" / "dtb" / "rpi-4-b.dtb"))
    assert [report.name for report in result.reports] == ["devicetree", "usb", "thermal", "accelerators"]
    assert {f.name: f.value for f in result.features}["thermal.example.com/soc-thermal.count"] == "1"
    assert "beta.devicetree.org/brcm-bcm2711" in {f.name for f in result.features}
