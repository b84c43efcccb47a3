"""Print what the deploy tests built and ran, so a CI log shows it (issue 16)."""

from deploytools import REPORT


def pytest_terminal_summary(terminalreporter) -> None:
    for title, lines in REPORT:
        terminalreporter.section(title)
        for line in lines:
            terminalreporter.write_line(line)
