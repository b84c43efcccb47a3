"""``check DIR`` against the real NFD: the labels it resolves from several
files (name order, the later file wins, nfd-master's auto-prefix) are the
Node's labels, and each override it reports is one the worker logs."""

import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from tests.e2e.fleet import WORKER_CONFIG, labelled
from nfd_hooks.check import CheckResult, read_directory, resolved_labels
from nfd_hooks.nfdfile import NFD_PREFIX as AUTO_PREFIX

FILES = {
    # Another tool's file on the host, before ours in name order.
    "10-vendor": "example.com/a=1\nexample.com/b=1\nshared=1\nplain\n# +no-label\nexample.com/raw=1\n",
    "nfd-hooks": "example.com/a=2\nbeta.devicetree.org/brcm-bcm2711=1\n",
    # A site file after ours: it wins.
    "zz-site": "example.com/a=3\nfeature.node.kubernetes.io/shared=2\n# +no-label\nexample.com/raw=2\n",
}


def nfd_master_names(labels):
    """nfd-master's addNsToMapKeys: unprefixed names get feature.node.kubernetes.io/,
    unless that name is given too."""
    out = {}
    for key, value in labels.items():
        if "/" in key:
            out[key] = value
        elif f"{AUTO_PREFIX}/{key}" not in labels:
            out[f"{AUTO_PREFIX}/{key}"] = value
    return out


def test_check_resolves_overrides_as_the_real_worker_and_master_do(cluster):
    directory = Path(tempfile.mkdtemp(prefix="check-", dir=cluster.dir))
    directory.chmod(0o755)
    for name, text in FILES.items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o644)
    result = CheckResult()
    resolved = resolved_labels(read_directory(directory, datetime.now(timezone.utc), result), result)
    overrides = [problem for _, problem in result.problems if "overrides" in problem.message]
    assert resolved["example.com/a"] == "3" and len(overrides) == 3

    cluster.add_node("check-live", "arm64")
    worker = cluster.start_worker("check-live", directory, config=WORKER_CONFIG, oneshot=True)
    assert worker.wait(timeout=120) == 0, worker.log_text()[-3000:]
    assert labelled(cluster, "check-live") == nfd_master_names(resolved)
    # Each override check reported is one the worker logged (a line that is both a label
    # and a raw feature is reported once, as the label; NFD logs it for both maps).
    log = worker.log_text()
    logged = {kind: sorted(re.findall(rf'overriding label value from another feature file" {kind}Key="([^"]+)"', log))
              for kind in ("label", "feature")}
    reported = {kind: sorted(p.message.split("'")[1] for p in overrides if p.message.startswith(noun))
                for kind, noun in (("label", "label"), ("feature", "raw feature"))}
    assert logged["label"] == reported["label"] == ["example.com/a", "example.com/a"]
    assert logged["feature"] == sorted(reported["label"] + reported["feature"])
