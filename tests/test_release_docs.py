"""The licence, the changelog and every place that names the version agree with the package.

CHANGELOG.md, "How versions are numbered", promises that the package, the image tag in the
manifests and the Helm values, and the Containerfile's version label carry one number.
"""

import re

import yaml

from nfd_hooks import __version__
from tests.conftest import ROOT


def test_the_licence_file_is_the_licence_pyproject_declares():
    declared = re.search(r'^license = \{ text = "([^"]+)" \}', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert declared and declared.group(1) == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert re.search(r"^Copyright \(c\) \d{4} nfd-hooks developers$", text, re.MULTILINE)
    assert "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND" in text


def test_the_newest_changelog_entry_is_this_version():
    entries = re.findall(r"^## (\d+\.\d+\.\d+) \(([^)]+)\)$", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert entries, "CHANGELOG.md: no '## X.Y.Z (date or unreleased)' entry"
    version, when = entries[0]
    assert version == __version__
    assert when == "unreleased" or re.fullmatch(r"\d{4}-\d{2}-\d{2}", when), when
    versions = [tuple(map(int, v.split("."))) for v, _ in entries]
    assert versions == sorted(versions, reverse=True), "newest first"


def test_the_image_tags_are_this_version():
    base = yaml.safe_load((ROOT / "manifests" / "base" / "kustomization.yaml").read_text())
    assert [image["newTag"] for image in base["images"] if image["name"] == "nfd-hooks"] == [__version__]
    values = yaml.safe_load((ROOT / "manifests" / "helm" / "values.yaml").read_text())
    (hook,) = [c for c in values["worker"]["initContainers"] if c["name"] == "nfd-hooks"]
    assert hook["image"].rpartition(":")[2] == __version__
    label = re.findall(r"^ARG VERSION=(\S+)$", (ROOT / "Containerfile").read_text(), re.MULTILINE)
    assert label in ([], [__version__])  # the image's org.opencontainers.image.version, when it sets one
