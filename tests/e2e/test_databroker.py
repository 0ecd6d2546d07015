# SPDX-License-Identifier: MIT
"""End-to-end tests of portcullis-databroker on a real redis-server, over mutual TLS.

Run: python3 -m unittest tests/e2e/test_databroker.py
Env: PORTCULLIS_BIN = the directory holding portcullis-databroker (default build/debug/bin).
"""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import harness

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PORTCULLIS_BIN", os.path.join(REPO, "build", "debug", "bin"))
SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def free_port():
    return harness.free_port(31000, 31999)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_certs(d):
    """a throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate"""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=portcullis test ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name, eku in (("server", "serverAuth"), ("client", "clientAuth")):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                    "extendedKeyUsage=%s\n" % eku)
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext",
                cwd=d)


class Redis:
    def __init__(self, port, d):
        self.port = port
        self.dir = d
        self.proc = None

    def start(self):
        self.log = log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", self.dir],
            stdout=log, stderr=log)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.cmd("PING") == "PONG":
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None
            self.log.close()

    def cmd(self, *args):
        """one command over RESP; returns a simple string, integer or bulk string"""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            out = "*%d\r\n" % len(args) + "".join(
                "$%d\r\n%s\r\n" % (len(a.encode()), a) for a in args)
            s.sendall(out.encode())
            f = s.makefile("rb")
            line = f.readline().decode().rstrip("\r\n")
            if line[0] in "+-":
                return line[1:]
            if line[0] == ":":
                return int(line[1:])
            if line[0] == "$":
                n = int(line[1:])
                return None if n < 0 else f.read(n + 2)[:-2].decode()
            return line


