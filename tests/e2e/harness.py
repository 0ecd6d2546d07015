# SPDX-License-Identifier: MIT
"""A small browser for the end-to-end tests: cookie jar, manual redirects, loopback resolution.

Every host the cluster serves (*.localhost) is reached on 127.0.0.1 with the right SNI and Host
header, TLS verified against the cluster's private CA. Only the Python standard library is used.
"""

import base64
import html.parser
import http.client
import json
import os
import random
import re
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse

RUN_DIR = os.environ.get("PORTCULLIS_RUN_DIR", "")


def load_env():
    """Reads the KEY=value lines that deploy/local/start.sh wrote into run/env.sh."""
    env = {}
    path = os.path.join(RUN_DIR, "env.sh")
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("export "):
                line = line[len("export "):]
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            env[key] = value.strip().strip("'\"")
    return env


ENV = load_env() if RUN_DIR else {}


class Response:
    def __init__(self, method, url, status, headers, body):
        self.method = method
        self.url = url
        self.status = status
        self.headers = headers  # list of (name, value), names lower-case
        self.body = body

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<%s %s -> %d>" % (self.method, self.url, self.status)


class Cookie:
    def __init__(self, name, value, domain, host_only, path, attrs):
        self.name = name
        self.value = value
        self.domain = domain
        self.host_only = host_only
        self.path = path
        self.attrs = attrs  # lower-case attribute name -> value ("" for flags)

    def matches(self, host, path):
        if self.host_only:
            if host != self.domain:
                return False
        elif host != self.domain and not host.endswith("." + self.domain):
            return False
        return path.startswith(self.path)


class Browser:
    """Keeps cookies per RFC 6265 (enough of it for these tests) and never follows redirects
    on its own: follow() does, and records every hop."""

    def __init__(self, ca_file=None):
        self.cookies = []
        self.ca_file = ca_file or os.path.join(RUN_DIR, "certs", "ca.pem")
        self.history = []

    # cookies

    def store_cookie(self, host, set_cookie):
        parts = [p.strip() for p in set_cookie.split(";")]
        if "=" not in parts[0]:
            return
        name, value = parts[0].split("=", 1)
        attrs = {}
        for p in parts[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                attrs[k.strip().lower()] = v.strip()
            elif p:
                attrs[p.lower()] = ""
        domain = attrs.get("domain", "").lstrip(".").lower()
        host_only = domain == ""
        if host_only:
            domain = host
        elif host != domain and not host.endswith("." + domain):
            return  # a browser refuses a cookie for a domain the host is not in
        path = attrs.get("path", "/")
        self.cookies = [c for c in self.cookies
                        if not (c.name == name and c.domain == domain and c.path == path
                                and c.host_only == host_only)]
        expired = attrs.get("max-age") is not None and int(attrs["max-age"]) <= 0
        if not expired:
            self.cookies.append(Cookie(name, value, domain, host_only, path, attrs))

    def cookie_header(self, host, path):
        pairs = ["%s=%s" % (c.name, c.value) for c in self.cookies if c.matches(host, path)]
        return "; ".join(pairs)

    def find_cookie(self, name, domain=None):
        for c in self.cookies:
            if c.name == name and (domain is None or c.domain == domain):
                return c
        return None

    # requests

    def request(self, method, url, headers=None, body=None, connect_port=None):
        u = urllib.parse.urlsplit(url)
        host = u.hostname.lower()
        port = u.port or (443 if u.scheme == "https" else 80)
        path = u.path or "/"
        target = path + ("?" + u.query if u.query or url.endswith("?") else "")
        hdrs = {"Host": u.netloc, "User-Agent": "portcullis-e2e", "Accept": "text/html"}
        cookie = self.cookie_header(host, path)
        if cookie:
            hdrs["Cookie"] = cookie
        if headers:
            hdrs.update(headers)
        if body is not None and isinstance(body, dict):
            body = urllib.parse.urlencode(body).encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        conn = _connection(u.scheme, host, connect_port or port, self.ca_file)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.endheaders(body)
            res = conn.getresponse()
            data = res.read()
            got = [(k.lower(), v) for k, v in res.getheaders()]
        finally:
            conn.close()
        for k, v in got:
            if k == "set-cookie":
                self.store_cookie(host, v)
        r = Response(method, url, res.status, got, data)
        self.history.append(r)
        return r

    def get(self, url, headers=None):
        return self.request("GET", url, headers)

    def follow(self, url, credentials=None, max_hops=25, headers=None):
        """GETs url and follows redirects; on the dev provider's login form submits
        credentials (login, password). Returns the final response; self.history has all."""
        _, r, arrived = _hops(self, url, credentials, None, max_hops, headers)
        if not arrived:
            raise AssertionError("redirect loop: " +
                                 " -> ".join(h.url for h in self.history[-8:]))
        return r


def _hops(browser, url, credentials, stop, max_hops, headers):
    """The walk behind Browser.follow and walk_until: follows redirects and submits credentials
    to the provider's login form; a GET of a URL for which stop(url) holds is not sent.
    Returns (last url, last response or None when stopped, False when max_hops ran out)."""
    method, body = "GET", None
    for _ in range(max_hops):
        if stop is not None and method == "GET" and stop(url):
            return url, None, True
        r = browser.request(method, url, headers=headers, body=body)
        method, body = "GET", None
        if r.status in (301, 302, 303, 307, 308):
            url = urllib.parse.urljoin(url, r.header("location"))
            continue
        form = find_login_form(r)
        if r.status == 200 and form is not None and credentials is not None:
            action, fields = form
            fields.update(credentials)
            url = urllib.parse.urljoin(url, action)
            method, body = "POST", fields
            continue
        return url, r, True
    return url, None, False


def _connection(scheme, host, port, ca_file):
    if scheme == "https":
        ctx = ssl.create_default_context(cafile=ca_file)
        return _LoopbackHTTPS(host, port, context=ctx, timeout=10)
    return _LoopbackHTTP(host, port, timeout=10)


class _LoopbackHTTP(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)


class _LoopbackHTTPS(http.client.HTTPSConnection):
    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _FormParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append([a.get("action", ""), {}, a.get("method", "get").lower()])
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1][1][a["name"]] = a.get("value") or ""


