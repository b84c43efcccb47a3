"""Hypothesis budgets for the reliability suite (and any other hypothesis test run with it).

``ci`` (default): hypothesis' usual 100 examples, derandomized so that CI runs
are reproducible; the reliability tests take a fraction of it (``scaled``).
``long`` (``NFD_HOOKS_FUZZ=long``): 25 times that, random, over 10,000
generated cases in the reliability suite. No per-example deadline (a loaded CI
machine must not flake); hangs are caught by the worst-case timing tests and
by the subprocess timeouts of the command-line runs.
"""

from hypothesis import HealthCheck, settings

from tests.reliability.invariants import CASES, FUZZ_PROFILE

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("ci", max_examples=100, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("long", max_examples=2500, print_blob=True, **_COMMON)
settings.load_profile(FUZZ_PROFILE)


def pytest_terminal_summary(terminalreporter):
    if CASES:
        terminalreporter.write_line(
            f"nfd-hooks reliability: {sum(CASES.values())} generated cases checked "
            f"(profile {FUZZ_PROFILE}): "
            + ", ".join(f"{name} {n}" for name, n in sorted(CASES.items()))
        )
