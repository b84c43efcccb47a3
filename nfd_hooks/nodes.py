"""Node bundles as tests: ``nfd-hooks test`` and the functions under it.

A bundle (written by ``capture``) beside an ``expected.features`` is one test
case: it is replayed as the deployed hook runs (``api.DEPLOYED_HOOK``, unless
other options are given) and both files are compared as NFD reads them
(``nfdfile.parse``): comments and line order do not matter; keys, values and
``# +no-label`` do. Compared exactly, or only the keys the expected file lists
(``subset``): a hand-written file of what placement rules select on.
"""

from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

from nfd_hooks import api
from nfd_hooks.bundle import MANIFEST
from nfd_hooks.diff import Seen, changes, features_of
from nfd_hooks.errors import InputError, NfdHooksError
from nfd_hooks.nfdfile import NFD_PREFIX, parse
from nfd_hooks.safe_read import read_regular_file

EXPECTED = "expected.features"
# A hand-written or recorded features file: NFD reads 64 KiB a file, and a node's output may be split over several.
MAX_EXPECTED = 1024 * 1024
USB_LABEL = f"{NFD_PREFIX}/usb-"  # the start of every USB label name


class Outcome(NamedTuple):
    """One bundle tested: each difference once (empty: it passed), how many
    keys were compared, or why it could not be compared (``missing``)."""

    bundle: Path
    differences: List[str]
    compared: int
    missing: Optional[str] = None


