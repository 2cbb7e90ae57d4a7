"""Waiting for a condition instead of sleeping: the one place the tests wait.

    wait_until(pred, 10)                 # pred's first truthy value, or None after 10 s
    wait_for(pred, 10, "the tag moved")  # the same, but an AssertionError on the deadline
    elapse(1, since=t0)                  # only when time passing is the subject (see below)

A wait ends as soon as its condition holds, so a deadline is a bound on failure, never a
guess at how long something takes: make it generous.
"""

import time

STEP = 0.05   # seconds between two evaluations of a condition


def wait_until(pred, timeout, step=STEP):
    """Evaluates pred() until it returns something truthy, and returns that; None when
    `timeout` seconds pass first (pred is evaluated once more at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)


def wait_for(pred, timeout, what, step=STEP):
    """wait_until, failing with "`what`: not so after `timeout` s" on the deadline."""
    value = wait_until(pred, timeout, step)
    assert value, f"{what}: not so after {timeout} s"
    return value


def elapse(seconds, since):
    """Returns once `seconds` have passed since the time.monotonic() value `since`.

    For a test whose subject is time passing with nothing to observe meanwhile (an interval
    after which something must still be as it was): the interval is measured from the
    moment the timed state was last touched, so it needs no margin. regfs measures with
    steady_clock, the CLOCK_MONOTONIC that time.monotonic reads."""
    left = since + seconds - time.monotonic()
    if left > 0:
        time.sleep(left)
