"""A umockdev testbed driven over stdin, for tests/watch/test_uevents.py.

Run by the system python3 (it needs python3-gi and gir1.2-umockdev-1.0, which a
virtualenv does not see) under ``umockdev-wrapper``, so that the testbed's
uevent sender resolves devices in the testbed. Prints ``root DIR`` once, then
answers each command line with ``ok ...`` or ``error ...``:

  add FILE            add an umockdev-record file's devices (umockdev emits "add" uevents)
  unplug SYSPATH      send a "remove" uevent for SYSPATH, then remove it from the testbed
  uevent SYSPATH ACTION  send an ACTION uevent ("bind", "unbind", "change") for SYSPATH
"""

import sys

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import GLib, UMockdev  # noqa: E402


def main() -> None:
    testbed = UMockdev.Testbed.new()
    print("root", testbed.get_root_dir(), flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        try:
            if command == "add":
                testbed.add_from_file(argument)
            elif command == "unplug":
                # The kernel removes the sysfs directory first; the testbed's sender
                # needs it to exist, so the event goes out a moment before.
                testbed.uevent(argument, "remove")
                testbed.remove_device(argument)
            elif command == "uevent":
                path, _, action = argument.rpartition(" ")
                testbed.uevent(path, action)
            else:
                raise ValueError(f"unknown command {command!r}")
        except (GLib.Error, ValueError) as error:
            print("error", error, flush=True)
            continue
        print("ok", flush=True)


if __name__ == "__main__":
    main()