def find_login_form(r):
    """The dev provider's login form: a POST form with `login` and `password` inputs."""
    ctype = r.header("content-type") or ""
    if "html" not in ctype:
        return None
    p = _FormParser()
    p.feed(r.text())
    for action, fields, method in p.forms:
        if method == "post" and "login" in fields and "password" in fields:
            return action, dict(fields)
    return None


# the cluster's users (deploy/dev-idp/users.json)
ALICE = {"login": "alice@example.com", "password": "alice-password"}
BOB = {"login": "bob@example.com", "password": "bob-password"}
MALLORY = {"login": "mallory@evil.example", "password": "mallory-password"}


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token):
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), b64url_decode(s)


def verify_es256(token, jwk):
    """Verifies an ES256 JWS with the openssl command line, independently of our C code."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise AssertionError("unexpected key type %r" % (jwk,))
    x, y = b64url_decode(jwk["x"]), b64url_decode(jwk["y"])
    spki = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + b"\x04" + x + y
    pem = "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" % (
        base64.encodebytes(spki).decode().strip())
    signing_input = token.rsplit(".", 1)[0].encode()
    sig = b64url_decode(token.rsplit(".", 1)[1])
    if len(sig) != 64:
        return False
    der = _der_ecdsa(sig[:32], sig[32:])
    with tempfile.TemporaryDirectory() as d:
        paths = {n: os.path.join(d, n) for n in ("key.pem", "sig.der", "data")}
        with open(paths["key.pem"], "w") as f:
            f.write(pem)
        with open(paths["sig.der"], "wb") as f:
            f.write(der)
        with open(paths["data"], "wb") as f:
            f.write(signing_input)
        res = subprocess.run(["openssl", "dgst", "-sha256", "-verify", paths["key.pem"],
                              "-signature", paths["sig.der"], paths["data"]],
                             capture_output=True)
        return res.returncode == 0


def _der_ecdsa(r, s):
    def integer(b):
        b = b.lstrip(b"\x00") or b"\x00"
        if b[0] & 0x80:
            b = b"\x00" + b
        return b"\x02" + bytes([len(b)]) + b
    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body


def wait_until(predicate, timeout_s, interval_s=0.05):
    """Polls predicate until it returns true or the time is up; returns the last result."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval_s)


