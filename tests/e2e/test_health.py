# SPDX-License-Identifier: MIT
"""End-to-end: every daemon's /healthz and /readyz, and readiness following its dependencies."""

import os
import signal
import unittest

from harness import Browser, pid_of, port_of, wait_until


def status(port, path):
    return Browser().get("http://127.0.0.1:%d%s" % (port, path)).status


class Health(unittest.TestCase):
    def test_every_daemon_is_alive_and_ready(self):
        for name in ("authenticate", "authorize_a", "authorize_b"):
            self.assertEqual(status(port_of(name), "/healthz"), 200, name)
            self.assertEqual(status(port_of(name), "/readyz"), 200, name)

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


if __name__ == "__main__":
    unittest.main()
