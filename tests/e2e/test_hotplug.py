"""Hotplug through the real nfd-worker v0.19.0: every plug and unplug reaches the Node.

The worker's periodic rescan is set to an hour, so a change can only reach the
Node through NFD's fsnotify watch on features.d: a writer whose rename NFD
drops (a temporary created in features.d itself fires the re-read first) fails
here. How fast it goes is bench/hotplug-latency's business, not this test's.
"""

import re

import pytest

from tests.e2e.conftest import REPORT
from tests.e2e.hotplug import NCS2_ACCELERATOR, NCS2_LABEL, HotplugNode

EVENTS = 20
# Far below the hour-long rescan; generous for a loaded CI machine.
TIMEOUT = 30.0


@pytest.fixture
def hotplug_node(cluster):
    config = {"core": {"sleepInterval": "1h", "featureSources": ["local"], "labelSources": ["local"]}}
    node = HotplugNode(cluster, "hotplug-rpi4b", worker_config=config).start()
    yield node
    node.stop()


def test_every_plug_and_unplug_reaches_the_node_through_fsnotify(hotplug_node):
    events = [hotplug_node.change(plugged=number % 2 == 0, timeout=TIMEOUT) for number in range(EVENTS)]
    missed = [number for number, event in enumerate(events, 1) if event.latency is None]
    assert not missed, f"events {missed} never reached the Node:\n{hotplug_node.worker.log_text()[-3000:]}"
    # The accelerator label the same device gives went with it (the last event was an unplug).
    labels = hotplug_node.cluster.node_labels(hotplug_node.name)
    assert NCS2_LABEL not in labels and NCS2_ACCELERATOR not in labels
    errors = [line for line in hotplug_node.worker.log_text().splitlines() if re.match(r"[EW]\d{4} ", line)]
    assert not errors, errors
    REPORT.append(("e2e hotplug: sysfs change -> Node label, real nfd-worker (fsnotify only)", [
        f"{number:2d} {'plug  ' if event.plugged else 'unplug'} {event.latency:.2f} s" for number, event in enumerate(events, 1)
    ]))
