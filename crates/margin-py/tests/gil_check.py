"""One check that a call releases the GIL, shared by the tests.

A thread runs the call while this thread spins; if the call held the GIL, the spin loop
would stall for the call's whole duration. The workload grows (doubling) until one call
lasts long enough to tell, so the check does not depend on how fast the machine is.
"""

import threading
import time


def assert_releases_gil(call, size=1, min_secs=0.05, max_doublings=10):
    """`call(size)` runs the work; `size` doubles until one call lasts `min_secs`."""
    for _ in range(max_doublings + 1):
        done = {}

        def work():
            t = time.perf_counter()
            call(size)
            done["secs"] = time.perf_counter() - t

        th = threading.Thread(target=work)
        th.start()
        last = time.perf_counter()
        gap = 0.0
        while th.is_alive():
            now = time.perf_counter()
            gap = max(gap, now - last)
            last = now
        th.join()
        if done["secs"] > min_secs:
            assert gap < 0.5 * done["secs"], (gap, done["secs"])
            return
        size *= 2
    raise AssertionError(f"the call never lasted {min_secs} s, even at size {size}: too short to tell")
