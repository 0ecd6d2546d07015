# SPDX-License-Identifier: MIT
"""An authorize newer than its databroker, as during an upgrade that starts with authorize.

A databroker from before the batch read (POST /v1/records/{type}) answers it 405; authorize must
then read that batch's sessions one by one. No older databroker binary exists to run, so the
real databroker sits behind a small mutual-TLS proxy that refuses the batch endpoint the way an
old one would and passes everything else through.
"""
import http.client
import http.server
import os
import ssl
import subprocess
import threading
import time
import unittest

import harness
from harness import RUN_DIR, mint_sessions, port_of, public_url, wait_until

CERTS = os.path.join(RUN_DIR, "certs")
VERIFY_HOST = "verify.portcullis.localhost"
COOKIE = "_pomerium"
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade"}


def free_port():
    return harness.free_port(32000, 32699)  # apart from the ranges the other tests take


class OldBrokerHandler(http.server.BaseHTTPRequestHandler):
    """the databroker's API as a version without batch reads serves it"""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        if self.path.startswith("/v1/records/"):
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.server.refused += 1
            self.answer(405, b'{"error":"method not allowed"}\n', "application/json")
            return
        self.forward()

    def do_GET(self):
        if self.path.startswith("/v1/records/session/"):
            self.server.single_reads += 1
        self.forward()

    def do_PUT(self):
        self.forward()

    def do_DELETE(self):
        self.forward()

    def forward(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPSConnection("127.0.0.1", port_of("databroker"), timeout=60,
                                           context=self.server.upstream_tls)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP_HEADERS and k.lower() != "host"}
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            res = conn.getresponse()
            data = res.read()
            self.answer(res.status, data, res.getheader("Content-Type", "application/json"))
        finally:
            conn.close()

    def answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class OldBroker(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # authorize opens a connection per concurrent read

    def __init__(self, port):
        super().__init__(("127.0.0.1", port), OldBrokerHandler)
        self.refused = 0
        self.single_reads = 0
        # it answers as the databroker (its certificate) and, like it, wants a client's
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(os.path.join(CERTS, "databroker.pem"),
                                   os.path.join(CERTS, "databroker-key.pem"))
        server_tls.load_verify_locations(os.path.join(CERTS, "ca.pem"))
        server_tls.verify_mode = ssl.CERT_REQUIRED
        self.server_tls = server_tls
        self.upstream_tls = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
        self.upstream_tls.load_cert_chain(os.path.join(CERTS, "authorize.pem"),
                                          os.path.join(CERTS, "authorize-key.pem"))

    def get_request(self):
        # the handshake runs in the connection's own thread, not in the one accepting
        sock, addr = self.socket.accept()
        return self.server_tls.wrap_socket(sock, server_side=True,
                                           do_handshake_on_connect=False), addr


class AuthorizeBeforeDatabroker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = OldBroker(free_port())
        threading.Thread(target=cls.broker.serve_forever, daemon=True).start()
        cls.port = free_port()
        cls.log_path = os.path.join(RUN_DIR, "logs", "authorize-old-broker.log")
        env = dict(os.environ, ADDRESS="127.0.0.1:%d" % cls.port,
                   CERTIFICATE_FILE=os.path.join(CERTS, "authorize.pem"),
                   CERTIFICATE_KEY_FILE=os.path.join(CERTS, "authorize-key.pem"),
                   DATABROKER_SERVICE_URL="https://127.0.0.1:%d" % cls.broker.server_address[1])
        cls.log = open(cls.log_path, "w")
        binary = os.path.join(os.environ["PORTCULLIS_BIN"], "portcullis-authorize")
        cls.proc = subprocess.Popen([binary, "-c", os.path.join(RUN_DIR, "config.yaml")],
                                    env=env, stdout=cls.log, stderr=subprocess.STDOUT)
        if not wait_until(lambda: cls.status("/readyz") == 200, 15):
            cls.tearDownClass()
            raise AssertionError("authorize behind the old databroker never got ready")

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        try:
            cls.proc.wait(10)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            cls.proc.wait()
        cls.log.close()
        cls.broker.shutdown()
        cls.broker.server_close()

    @classmethod
    def status(cls, path):
        conn = http.client.HTTPConnection("127.0.0.1", cls.port, timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        except OSError:
            return None
        finally:
            conn.close()

    def verify(self, cookie):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", "/verify?uri=" + public_url(VERIFY_HOST, "/upgrade"),
                     headers={"Host": "%s:%d" % (VERIFY_HOST, port_of("nginx")),
                              "X-Forwarded-Proto": "https", "Cookie": COOKIE + "=" + cookie})
        try:
            res = conn.getresponse()
            res.read()
            return res.status, res.getheader("X-Pomerium-Claim-Email")
        finally:
            conn.close()

    def test_uncached_sessions_are_read_one_by_one_after_a_405(self):
        cookies = mint_sessions("-n", "12")
        results = [None] * len(cookies)

        def ask(i):
            results[i] = self.verify(cookies[i])

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(cookies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)

        self.assertEqual(results, [(200, "user%d@example.com" % i) for i in range(len(cookies))])
        self.assertGreaterEqual(self.broker.refused, 1)
        self.assertGreaterEqual(self.broker.single_reads, len(cookies))
        # once cached, no more reads of any kind
        before = (self.broker.refused, self.broker.single_reads)
        self.assertEqual(self.verify(cookies[0]), (200, "user0@example.com"))
        self.assertEqual((self.broker.refused, self.broker.single_reads), before)
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
        self.assertIn("session batch read refused (405", log)


if __name__ == "__main__":
    unittest.main()