class Broker:
    def __init__(self, d, name, port, redis_port):
        self.dir = d
        self.name = name
        self.port = port
        self.config = os.path.join(d, name + ".yaml")
        with open(self.config, "w") as f:
            f.write("\n".join([
                "address: 127.0.0.1:%d" % port,
                "log_level: debug",
                "certificate_authority_file: %s/ca.pem" % d,
                "certificate_file: %s/server.pem" % d,
                "certificate_key_file: %s/server.key" % d,
                "databroker_storage_type: redis",
                "databroker_storage_connection_string: redis://127.0.0.1:%d/0" % redis_port,
                "cookie_secret: " + SECRET,
                "shared_secret: " + SECRET,
                "authenticate_service_url: https://authenticate.localhost",
                "idp_provider: oidc",
                "idp_provider_url: https://idp.localhost",
                "idp_client_id: test",
                "idp_client_secret: test",
            ]) + "\n")
        self.proc = None
        self.ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
        self.ctx.load_cert_chain(os.path.join(d, "client.pem"), os.path.join(d, "client.key"))

    def start(self):
        self.log = open(os.path.join(self.dir, self.name + ".log"), "ab")
        self.proc = subprocess.Popen([os.path.join(BIN, "portcullis-databroker"), "-c",
                                      self.config], stdout=self.log, stderr=self.log)
        self.wait_ready()

    def wait_ready(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("databroker %s not ready" % self.name)

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()

    def request(self, method, path, body=None, timeout=30, ctx=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx or self.ctx,
                                           timeout=timeout)
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json"} if data else {})
            resp = conn.getresponse()
            raw = resp.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return resp.status, parsed
        finally:
            conn.close()


class DatabrokerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="portcullis-databroker-")
        make_certs(cls.dir)
        cls.redis = Redis(free_port(), cls.dir)
        cls.redis.start()
        cls.a = Broker(cls.dir, "a", free_port(), cls.redis.port)
        cls.b = Broker(cls.dir, "b", free_port(), cls.redis.port)
        try:
            cls.a.start()
            cls.b.start()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        cls.b.stop()
        cls.redis.stop()
        # under SAN=asan: memory errors fail the run (leak reports at exit are not judged here)
        for broker in (cls.a, cls.b):
            with open(os.path.join(cls.dir, broker.name + ".log"), errors="replace") as f:
                log = f.read()
            for marker in ("ERROR: AddressSanitizer", "runtime error:"):
                if marker in log:
                    raise AssertionError("%s in databroker %s log:\n%s" % (marker, broker.name,
                                                                           log[-4000:]))
        if os.environ.get("PORTCULLIS_KEEP_LOGS") is None:
            shutil.rmtree(cls.dir, ignore_errors=True)
        else:
            print("logs kept in", cls.dir)

    def put(self, type_, id_, data, ttl=None, broker=None):
        body = {"data": data}
        if ttl is not None:
            body["ttl"] = ttl
        return (broker or self.a).request("PUT", "/v1/records/%s/%s" % (type_, id_), body)

    def latest(self, broker=None):
        status, body = (broker or self.a).request("GET", "/v1/changes?after=0&wait=0")
        self.assertEqual(status, 200)
        return body["latest"], body["epoch"]

    def test_health(self):
        self.assertEqual(self.a.request("GET", "/healthz"), (200, "ok"))
        self.assertEqual(self.a.request("GET", "/readyz"), (200, "ok"))

    def test_put_then_get(self):
        data = {"user": "alice@example.com", "groups": ["a", "b"], "empty": [], "n": 1.5}
        status, rec = self.put("session", "s1.alice@x:y-z", data, ttl=600)
        self.assertEqual(status, 200)
        self.assertEqual(rec["type"], "session")
        self.assertEqual(rec["id"], "s1.alice@x:y-z")
        self.assertEqual(rec["data"], data)
        self.assertAlmostEqual(rec["expires_at"], time.time() + 600, delta=5)
        status, got = self.a.request("GET", "/v1/records/session/s1.alice@x:y-z")
        self.assertEqual(status, 200)
        self.assertEqual(got, rec)
        # the other instance reads the same store
        self.assertEqual(self.b.request("GET", "/v1/records/session/s1.alice@x:y-z"), (200, rec))
        # no ttl: no expiry
        status, rec = self.put("user", "u1", {"x": 1})
        self.assertEqual((status, rec["expires_at"]), (200, None))

    def test_large_record(self):
        data = {"blob": "b" * (250 * 1024)}  # just under the 256 KiB body limit
        status, rec = self.put("big", "b1", data)
        self.assertEqual(status, 200)
        self.assertEqual(self.b.request("GET", "/v1/records/big/b1"), (200, rec))
        self.assertEqual(rec["data"], data)

    def test_get_missing_is_404(self):
        status, body = self.a.request("GET", "/v1/records/session/nope")
        self.assertEqual(status, 404)
        self.assertIn("error", body)

    def get_many(self, type_, ids, broker=None):
        """POST /v1/records/<type> {"ids": ids}: (status, content type, records by id)"""
        broker = broker or self.a
        conn = http.client.HTTPSConnection("127.0.0.1", broker.port, context=broker.ctx,
                                           timeout=30)
        try:
            conn.request("POST", "/v1/records/" + type_, body=json.dumps({"ids": ids}),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            lines = resp.read().decode().split("\n")
        finally:
            conn.close()
        self.assertEqual(lines[-1], "", "every record ends with a newline")
        records = [json.loads(line) for line in lines[:-1]]
        by_id = {r["id"]: r for r in records}
        self.assertEqual(len(by_id), len(records), "each record once")
        return resp.status, resp.getheader("content-type"), by_id

    def test_get_many(self):
        recs = {}
        for i in range(3):
            status, recs["gm%d" % i] = self.put("session", "gm%d" % i, {"i": i, "t": "a\nb"},
                                                ttl=600)
            self.assertEqual(status, 200)
        self.assertEqual(self.put("session", "gm-short", {"i": 9}, ttl=1)[0], 200)
        time.sleep(2.1)  # gm-short has expired: a batch read leaves it out like an absent one
        ids = ["gm2", "absent-1", "gm0", "gm-short", "gm1", "absent-2"]
        for broker in (self.a, self.b):
            status, ctype, got = self.get_many("session", ids, broker)
            self.assertEqual((status, ctype), (200, "application/x-ndjson"))
            self.assertEqual(got, recs)
        # records of another type are not found under this one
        self.assertEqual(self.get_many("user", ["gm0"])[::2], (200, {}))
        # the most ids a batch takes
        status, _, got = self.get_many("session", ["gm0"] + ["none%d" % i for i in range(63)])
        self.assertEqual((status, list(got)), (200, ["gm0"]))

    def test_get_many_reads_each_id_once(self):
        self.assertEqual(self.put("session", "gm-dup", {"i": 1}, ttl=600)[0], 200)
        # the helper fails when a record comes twice
        status, _, got = self.get_many("session", ["gm-dup", "gm-dup", "absent", "gm-dup"])
        self.assertEqual((status, list(got)), (200, ["gm-dup"]))

    def test_get_many_unreadable_record_fails_only_its_own_read(self):
        status, good = self.put("session", "gm-good", {"i": 1}, ttl=600)
        self.assertEqual(status, 200)
        # records the put script did not write: pretty-printed, and not JSON at all
        pretty = {"type": "session", "id": "gm-pretty", "version": 1, "data": {"i": 2},
                  "expires_at": None}
        self.redis.cmd("SET", "portcullis:rec:session:gm-pretty", json.dumps(pretty, indent=2))
        self.redis.cmd("SET", "portcullis:rec:session:gm-broken", "{not json")
        status, ctype, got = self.get_many("session", ["gm-broken", "gm-good", "gm-pretty"])
        self.assertEqual((status, ctype), (200, "application/x-ndjson"))
        self.assertEqual(got["gm-good"], good)
        self.assertEqual(got["gm-pretty"], pretty)
        self.assertEqual(set(got["gm-broken"]), {"id", "error"})
        self.redis.cmd("DEL", "portcullis:rec:session:gm-pretty",
                       "portcullis:rec:session:gm-broken")

    def test_get_many_bad_input(self):
        cases = [
            b"", b"not json", {"ids": []}, {"ids": "gm0"}, {"noids": ["gm0"]},
            {"ids": ["ok", 5]}, {"ids": ["bad!id"]}, {"ids": ["i" * 129]},
            {"ids": ["x%d" % i for i in range(65)]},
        ]
        for body in cases:
            with self.subTest(body=str(body)[:60]):
                status, answer = self.a.request("POST", "/v1/records/session", body)
                self.assertEqual(status, 400)
                self.assertIn("ids", answer["error"])
        status, answer = self.a.request("POST", "/v1/records/Bad", {"ids": ["x"]})
        self.assertEqual(status, 400)
        status, answer = self.a.request("DELETE", "/v1/records/session")
        self.assertEqual(status, 405)

    def test_versions_go_up(self):
        versions = [self.put("ver", "k%d" % (i % 2), {"i": i})[1]["version"] for i in range(5)]
        self.assertEqual(versions, sorted(versions))
        self.assertEqual(len(set(versions)), 5)
        status, body = self.a.request("DELETE", "/v1/records/ver/k0")
        self.assertEqual(status, 200)
        self.assertGreater(body["version"], versions[-1])
        self.assertEqual(self.a.request("DELETE", "/v1/records/ver/k0")[0], 404)

    def test_take_once(self):
        _, rec = self.put("handoff", "h1", {"sid": "s"}, ttl=60)
        status, taken = self.a.request("POST", "/v1/records/handoff/h1/take")
        self.assertEqual(status, 200)
        self.assertEqual(taken, rec)
        self.assertEqual(self.a.request("GET", "/v1/records/handoff/h1")[0], 404)
        self.assertEqual(self.a.request("POST", "/v1/records/handoff/h1/take")[0], 404)
        self.assertEqual(self.b.request("POST", "/v1/records/handoff/h1/take")[0], 404)

    def test_take_is_single_use_under_races(self):
        self.put("race", "r1", {"v": 1}, ttl=60)
        results = []

        def take(broker):
            results.append(broker.request("POST", "/v1/records/race/r1/take")[0])

        threads = [threading.Thread(target=take, args=(b,)) for b in (self.a, self.b) * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(results), [200] + [404] * 7)

    def test_ttl_expiry(self):
        self.put("login", "short", {"v": 1}, ttl=1)
        self.assertEqual(self.a.request("GET", "/v1/records/login/short")[0], 200)
        time.sleep(2.2)
        self.assertEqual(self.a.request("GET", "/v1/records/login/short")[0], 404)
        self.assertEqual(self.a.request("POST", "/v1/records/login/short/take")[0], 404)
        status, page = self.a.request("GET", "/v1/records/login?limit=10")
        self.assertEqual(status, 200)
        self.assertNotIn("short", [r["id"] for r in page["records"]])

    def test_query_pages(self):
        ids = ["q%02d" % i for i in range(7)]
        for i, id_ in enumerate(ids):
            self.put("qtype", id_, {"i": i}, ttl=(None if i % 2 else 300 + i))
        seen = []
        cursor = None
        for _ in range(10):
            path = "/v1/records/qtype?limit=3"
            if cursor is not None:
                path += "&cursor=" + cursor
            status, page = self.a.request("GET", path)
            self.assertEqual(status, 200)
            self.assertLessEqual(len(page["records"]), 3)
            seen += [r["id"] for r in page["records"]]
            cursor = page["cursor"]
            if cursor is None:
                break
        self.assertEqual(sorted(seen), ids)  # every record once, none twice
        self.assertEqual(self.a.request("GET", "/v1/records/qtype")[1]["cursor"], None)
        self.assertEqual(len(self.a.request("GET", "/v1/records/qtype")[1]["records"]), 7)
        self.assertEqual(self.a.request("GET", "/v1/records/qtype?limit=0")[0], 400)
        self.assertEqual(self.a.request("GET", "/v1/records/qtype?limit=1001")[0], 400)
        self.assertEqual(self.a.request("GET", "/v1/records/qtype?cursor=zzz")[0], 400)
        self.assertEqual(self.a.request("GET", "/v1/records/empty-type")[1],
                         {"records": [], "cursor": None})

    def long_poll(self, broker, after, epoch, out):
        start = time.time()
        out.append(broker.request("GET", "/v1/changes?after=%d&epoch=%s&wait=10" % (after, epoch)))
        out.append(time.time() - start)

    def test_changes_long_poll_wakes_on_put(self):
        for waiter, writer in ((self.a, self.a), (self.b, self.a)):
            latest, epoch = self.latest(waiter)
            out = []
            t = threading.Thread(target=self.long_poll, args=(waiter, latest, epoch, out))
            t.start()
            time.sleep(0.5)
            self.assertTrue(t.is_alive(), "the long poll answered before any change")
            status, rec = self.put("lp", "x", {"v": 1}, broker=writer)
            self.assertEqual(status, 200)
            t.join(5)
            self.assertFalse(t.is_alive())
            (status, body), elapsed = out
            self.assertEqual(status, 200)
            self.assertLess(elapsed, 2.5)
            self.assertFalse(body["resync"])
            self.assertEqual(body["epoch"], epoch)
            self.assertIn({"type": "lp", "id": "x", "version": rec["version"], "deleted": False},
                          body["changes"])
            self.assertTrue(all(c["version"] > latest for c in body["changes"]))

    def test_changes_list_and_wait(self):
        latest, epoch = self.latest()
        v1 = self.put("ch", "a", {})[1]["version"]
        v2 = self.a.request("DELETE", "/v1/records/ch/a")[1]["version"]
        status, body = self.a.request("GET", "/v1/changes?after=%d&epoch=%s" % (latest, epoch))
        self.assertEqual(status, 200)
        self.assertEqual([c for c in body["changes"] if c["type"] == "ch"],
                         [{"type": "ch", "id": "a", "version": v1, "deleted": False},
                          {"type": "ch", "id": "a", "version": v2, "deleted": True}])
        # nothing new: held for `wait` seconds, then an empty answer
        start = time.time()
        status, body = self.a.request("GET", "/v1/changes?after=%d&wait=1" % body["latest"])
        self.assertEqual(status, 200)
        self.assertEqual(body["changes"], [])
        self.assertFalse(body["resync"])
        self.assertGreater(time.time() - start, 0.8)
        # a version from the future or a foreign epoch: resync
        self.assertTrue(self.a.request("GET", "/v1/changes?after=%d&wait=0" % (v2 + 1000))[1]
                        ["resync"])
        self.assertTrue(self.a.request("GET", "/v1/changes?after=0&epoch=other&wait=0")[1]
                        ["resync"])

    def test_bad_input(self):
        cases = [
            ("GET", "/v1/records/Bad/x", None, 400),
            ("GET", "/v1/records/%s/x" % ("t" * 33), None, 400),
            ("GET", "/v1/records/session/" + "i" * 129, None, 400),
            ("GET", "/v1/records/session/bad%2Fid", None, 400),
            ("GET", "/v1/records/session/bad!id", None, 400),
            ("PUT", "/v1/records/session/x", b"not json", 400),
            ("PUT", "/v1/records/session/x", b"", 400),
            ("PUT", "/v1/records/session/x", {"data": [1]}, 400),
            ("PUT", "/v1/records/session/x", {"nodata": {}}, 400),
            ("PUT", "/v1/records/session/x", {"data": {}, "ttl": -1}, 400),
            ("PUT", "/v1/records/session/x", {"data": {}, "ttl": 31536001}, 400),
            ("PUT", "/v1/records/session/x", {"data": {}, "ttl": "60"}, 400),
            ("PUT", "/v1/records/session/x", {"data": {"a": "x" * (300 * 1024)}}, 413),
            ("PATCH", "/v1/records/session/x", None, 405),
            ("GET", "/v1/records/session/x/take", None, 405),
            ("POST", "/v1/records/session/x/other", None, 404),
            ("GET", "/v1/changes?after=abc", None, 400),
            ("GET", "/v1/changes?wait=-1", None, 400),
            ("GET", "/v2/nothing", None, 404),
        ]
        for method, path, body, want in cases:
            with self.subTest(method=method, path=path[:60]):
                status, answer = self.a.request(method, path, body)
                self.assertEqual(status, want)
                if want in (400, 404, 405):
                    self.assertIsInstance(answer, dict)
                    self.assertIn("error", answer)
        # nothing was written by the bad PUTs
        self.assertEqual(self.a.request("GET", "/v1/records/session/x")[0], 404)

    def test_client_without_certificate_is_refused(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.pem"))
        with self.assertRaises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            self.a.request("GET", "/healthz", ctx=ctx, timeout=5)
        # a certificate from another CA is refused too
        other = os.path.join(self.dir, "other")
        os.makedirs(other, exist_ok=True)
        make_certs(other)
        ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.pem"))
        ctx.load_cert_chain(os.path.join(other, "client.pem"), os.path.join(other, "client.key"))
        with self.assertRaises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
            self.a.request("GET", "/healthz", ctx=ctx, timeout=5)

    def test_client_gone_during_long_poll(self):
        latest, epoch = self.latest()
        for _ in range(5):
            raw = socket.create_connection(("127.0.0.1", self.a.port))
            tls = self.a.ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            tls.sendall(b"GET /v1/changes?after=%d&wait=20 HTTP/1.1\r\nHost: x\r\n\r\n" % latest)
            time.sleep(0.1)
            tls.close()
        # the broker still answers, and a change after the hang-ups is delivered to a new poll
        v = self.put("gone", "g", {})[1]["version"]
        _, body = self.a.request("GET", "/v1/changes?after=%d&wait=0" % latest)
        self.assertIn(v, [c["version"] for c in body["changes"]])

    def test_zy_redis_hangs(self):
        """a stopped (not dead) Redis: commands time out with 503, then service recovers"""
        self.put("hang", "h", {"v": 1})
        self.redis.proc.send_signal(signal.SIGSTOP)
        try:
            start = time.time()
            status, _ = self.a.request("GET", "/v1/records/hang/h", timeout=10)
            self.assertEqual(status, 503)
            self.assertLess(time.time() - start, 4)
            self.assertEqual(self.a.request("GET", "/readyz")[0], 503)
        finally:
            self.redis.proc.send_signal(signal.SIGCONT)
        self.a.wait_ready(15)
        self.assertEqual(self.a.request("GET", "/v1/records/hang/h")[0], 200)

    def test_zz_redis_down_then_reset(self):
        """runs last: Redis goes away (503), comes back empty (resync), and service recovers"""
        latest, epoch = self.latest()
        self.put("keep", "k", {"v": 1})
        self.redis.cmd("FLUSHALL")
        self.redis.stop()

        deadline = time.time() + 10
        status = None
        while time.time() < deadline:
            status = self.a.request("GET", "/v1/records/keep/k")[0]
            if status == 503:
                break
            time.sleep(0.1)
        self.assertEqual(status, 503)
        self.assertEqual(self.a.request("GET", "/readyz")[0], 503)
        self.assertEqual(self.a.request("PUT", "/v1/records/keep/k", {"data": {}})[0], 503)
        self.assertEqual(self.a.request("GET", "/v1/changes?after=0")[0], 503)
        self.assertEqual(self.a.request("GET", "/healthz")[0], 200)
        # long enough for reconnects to fail and back off; still 503, never a hang
        time.sleep(1.5)
        start = time.time()
        self.assertEqual(self.a.request("GET", "/v1/records/keep/k")[0], 503)
        self.assertLess(time.time() - start, 1)

        self.redis.start()
        self.a.wait_ready(15)
        self.b.wait_ready(15)
        status, body = self.a.request("GET", "/v1/changes?after=%d&epoch=%s&wait=0" %
                                      (latest, epoch))
        self.assertEqual(status, 200)
        self.assertTrue(body["resync"])
        self.assertNotEqual(body["epoch"], epoch)
        self.assertEqual(self.a.request("GET", "/v1/records/keep/k")[0], 404)
        status, rec = self.put("keep", "k", {"v": 2})
        self.assertEqual(status, 200)
        self.assertEqual(rec["version"], 1)
        # both instances follow the new store
        new_epoch = body["epoch"]
        for broker in (self.a, self.b):
            deadline = time.time() + 5
            while time.time() < deadline:
                _, body = broker.request("GET", "/v1/changes?after=0&epoch=%s&wait=1" % new_epoch)
                if body["changes"]:
                    break
            self.assertFalse(body["resync"])
            self.assertEqual(body["changes"][0]["version"], 1)


if __name__ == "__main__":
    unittest.main()