def is_bundle(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def find_bundles(paths: Iterable[Path]) -> Tuple[List[Path], List[str]]:
    """Each path that is a bundle, and the bundles directly inside each other
    directory (sorted), in the order given; and a notice for each directory
    inside that is no bundle. InputError for a path that is neither a bundle nor
    holds one: a test that finds nothing to test must not pass."""
    bundles: List[Path] = []
    notices: List[str] = []
    for path in paths:
        if is_bundle(path):
            bundles.append(path)
            continue
        if not path.is_dir():
            raise InputError(f"{path}: no such directory (a bundle, or a directory of bundles, from 'nfd-hooks capture')")
        try:
            children = sorted(child for child in path.iterdir() if child.is_dir())
        except OSError as error:
            raise InputError(f"{path}: cannot list: {error.strerror or error}") from None
        found = [child for child in children if is_bundle(child)]
        if not found:
            raise InputError(f"{path}: no bundle in it (a bundle is a directory with {MANIFEST}, from 'nfd-hooks capture')")
        bundles += found
        notices += [f"skipped {child}: not a bundle (no {MANIFEST})" for child in children if child not in found]
    return list(dict.fromkeys(bundles)), notices


def node_bundles(directory: Path) -> List[Path]:
    """Every bundle in ``directory`` (``directory/<name>/``), sorted: the
    parameters of a pytest test (docs/capture.md). InputError when there is
    none, so that such a test fails at collection instead of being skipped."""
    return find_bundles([directory])[0]


def replay(bundle: Path, options: Optional[api.Options] = None) -> bytes:
    """The features file the deployed hook (or ``options``) would write on the captured node."""
    replayed = api.replay_options(bundle, options or api.DEPLOYED_HOOK)
    return api.render_scan(api.scan(replayed), replayed)


def differences(expected: bytes, actual: bytes, now: Optional[datetime] = None, subset: bool = False) -> List[str]:
    """How ``actual`` differs from ``expected`` in NFD's view, one line per key:
    ``- name=value`` expected but not given, ``+ name=value`` given but not
    expected (not with ``subset``), ``~ name=expected -> given``; a raw
    feature is marked ``(raw)``. Lines of either file NFD would reject, too."""
    now = now or datetime.now(timezone.utc)
    found = [f"{EXPECTED}:{p.line}: {p.message}" for p in parse(expected, now).problems if not p.warning]
    found += [f"replayed output:{p.line}: {p.message}" for p in parse(actual, now).problems]
    want, got = features_of(expected, now), features_of(actual, now)
    if subset:
        got = {key: seen for key, seen in got.items() if key in want}
    return found + [change.format() for change in changes(want, got)]


def read_expected(bundle: Path) -> Optional[bytes]:
    """The bundle's ``expected.features`` (None: it has none); InputError when it is
    no readable regular file of a sane size (bundles come from strangers: a FIFO must not hang the run)."""
    try:
        content = read_regular_file(str(bundle / EXPECTED), MAX_EXPECTED + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise InputError(f"{bundle}: cannot read {EXPECTED}: {error.strerror or error}") from None
    if len(content) > MAX_EXPECTED:
        raise InputError(f"{bundle}: {EXPECTED} is over {MAX_EXPECTED} bytes")
    return content


def node_differences(bundle: Path, options: Optional[api.Options] = None, subset: bool = False) -> List[str]:
    """``differences`` between the bundle's ``expected.features`` and its replay."""
    expected = read_expected(bundle)
    if expected is None:
        return [f"no {EXPECTED} in {bundle}"]
    return differences(expected, replay(bundle, options), subset=subset)


def test_bundle(bundle: Path, options: api.Options, subset: bool, now: Optional[datetime] = None) -> Outcome:
    """One bundle replayed with ``options`` and compared; InputError when it cannot be replayed."""
    want = read_expected(bundle)
    if want is None:
        return Outcome(bundle, [], 0, f"no {EXPECTED}")
    actual = replay(bundle, options)
    now = now or datetime.now(timezone.utc)
    found = differences(want, actual, now, subset)
    keys: Dict[str, Seen] = features_of(want, now) if subset else {**features_of(want, now), **features_of(actual, now)}
    return Outcome(bundle, found, len(keys))


class Tally:
    """How the bundles of one ``nfd-hooks test`` fared."""

    KINDS = ("passed", "failed", "skipped", "could not be replayed")

    def __init__(self) -> None:
        self.counts = dict.fromkeys(self.KINDS, 0)

    def summary(self, options: api.Options) -> str:
        scan = "with USB (--usb)" if options.use_usb else "as the shipped hook scans (--no-usb)"
        shown = (f"{n} {kind}" for kind, n in self.counts.items() if n or kind in ("passed", "failed"))
        return f"{', '.join(shown)}; replayed {scan}"

    def exit_code(self) -> int:
        """2 when a bundle could not be replayed or nothing was compared (no pass), 1 on a failure, else 0."""
        counts = self.counts
        if counts["could not be replayed"] or not counts["passed"] + counts["failed"]:
            return InputError.exit_code
        return 1 if counts["failed"] else 0


def test_bundles(
    bundles: Iterable[Path], options: api.Options, subset: bool, skip_without_expected: bool, tally: Tally
) -> Iterator[str]:
    """Each bundle tested: a line for it (``ok``, ``FAIL``, ``skip``, ``ERROR``),
    then each of its differences, as they come; ``tally`` counts them."""
    for bundle in bundles:
        try:
            outcome = test_bundle(bundle, options, subset)
        except NfdHooksError as error:
            tally.counts["could not be replayed"] += 1
            yield f"ERROR {error}"
            continue
        if outcome.missing:
            tally.counts["skipped" if skip_without_expected else "failed"] += 1
            yield f"{'skip' if skip_without_expected else 'FAIL'}  {bundle}: {outcome.missing}"
        elif outcome.differences:
            tally.counts["failed"] += 1
            yield (f"FAIL  {bundle}: {len(outcome.differences)} differences from its {EXPECTED} "
                   "(- expected, not given; + given, not expected; ~ expected -> given)")
            yield from (f"      {difference}" for difference in outcome.differences)
            if not options.use_usb and any(d.startswith(f"- {USB_LABEL}") for d in outcome.differences):
                yield "      (USB labels expected: replayed without USB, as the shipped hook; --usb if yours scans USB)"
        else:
            tally.counts["passed"] += 1
            yield f"ok    {bundle} ({outcome.compared} {'listed ' if subset else ''}labels and raw features match)"
