"""Assemble the image's root filesystem: only what nfd-hooks runs.

Run by the Containerfile's build stage (Debian, the virtualenv installed);
the final stage is ``FROM scratch`` and copies the result::

    python3 image/rootfs.py /opt/nfd-hooks image/stdlib.txt /rootfs

The root holds:

- the virtualenv, and the interpreter its ``bin/python`` leads to;
- the standard library named in image/stdlib.txt (whole modules and packages,
  with their extension modules);
- the shared libraries all of those load, as the dynamic loader itself lists
  them (``ld.so --list``), and libudev and libusb-1.0, which pyudev and pyusb
  open at run time (nfd_hooks/libraries.py), with theirs;
- usb.ids, for the vendor and product names of ``show --format table|json``;
- /etc/passwd and /etc/group (root and nobody), an empty /tmp;
- for each Debian package a file came from, its copyright file and its dpkg
  status entry in /var/lib/dpkg/status.d/ (the layout of distroless images,
  which image scanners read to match the versions against advisories).

No shell, package manager, perl or ldconfig: nothing the tool does not run.
Every ``.py`` is compiled to unchecked-hash bytecode, which the interpreter
uses without comparing it with the source: the root is read-only at run
time, and a builder may rewrite file times (SOURCE_DATE_EPOCH), which would
make timestamp-checked bytecode stale and every start compile it again.

Last, the tool is run inside the new root (chroot) to prove it starts and
finds both libraries; a builder that forbids chroot skips that with a notice.
"""

import compileall
import glob
import os
import py_compile
import shutil
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Dict, Iterable, List, Set

# Opened with dlopen at run time, so no ELF file names them.
LIBRARIES = ("libudev.so.1", "libusb-1.0.so.0")
DATA = ("/usr/share/misc/usb.ids",)
PASSWD = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
# Not copied from the virtualenv: its shell activation scripts.
VENV_SKIP = ("activate", "activate.csh", "activate.fish", "Activate.ps1")


class Root:
    """The new root; ``add`` copies a path of this (build) system into it, as it is here."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.copied: Set[str] = set()  # this system's paths copied: files, symlinks, trees

    def target(self, source: str) -> Path:
        return self.path / source.lstrip("/")

    def add(self, source: str) -> None:
        """Copy ``source`` (absolute), making every symlink on the way again
        (/lib -> usr/lib, libudev.so.1 -> libudev.so.1.7.5) and adding its target."""
        parts = Path(source).parts[1:]
        current = "/"
        for index, part in enumerate(parts):
            current = os.path.join(current, part)
            target = self.target(current)
            if os.path.islink(current):
                if not target.is_symlink():
                    target.symlink_to(os.readlink(current))
                self.copied.add(current)
                resolved = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
                self.add(os.path.join(resolved, *parts[index + 1:]))
                return
            if index < len(parts) - 1:
                if not target.is_dir():
                    target.mkdir()
                    shutil.copystat(current, target)
        if current in self.copied:
            return
        self.copied.add(current)
        if os.path.isdir(current):
            self.add_tree(current)
        else:
            shutil.copy2(current, target)

    def add_tree(self, source: str, skip: Iterable[str] = ()) -> None:
        """A directory with everything in it but bytecode (compiled afresh, see ``compile``),
        symlinks kept as symlinks and their targets added."""
        ignore = shutil.ignore_patterns("__pycache__", *skip)
        shutil.copytree(source, self.target(source), symlinks=True, ignore=ignore, dirs_exist_ok=True)
        for directory, directories, files in os.walk(source):
            kept = set(directories) | set(files)
            kept -= set(ignore(directory, list(kept)))
            for name in sorted(kept):
                path = os.path.join(directory, name)
                self.copied.add(path)
                if os.path.islink(path):
                    self.add(os.path.normpath(os.path.join(directory, os.readlink(path))))
            directories[:] = [d for d in directories if d in kept and not os.path.islink(os.path.join(directory, d))]


def read_list(path: Path) -> List[str]:
    """The names to ship from image/stdlib.txt (``-name`` lines are left out on purpose)."""
    names = []
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name and not name.startswith("-"):
            names.append(name)
    return names


def stdlib_files(names: Iterable[str]) -> List[str]:
    """The files and package directories of ``names`` in this Python's standard library."""
    stdlib = sysconfig.get_paths()["stdlib"]
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    found = []
    for name in names:
        paths = [p for p in (os.path.join(stdlib, name + ".py"), os.path.join(stdlib, name),
                             os.path.join(stdlib, "lib-dynload", name + suffix)) if os.path.exists(p)]
        if not paths and name not in sys.builtin_module_names and not _frozen(name):
            raise SystemExit(f"rootfs: {name} (image/stdlib.txt) is no module of {stdlib}")
        found += paths
    return found


