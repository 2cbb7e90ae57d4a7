"""Under CI=true (.ci/run sets it) every test must run: a test that cannot run here fails,
with the reason it gave for skipping, instead of being skipped.

conftest.py imports the hook below; tests skip the usual way (pytest.skip, skipif,
importorskip) and need not know about CI.
"""

import os

import pytest


def under_ci():
    return os.environ.get("CI") == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if under_ci() and report.skipped and not hasattr(report, "wasxfail"):
        # A skip's longrepr is (file, line, "Skipped: reason").
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"CI=true, where every test must run, but this one cannot: {reason}"
