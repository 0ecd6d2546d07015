# SPDX-License-Identifier: MIT
"""End-to-end: hot reload under load. A client keeps asking one authorize instance while the
config file is rewritten 20 times, broken versions included; no request fails and every answer
matches the policy in force."""

import http.client
import os
import signal
import threading
import time
import unittest
import urllib.parse

from harness import ENV, RUN_DIR, port_of, wait_until

PROBE_HOST = "reload-probe.localhost"
STEPS = 20
CONFIRM_TIMEOUT_S = 5
DWELL_S = 0.12  # how long each version serves the client before the next rewrite

# the probe route's three states and what /verify answers an anonymous client for each
STATES = [
    ("    allow_public_unauthenticated_access: true\n", 200),
    ("", 403),  # a route without policy denies everyone, no login (P112)
    ("    allow_any_authenticated_user: true\n", 401),
]
NOT_FOUND = 403  # route-not-found: the original config has no probe route

BROKEN = {
    "bad-yaml": "policy:\n  - from: https://%s\n    path: [unclosed\n" % PROBE_HOST,
    "unknown-criterion": ("policy:\n  - from: https://%s\n    policy:\n      allow:\n"
                          "        and:\n          - emial: {is: a@example.com}\n" % PROBE_HOST),
    "legacy-conflict": ("policy:\n  - from: https://%s\n"
                        "    allow_public_unauthenticated_access: true\n"
                        "    allowed_users: [alice@example.com]\n" % PROBE_HOST),
}


def good_version(original, k):
    """The original config plus a `policy:` block: a marker route only version k has, and the
    probe route in state k % 3."""
    lines, _ = STATES[k % len(STATES)]
    return original + (
        "\n# test_reload.py version %d\npolicy:\n"
        "  - from: https://%s\n    path: /marker/%d\n"
        "    allow_public_unauthenticated_access: true\n"
        "  - from: https://%s\n    path: /probe\n%s") % (k, PROBE_HOST, k, PROBE_HOST, lines)


def expected(k):
    return NOT_FOUND if k == 0 else STATES[k % len(STATES)][1]


def write_atomically(path, text):
    tmp = path + ".reload-test.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.rename(tmp, path)


def verify_path(path):
    return "/verify?uri=" + urllib.parse.quote("https://%s%s" % (PROBE_HOST, path), safe=":/")


def ask(instance, path):
    conn = http.client.HTTPConnection("127.0.0.1", port_of("authorize_" + instance), timeout=5)
    try:
        conn.request("GET", verify_path(path), headers={"Accept": "application/json"})
        res = conn.getresponse()
        res.read()
        return res.status
    finally:
        conn.close()


def log_count(instance, needle):
    with open(os.path.join(RUN_DIR, "logs", "authorize-%s.log" % instance), encoding="utf-8",
              errors="replace") as f:
        return f.read().count(needle)


