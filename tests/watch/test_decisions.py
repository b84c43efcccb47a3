"""When the watcher rewrites the file: only for new features or a due expiry."""

from datetime import datetime, timedelta, timezone

from nfd_hooks.watch import refresh_delay, split_expiry, write_reason

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
HEADER = b"# Written by nfd-hooks 0.1.0; rewritten at every run, do not edit.\n"
PI = b"beta.devicetree.org/brcm-bcm2711=1\n"
NCS2 = b"feature.node.kubernetes.io/usb-ff_03e7_2485.present=true\n"


def with_expiry(stamp: str, body: bytes) -> bytes:
    return HEADER + f"# +expiry-time={stamp}\n".encode() + body


def test_split_expiry_reads_the_directive_and_leaves_the_rest():
    body, expires = split_expiry(with_expiry("2026-03-01T12:30:00Z", PI))
    assert body == HEADER + PI
    assert expires == datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)


def test_split_expiry_of_a_garbled_stamp_is_no_expiry():
    assert split_expiry(with_expiry("tomorrow", PI)) == (HEADER + PI, None)
    assert split_expiry(HEADER + PI) == (HEADER + PI, None)


def test_no_file_is_written():
    assert write_reason(None, HEADER + PI, NOW, None) == "new file"
    assert write_reason(None, with_expiry("2026-03-01T13:00:00Z", PI), NOW, HOUR) == "new file"


def test_without_expiry_the_bytes_decide():
    assert write_reason(HEADER + PI, HEADER + PI, NOW, None) is None
    assert write_reason(HEADER + PI, HEADER + PI + NCS2, NOW, None) == "features changed"
    # A leftover expiry line must go when no expiry is asked for any more.
    assert write_reason(with_expiry("2026-03-01T13:00:00Z", PI), HEADER + PI, NOW, None) == "features changed"


def test_with_expiry_a_new_stamp_alone_is_no_change():
    existing = with_expiry("2026-03-01T12:45:00Z", PI)  # 45 min of 60 left
    new = with_expiry("2026-03-01T13:00:00Z", PI)
    assert write_reason(existing, new, NOW, HOUR) is None


def test_with_expiry_changed_features_are_written_at_once():
    existing = with_expiry("2026-03-01T12:59:00Z", PI)
    new = with_expiry("2026-03-01T13:00:00Z", PI + NCS2)
    assert write_reason(existing, new, NOW, HOUR) == "features changed"


def test_expiry_is_refreshed_at_half_its_lifetime():
    new = with_expiry("2026-03-01T13:00:00Z", PI)
    assert write_reason(with_expiry("2026-03-01T12:30:01Z", PI), new, NOW, HOUR) is None
    assert write_reason(with_expiry("2026-03-01T12:30:00Z", PI), new, NOW, HOUR) == "expiry refreshed"
    assert write_reason(with_expiry("2026-03-01T11:00:00Z", PI), new, NOW, HOUR) == "expiry refreshed"


def test_expiry_further_ahead_than_a_fresh_one_means_the_clock_went_back():
    new = with_expiry("2026-03-01T13:00:00Z", PI)
    assert write_reason(with_expiry("2026-03-01T13:00:00Z", PI), new, NOW, HOUR) is None
    assert write_reason(with_expiry("2026-03-01T13:00:01Z", PI), new, NOW, HOUR) == "expiry refreshed"


def test_expiry_asked_for_but_missing_is_added():
    assert write_reason(HEADER + PI, with_expiry("2026-03-01T13:00:00Z", PI), NOW, HOUR) == "expiry added"


def test_refresh_delay_is_the_time_to_half_lifetime():
    assert refresh_delay(HEADER + PI, NOW, None) is None
    assert refresh_delay(with_expiry("2026-03-01T13:00:00Z", PI), NOW, HOUR) == 30 * 60
    assert refresh_delay(with_expiry("2026-03-01T12:50:00Z", PI), NOW, HOUR) == 20 * 60


def test_refresh_delay_never_spins():
    """A due or garbled expiry is looked at again after a second, not at once."""
    assert refresh_delay(with_expiry("2026-03-01T12:00:01Z", PI), NOW, HOUR) == 1.0
    assert refresh_delay(with_expiry("garbled", PI), NOW, HOUR) == 1.0


def test_uevents_of_every_subsystem_that_can_change_the_file():
    """USB for devices (and firmware re-enumeration), PCI and platform for driver binds,
    the catalog's device classes for device nodes; none that cannot matter."""
    from nfd_hooks import api
    from nfd_hooks.api import uevent_subsystems

    assert uevent_subsystems(api.Options()) == ("usb", "pci", "platform", "apex", "hailo_chardev")
    assert uevent_subsystems(api.Options(use_usb=False)) == ("pci", "platform", "apex", "hailo_chardev")
    assert uevent_subsystems(api.Options(use_accelerators=False)) == ("usb",)
    assert uevent_subsystems(api.Options(use_usb=False, use_accelerators=False)) == ()