def hosts_visited(history):
    return [urllib.parse.urlsplit(r.url).hostname for r in history]


def idp_visits(history):
    """How many times the browser was sent to the provider's authorization endpoint."""
    return sum(1 for r in history
               if urllib.parse.urlsplit(r.url).port == port_of("idp") and r.method == "GET"
               and re.search(r"/(auth|authorize)(\?|$)", urllib.parse.urlsplit(r.url).path + "?"))


# the cluster's public hosts (docs/ARCHITECTURE.md, "Local cluster and ports")
AUTHN_HOST = "authenticate.portcullis.localhost"
FA_HOST = "auth.portcullis.localhost"
VERIFY_HOST = "verify.portcullis.localhost"
ADMIN_HOST = "admin.portcullis.localhost"
PUBLIC_HOST = "public.portcullis.localhost"
APP_HOST = "app.localhost"
SEED_HOST = "seed.localhost"
COOKIE_DOMAIN = "portcullis.localhost"


def port_of(name):
    base = int(ENV.get("PORTCULLIS_PORT_BASE", "28000"))
    offsets = {"nginx": 443, "authenticate": 1, "authorize_a": 2, "authorize_b": 3,
               "databroker": 4, "redis": 379, "idp": 900, "app": 80}
    return base + offsets[name]


def public_url(host, path="/"):
    return "https://%s:%d%s" % (host, port_of("nginx"), path)


def authorize_url(instance, path):
    """An authorize instance reached directly, as nginx's auth_request does (plain HTTP)."""
    return "http://127.0.0.1:%d%s" % (port_of("authorize_" + instance), path)


# ---- helpers for test_authn_hostile.py (issue #4) ------------------------------------------

def idp_control(path, body=None):
    """Calls one of the dev provider's test controls (IDP_TEST_CONTROLS=1, see
    deploy/dev-idp/server.mjs); returns the decoded JSON answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port_of("idp"), timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        method = "GET" if path == "/__test/stats" else "POST"
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        res = conn.getresponse()
        text = res.read()
        if res.status != 200:
            raise AssertionError("idp control %s answered %d: %r" % (path, res.status, text))
        return json.loads(text)
    finally:
        conn.close()


def _hkdf_sha256(secret, info, length=32):
    """RFC 5869 with no salt, as common/crypto.c derives its keys."""
    import hashlib
    import hmac
    prk = hmac.new(b"\x00" * 32, secret, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def sign_url(url, now=None):
    """Signs `url` as authorize does (common/signed_url.c): pomerium_issued and pomerium_expiry
    appended, then an HMAC-SHA256 over everything before the signature parameter."""
    import hashlib
    import hmac
    with open(os.path.join(RUN_DIR, "secrets", "shared_secret"), encoding="ascii") as f:
        secret = base64.b64decode(f.read().strip())
    key = _hkdf_sha256(secret, b"portcullis signed-url v1")
    now = int(time.time()) if now is None else now
    sep = "&" if "?" in url else "?"
    if url.endswith("?") or url.endswith("&"):
        sep = ""
    signed = "%s%spomerium_issued=%d&pomerium_expiry=%d" % (url, sep, now, now + 300)
    mac = hmac.new(key, signed.encode("latin-1"), hashlib.sha256).digest()
    return signed + "&pomerium_signature=" + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def redis_command(*args):
    """One command to the cluster's Redis through redis-cli; returns its output."""
    res = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port_of("redis"))]
                         + [str(a) for a in args], capture_output=True, text=True, timeout=10)
    return res.stdout.strip()


