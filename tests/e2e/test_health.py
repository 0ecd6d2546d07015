# SPDX-License-Identifier: MIT
"""End-to-end: every daemon's /healthz and /readyz, and readiness following its dependencies."""

import os
import signal
import time
import unittest

from harness import ALICE, VERIFY_HOST, Browser, pid_of, port_of, public_url, wait_until


def status(port, path):
    return Browser().get("http://127.0.0.1:%d%s" % (port, path)).status


class Health(unittest.TestCase):
    def test_every_daemon_is_alive_and_ready(self):
        for name in ("authenticate", "authorize_a", "authorize_b"):
            self.assertEqual(status(port_of(name), "/healthz"), 200, name)
            # earlier tests stop the databroker and Redis; readiness follows within seconds
            self.assertTrue(wait_until(lambda: status(port_of(name), "/readyz") == 200,
                                       timeout_s=10), name)

    def test_authorize_is_ready_again_soon_after_the_databroker_returns(self):
        pid = pid_of("databroker")
        os.kill(pid, signal.SIGSTOP)
        try:
            # the change stream's long poll times out, the follower notices and backs off
            unready = wait_until(lambda: status(port_of("authorize_a"), "/readyz") == 503,
                                 timeout_s=30)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertTrue(unready)
        started = time.monotonic()
        self.assertTrue(wait_until(lambda: status(port_of("authorize_a"), "/readyz") == 200,
                                   timeout_s=15))
        self.assertLess(time.monotonic() - started, 8.0)

    def test_authenticate_is_not_ready_while_the_databroker_is_stuck(self):
        """DESIGN §7: readiness fails while the databroker is unreachable."""
        pid = pid_of("databroker")
        os.kill(pid, signal.SIGSTOP)
        try:
            stuck = status(port_of("authenticate"), "/readyz")
            alive = status(port_of("authenticate"), "/healthz")
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(stuck, 503)
        self.assertEqual(alive, 200, "liveness does not depend on the databroker")
        self.assertTrue(wait_until(lambda: status(port_of("authenticate"), "/readyz") == 200,
                                   timeout_s=10))

    def test_a_stuck_authorize_instance_costs_seconds_not_a_minute(self):
        """nginx's upstream timeouts for /ext_authz move a request on to the other instance."""
        b = Browser()
        self.assertEqual(b.follow(public_url(VERIFY_HOST, "/"), credentials=ALICE).status, 200)
        pid = pid_of("authorize-b")
        os.kill(pid, signal.SIGSTOP)
        try:
            timings = []
            for i in range(4):  # round robin: some of these are sent to the stuck one first
                started = time.monotonic()
                r = b.get(public_url(VERIFY_HOST, "/stuck-%d" % i))
                timings.append((r.status, time.monotonic() - started))
        finally:
            os.kill(pid, signal.SIGCONT)
        for status, seconds in timings:
            self.assertEqual(status, 200)
            self.assertLess(seconds, 8.0, timings)


if __name__ == "__main__":
    unittest.main()