def _frozen(name: str) -> bool:
    import importlib.util

    spec = importlib.util.find_spec(name)
    return spec is not None and spec.origin == "frozen"


def elf_interpreter(path: str) -> str:
    """The dynamic loader an ELF executable names (PT_INTERP)."""
    with open(path, "rb") as stream:
        header = stream.read(64)
        is64, endian = header[4] == 2, "<" if header[5] == 1 else ">"
        if is64:
            phoff, = struct.unpack_from(endian + "Q", header, 32)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 54)
        else:
            phoff, = struct.unpack_from(endian + "I", header, 28)
            phentsize, phnum = struct.unpack_from(endian + "HH", header, 42)
        for index in range(phnum):
            stream.seek(phoff + index * phentsize)
            entry = stream.read(phentsize)
            kind, = struct.unpack_from(endian + "I", entry, 0)
            if kind == 3:  # PT_INTERP
                offset, size = struct.unpack_from(endian + ("QQQQ" if is64 else "IIII"), entry, 8 if is64 else 4)[0::3]
                stream.seek(offset)
                return stream.read(size).rstrip(b"\0").decode()
    raise SystemExit(f"rootfs: {path} names no dynamic loader")


def needed(loader: str, path: str) -> List[str]:
    """The shared libraries ``path`` loads, transitively, as the dynamic loader resolves them."""
    listed = subprocess.run([loader, "--list", path], capture_output=True, text=True, check=True).stdout
    libraries = []
    for line in listed.splitlines():
        if "=> not found" in line:
            raise SystemExit(f"rootfs: {path}: {line.strip()}")
        if "=>" in line:
            libraries.append(line.split("=>", 1)[1].split("(", 1)[0].strip())
    return [library for library in libraries if library]