def restart_redis_empty():
    """Empties the cluster's Redis and restarts it with start.sh's command line, as a Redis
    without persistence comes back after a restart: every record, version and epoch is gone.
    The new pid goes into the pid file so that deploy/local/stop.sh stops it."""
    pid_file = os.path.join(RUN_DIR, "pids", "redis.pid")
    with open(pid_file, encoding="ascii") as f:
        pid = int(f.read().strip())
    # redis-server rewrites its /proc cmdline, so the command is the one deploy/local/start.sh
    # runs
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port_of("redis")),
            "--dir", os.path.join(RUN_DIR, "redis"), "--appendonly", "yes", "--save", "",
            "--daemonize", "no", "--logfile", "", "--protected-mode", "yes"]
    redis_command("FLUSHALL")
    redis_command("SHUTDOWN", "NOSAVE")
    wait_until(lambda: not os.path.exists("/proc/%d" % pid) or _zombie(pid), 10)
    with open(os.path.join(RUN_DIR, "logs", "redis.log"), "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    proc.returncode = 0  # stop.sh stops it; no "still running" warning at exit
    with open(pid_file, "w", encoding="ascii") as f:
        f.write(str(proc.pid))
    if not wait_until(lambda: redis_command("PING") == "PONG", 10):
        raise AssertionError("redis did not come back")
    return proc


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as f:
            return f.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


# ---- helpers for test_authz_hostile.py (issue #4, authorize and nginx side) ----------------

def walk_until(browser, url, credentials=None, stop=None, max_hops=25):
    """Follows redirects and the provider's login form like Browser.follow, but returns
    (url, None) instead of requesting a URL for which stop(url) holds; else (url, response)."""
    url, r, arrived = _hops(browser, url, credentials, stop, max_hops, None)
    if not arrived:
        raise AssertionError("too many hops from " + url)
    return url, r


def raw_exchange(port, request, timeout=5.0, tls_host=None):
    """Sends raw bytes to 127.0.0.1:port (TLS with SNI tls_host when given) on one connection
    and returns (socket, first response head as bytes, seconds it took); the caller closes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout)
    if tls_host is not None:
        ctx = ssl.create_default_context(cafile=os.path.join(RUN_DIR, "certs", "ca.pem"))
        sock = ctx.wrap_socket(sock, server_hostname=tls_host)
    started = time.monotonic()
    sock.sendall(request)
    return sock, read_response(sock), time.monotonic() - started


def read_response(sock):
    """One HTTP/1.1 response with a Content-Length or chunked body; returns its bytes (b"" when
    the peer closed first)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    if m:
        want = int(m.group(1))
        while len(rest) < want:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    elif re.search(rb"\r\ntransfer-encoding:\s*chunked", head, re.I):
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return head + b"\r\n\r\n" + rest


def pid_of(name):
    with open(os.path.join(RUN_DIR, "pids", name + ".pid"), encoding="ascii") as f:
        return int(f.read().strip())


def mint_sessions(*args):
    """bench/mint_sessions against the cluster: the cookies it sealed (sessions stored unless -u)"""
    run_dir = RUN_DIR
    tool = os.path.join(os.path.dirname(os.environ["PORTCULLIS_BIN"]), "bench", "mint_sessions")
    out = os.path.join(run_dir, "minted.cookies")
    certs = os.path.join(run_dir, "certs")
    env = dict(os.environ, CERTIFICATE_FILE=os.path.join(certs, "authorize.pem"),
               CERTIFICATE_KEY_FILE=os.path.join(certs, "authorize-key.pem"))
    subprocess.run([tool, "-c", os.path.join(run_dir, "config.yaml"), "-o", out] + list(args),
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(out) as f:
        cookies = f.read().split()
    os.unlink(out)
    return cookies


def free_port(low, high):
    """a free 127.0.0.1 port in low..high; test files take ranges below the kernel's ephemeral
    one (32768 up), so no outgoing connection can take it between this check and the bind"""
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in %d-%d" % (low, high))
