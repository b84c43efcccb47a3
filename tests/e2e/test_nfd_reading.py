"""What the real NFD does with files nfd-hooks did not write well, against
what our docs and ``nfd-hooks check`` say it does."""

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Set

from tests.e2e.fleet import labelled, nfd_hooks
from tests.e2e.harness import Cluster

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "nodes" / "rpi4b-ncs2-webcam"
# Hand-written, as a user might: every line is something check has an opinion on.
HOSTILE = "\n".join([
    "example.com/ok=1",
    "example.com/bad,name=1",
    "example.com/badvalue=has space",
    "plain=1",
    "kubernetes.io/forbidden=1",
    "node.kubernetes.io/also-forbidden=1",
    "feature.node.kubernetes.io/allowed=1",
    "# +foo",
    "example.com/flag",
    "example.com/empty=",
    "# +no-label",
    "example.com/raw=has space",
    "example.com/" + "x" * 70 + "=1",
    "example.com/longvalue=" + "v" * 70,
    " example.com/trimmed = 2 ",
]) + "\n"
DEFAULT_PREFIX = "feature.node.kubernetes.io/"


def node_dir(cluster: Cluster) -> Path:
    """A features.d the unprivileged worker can read."""
    directory = Path(tempfile.mkdtemp(dir=cluster.dir))
    directory.chmod(0o755)
    return directory


def flagged_lines(path: Path) -> Set[int]:
    """Lines ``nfd-hooks check`` reports as errors (warnings left out)."""
    done = subprocess.run([sys.executable, "-m", "nfd_hooks", "check", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    return {int(m.group(1)) for m in re.finditer(rf"^{re.escape(str(path))}:(\d+): (?!warning:)", done.stdout, re.MULTILINE)}


def labels_kept(content: str, dropped: Set[int]) -> Dict[str, str]:
    """The labels of ``content`` outside ``dropped`` lines, as nfd-master names them."""
    labels, raw_next = {}, False
    for number, line in enumerate(content.split("\n"), 1):
        line = line.strip()
        if line == "# +no-label":
            raw_next = True
        elif line and not line.startswith("#"):
            if not raw_next and number not in dropped:
                name, _, value = line.partition("=")
                labels[name if "/" in name else DEFAULT_PREFIX + name] = value if "=" in line else "true"
            raw_next = False
    return labels


def test_real_nfd_drops_exactly_what_check_reports(cluster):
    features_dir = node_dir(cluster)
    (features_dir / "hand-written").write_text(HOSTILE)
    (features_dir / "hand-written").chmod(0o644)
    dropped = flagged_lines(features_dir / "hand-written")
    cluster.add_node("check-agrees", "arm64")
    worker = cluster.start_worker("check-agrees", features_dir, config={"core": {"featureSources": ["local"], "labelSources": ["local"]}}, oneshot=True)
    assert worker.wait(120) == 0, worker.log_text()
    assert labelled(cluster, "check-agrees") == labels_kept(HOSTILE, dropped)
    # check says NFD logs the unknown directive: it does, as an error.
    assert "error while parsing directives" in worker.log_text()


def test_an_expired_file_gives_no_labels(cluster):
    """--expires-in: once past, the real worker publishes nothing from the file
    (a second, unexpiring file shows the node was labelled all the same)."""
    features_dir = node_dir(cluster)
    nfd_hooks("write", "--replay", str(SAMPLE), "--expires-in", "1s", "--features-dir", str(features_dir))
    (features_dir / "control").write_text("example.com/control=1\n")
    (features_dir / "control").chmod(0o644)
    time.sleep(2.1)
    cluster.add_node("expired", "arm64")
    worker = cluster.start_worker("expired", features_dir, config={"core": {"featureSources": ["local"], "labelSources": ["local"]}}, oneshot=True)
    assert worker.wait(120) == 0, worker.log_text()
    assert labelled(cluster, "expired") == {"example.com/control": "1"}
    local = cluster.node_feature("expired")["spec"]["features"]["attributes"]["local.feature"]["elements"]
    assert local == {"example.com/control": "1"}


def padded(label: str, size: int) -> str:
    """A features file of exactly ``size`` bytes: one label, then comment lines."""
    head = f"{label}\n"
    filler = size - len(head)
    lines = [("#" + "." * 98 + "\n")] * (filler // 100)
    rest = filler - 100 * len(lines)
    return head + "".join(lines) + ("#" + "." * (rest - 2) + "\n" if rest >= 2 else "\n" * rest)


def test_the_size_limit_is_where_check_puts_it(cluster):
    """65,536 bytes is read, one byte more is skipped whole: by NFD and by check alike."""
    features_dir = node_dir(cluster)
    for name, size in (("at-limit", 65536), ("over-limit", 65537)):
        (features_dir / name).write_text(padded(f"example.com/{name}=1", size))
        (features_dir / name).chmod(0o644)
        assert (features_dir / name).stat().st_size == size
    check = subprocess.run([sys.executable, "-m", "nfd_hooks", "check", str(features_dir)], capture_output=True, text=True, timeout=60)
    assert check.stdout.splitlines() == [f"{features_dir / 'over-limit'}: 65537 bytes: NFD skips files over 65536 bytes whole"]
    cluster.add_node("size-limit", "arm64")
    worker = cluster.start_worker("size-limit", features_dir, config={"core": {"featureSources": ["local"], "labelSources": ["local"]}}, oneshot=True)
    assert worker.wait(120) == 0, worker.log_text()
    assert labelled(cluster, "size-limit") == {"example.com/at-limit": "1"}
    assert "file size limit exceeded: 65537 bytes > 65536 bytes" in worker.log_text()