def find_soname(soname: str, beside: Iterable[str]) -> str:
    """``soname`` in the directories of the interpreter's own libraries, then the multiarch ones."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    directories = list(dict.fromkeys([*(os.path.dirname(p) for p in beside),
                                      f"/usr/lib/{multiarch}", f"/lib/{multiarch}", "/usr/lib", "/lib"]))
    for directory in directories:
        candidate = os.path.join(directory, soname)
        if os.path.exists(candidate):
            return candidate
    raise SystemExit(f"rootfs: {soname} not found in {', '.join(directories)} (install it in the build stage)")


def compile_tree(tree: Path, final: str) -> None:
    """Unchecked-hash bytecode for every .py under ``tree``, named as it will be at ``final``."""
    ok = compileall.compile_dir(str(tree), ddir=final, quiet=1, force=True, workers=1,
                                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    if not ok:
        raise SystemExit(f"rootfs: compiling {final} failed")


def debian_metadata(root: Root) -> List[str]:
    """Copyright file and dpkg status entry of every Debian package a copied file belongs to."""
    def canonical(path: str) -> str:  # /lib/x/libc.so.6 and /usr/lib/x/libc.so.6 are one file (usrmerge)
        return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))

    def is_file(path: str) -> bool:  # a file or a symlink to one, not /lib -> usr/lib
        return os.path.lexists(path) and not os.path.isdir(path)

    owners: Dict[str, str] = {}
    for listing in glob.glob("/var/lib/dpkg/info/*.list"):
        package = os.path.basename(listing)[: -len(".list")].split(":")[0]
        with open(listing) as stream:
            for path in (line.rstrip("\n") for line in stream):
                if is_file(path):
                    owners.setdefault(canonical(path), package)
    packages = sorted({owners[c] for c in (canonical(p) for p in root.copied if is_file(p)) if c in owners})
    if not packages:
        return []
    stanzas = {}
    with open("/var/lib/dpkg/status") as stream:
        for stanza in stream.read().split("\n\n"):
            for line in stanza.splitlines():
                if line.startswith("Package: "):
                    stanzas[line[len("Package: "):].strip()] = stanza.strip("\n") + "\n"
    status = root.target("/var/lib/dpkg/status.d")
    status.mkdir(parents=True, exist_ok=True)
    for package in packages:
        (status / package).write_text(stanzas[package])
        copyright_file = f"/usr/share/doc/{package}/copyright"
        if os.path.exists(copyright_file):
            root.add(copyright_file)
    return packages


def try_in_root(root: Path, venv: str) -> None:
    """Start the tool in the new root, and load libudev and libusb-1.0 there as pyudev and pyusb do."""
    probe = ("from nfd_hooks.libraries import find_library, udev_context\n"
             "udev_context()\n"
             "assert find_library('usb-1.0') == 'libusb-1.0.so.0', find_library('usb-1.0')\n")
    chroot = shutil.which("chroot")
    if chroot is None:
        print("rootfs: not tried in the new root: no chroot command here", file=sys.stderr)
        return
    env = {"PATH": f"{venv}/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    said = []
    for command in ([f"{venv}/bin/nfd-hooks", "--version"], [f"{venv}/bin/python", "-c", probe]):
        done = subprocess.run([chroot, str(root), *command], env=env, capture_output=True, text=True)
        if done.returncode == 125 and "chroot" in done.stderr:
            print(f"rootfs: not tried in the new root, chroot is not allowed here: {done.stderr.strip()}", file=sys.stderr)
            return
        if done.returncode != 0:
            raise SystemExit(f"rootfs: {' '.join(command)} fails in the new root:\n{done.stdout}{done.stderr}")
        said.append(done.stdout.strip())
    print(f"rootfs: in the new root: {said[0]}; libudev and libusb-1.0 load", file=sys.stderr)


def size(path: Path) -> int:
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(path) for f in fs)


def main(venv: str, stdlib_list: str, destination: str) -> None:
    root = Root(Path(destination))
    root.path.mkdir(parents=True)
    interpreter = os.path.realpath(os.path.join(venv, "bin", "python"))
    root.add_tree(venv, skip=VENV_SKIP)
    modules = stdlib_files(read_list(Path(stdlib_list)))
    for path in modules:
        root.add(path)
    loader = elf_interpreter(interpreter)
    own = needed(loader, interpreter)
    elf = [interpreter, *(p for p in modules if p.endswith(".so"))]
    elf += [find_soname(soname, own) for soname in LIBRARIES]
    for path in elf:
        for library in [path, *needed(loader, path)]:
            root.add(library)
    root.add(loader)
    for path in DATA:
        root.add(path)
    for name, content in (("passwd", PASSWD), ("group", GROUP)):
        root.target(f"/etc/{name}").parent.mkdir(exist_ok=True)
        root.target(f"/etc/{name}").write_text(content)
    root.target("/tmp").mkdir(mode=0o1777)
    root.target("/tmp").chmod(0o1777)
    packages = debian_metadata(root)
    stdlib = sysconfig.get_paths()["stdlib"]
    compile_tree(root.target(stdlib), stdlib)
    for purelib in glob.glob(os.path.join(venv, "lib", "python3*", "site-packages")):
        compile_tree(root.target(purelib), purelib)
    libraries = sorted({os.path.basename(p) for p in root.copied if ".so" in os.path.basename(p)
                        and "python3" not in p and not os.path.islink(p)})
    print(f"rootfs: {size(root.path):,} bytes: virtualenv {size(root.target(venv)):,}, standard library "
          f"{size(root.target(stdlib)):,} ({len(read_list(Path(stdlib_list)))} modules), interpreter "
          f"{os.path.getsize(interpreter):,}; shared libraries: {', '.join(libraries)}; "
          f"Debian packages: {', '.join(packages) or 'none'}", file=sys.stderr)
    try_in_root(root.path, venv)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit("usage: rootfs.py VENV STDLIB_LIST DESTINATION")
    main(*sys.argv[1:])
