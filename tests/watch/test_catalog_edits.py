"""``watch --catalog``: an edited catalog counts from the next rescan, as it always has,
though it is parsed again only when its text changes."""

import threading

from nfd_hooks import api
from nfd_hooks.uevents import Events
from nfd_hooks.watch import Watch
from tests.fakehost import add_pci_device
from tests.conftest import labels_of
from tests.watch.test_loop import INTERVAL, wait_for

PREFIX = api.DEFAULT_ACCELERATOR_PREFIX


def catalog(ident: str) -> str:
    return f'[accelerators.{ident}]\nname = "A card"\npci = ["1234:5678"]\n'


def test_an_edited_catalog_changes_the_labels_at_the_next_rescan(tmp_path):
    sysfs, out = tmp_path / "sys", tmp_path / "features.d"
    out.mkdir()
    add_pci_device(sysfs, "0000:01:00.0", "1234", "5678")
    user = tmp_path / "mine.toml"
    user.write_text(catalog("first-card"))
    options = api.Options(sysfs=sysfs, use_devicetree=False, use_usb=False, catalogs=(user,), dev=None)
    stop, logged = threading.Event(), []
    watch = Watch(options, out, "nfd-hooks", INTERVAL, api.scan, logged.append, INTERVAL / 2)
    thread = threading.Thread(target=watch.run, args=(stop, Events(stop)), daemon=True)
    thread.start()
    try:
        present = lambda ident: labels_of((out / "nfd-hooks").read_bytes()).get(f"{PREFIX}/{ident}.present")  # noqa: E731
        assert wait_for(lambda: (out / "nfd-hooks").exists() and present("first-card") == "true", 20 * INTERVAL), logged
        user.write_text(catalog("second-card"))
        assert wait_for(lambda: present("second-card") == "true" and present("first-card") is None, 20 * INTERVAL), logged
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