class Client(threading.Thread):
    """Sends /verify for the probe to authorize A on one keep-alive connection, without pause,
    and records (sent, received, status) or the error."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples = []
        self.errors = []
        self.stop = threading.Event()

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", port_of("authorize_a"), timeout=5)
        try:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    conn.request("GET", verify_path("/probe"),
                                 headers={"Accept": "application/json"})
                    res = conn.getresponse()
                    res.read()
                except (OSError, http.client.HTTPException) as e:
                    self.errors.append("%.3f %r" % (sent, e))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port_of("authorize_a"),
                                                      timeout=5)
                    continue
                self.samples.append((sent, time.monotonic(), res.status))
        finally:
            conn.close()


class HotReload(unittest.TestCase):
    def setUp(self):
        self.path = ENV["PORTCULLIS_CONFIG"]
        with open(self.path, encoding="utf-8") as f:
            self.original = f.read()
        self.assertNotIn("\npolicy:", self.original, "the test adds its own policy: block")

    def confirm(self, k):
        """Waits until version k answers on A; returns the time the proof arrived."""
        ok = wait_until(lambda: ask("a", "/marker/%d" % k) == 200, CONFIRM_TIMEOUT_S, 0.01)
        self.assertTrue(ok, "version %d was not in force within %ds" % (k, CONFIRM_TIMEOUT_S))
        return time.monotonic()

    def test_rewrites_under_load(self):
        client = Client()
        # per good version: (k, time written, time confirmed); version 0 is the original
        versions = [(0, float("-inf"), float("-inf"))]
        broken_names = list(BROKEN)
        k = 0
        client.start()
        try:
            for step in range(STEPS):
                if step % 3 == 2:
                    self.write_broken(broken_names[(step // 3) % len(broken_names)], k)
                else:
                    k += 1
                    written = time.monotonic()
                    write_atomically(self.path, good_version(self.original, k))
                    versions.append((k, written, self.confirm(k)))
                    self.assertEqual(ask("a", "/marker/%d" % (k - 1)), NOT_FOUND)
                time.sleep(DWELL_S)
        finally:
            client.stop.set()
            client.join(10)
            self.restore()

        self.assertEqual(client.errors, [], "requests failed during the reloads")
        self.assertGreater(len(client.samples), 100)
        self.check_attribution(client.samples, versions)

    def write_broken(self, name, k):
        """A broken rewrite is refused (logged) and version k keeps answering."""
        before = log_count("a", "reload refused:")
        write_atomically(self.path, self.original + "\n# test_reload.py broken: %s\n%s"
                         % (name, BROKEN[name]))
        refused = wait_until(lambda: log_count("a", "reload refused:") > before,
                             CONFIRM_TIMEOUT_S, 0.01)
        self.assertTrue(refused, "the %s config was not refused" % name)
        if k > 0:
            self.assertEqual(ask("a", "/marker/%d" % k), 200,
                             "after the %s config the last good policy must answer" % name)
        self.assertEqual(ask("a", "/probe"), expected(k))

    def check_attribution(self, samples, versions):
        """A version could be in force for a sample when it was written before the answer came
        back and its successor was not yet confirmed when the request was sent."""
        seen_alone = set()
        for sent, received, status in samples:
            possible = []
            for i, (k, written, _) in enumerate(versions):
                superseded = versions[i + 1][2] if i + 1 < len(versions) else float("inf")
                if written <= received and superseded >= sent:
                    possible.append(k)
            self.assertTrue(possible)
            allowed = {expected(k) for k in possible}
            self.assertIn(status, allowed, "answer %d at %.3f, versions %r possible"
                          % (status, sent, possible))
            if len(possible) == 1:
                seen_alone.add(possible[0])
        good = {k for k, _, _ in versions if k > 0}
        self.assertEqual(good - seen_alone, set(),
                         "some versions were never observed alone by the client")

    def restore(self):
        """Puts the original config back on both instances, then checks SIGHUP reloads too."""
        write_atomically(self.path, self.original)
        for instance in ("a", "b"):
            self.assertTrue(
                wait_until(lambda: ask(instance, "/probe") == NOT_FOUND, CONFIRM_TIMEOUT_S, 0.02),
                "authorize %s did not go back to the original config" % instance)

        with open(os.path.join(RUN_DIR, "pids", "authorize-a.pid"), encoding="ascii") as f:
            pid = int(f.read().strip())
        before = log_count("a", "reload: SIGHUP")
        generations = log_count("a", "in force")
        os.kill(pid, signal.SIGHUP)
        self.assertTrue(wait_until(lambda: log_count("a", "in force") > generations,
                                   CONFIRM_TIMEOUT_S, 0.02), "SIGHUP did not reload")
        self.assertEqual(log_count("a", "reload: SIGHUP"), before + 1)
        self.assertEqual(ask("a", "/probe"), NOT_FOUND)


if __name__ == "__main__":
    unittest.main()
