"""scripts/repro-hardening, as issues 14 and 25 accept it: every reproduction of both
adversarial trials (items 1 to 11, then issue 25's defects 1 to 9 as items 12 to 20)
prints ok, and the script exits 0. Each item checks what was wrong before its fix
(a leak, a traceback, a lost file, a wrong exit code), so any regression is a FAIL line."""

import os
import re
import subprocess
import sys

from tests.conftest import FIXTURES

ROOT = FIXTURES.parent
SCRIPT = ROOT / "scripts" / "repro-hardening"


def test_every_reproduction_prints_ok():
    done = subprocess.run(
        [str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=1500,
        env={**os.environ, "PYTHON": sys.executable},
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    items = re.findall(r"^item (\d+): (ok|FAIL): ", done.stdout, re.MULTILINE)
    assert items == [(str(n), "ok") for n in range(1, 21)], report
    assert done.stdout.rstrip().endswith("repro-hardening: 20 of 20 clean"), report
