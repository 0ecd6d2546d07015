#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Portcullis benchmark: starts a cluster on loopback, runs every scenario interleaved with wrk,
prints one table and writes a JSON file, and stops what it started.

    bench/bench.py --out-dir build/release            # what `make bench` runs
    bench/bench.py --out-dir build/debug --smoke      # what `make bench-smoke` runs (CI)

Scenarios (issue #5): B1 bare libh2o 200; B2 nginx proxying to a static upstream; B3 nginx
auth_request to B1 then the upstream; P1 /verify straight to authorize, cached session, allowed,
identity headers; P2 the shipped nginx config end to end; P3 /verify with a different cold
session per request; P4 denied (403) and unauthenticated (401); P5 P1 with 1, 2 and 4 workers.
The static upstream is a second B1 process. Memory: authorize's RSS at start and after holding
the first --sessions pool sessions in its cache.

Environment: BENCH_PORT_BASE (default 23500, below the ephemeral port range; ports
base..base+23), BENCH_RUN_DIR (default a new temporary directory, removed after a run without
failure).
"""

import argparse
import base64
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 5
WRK_THREADS = 2
WRK_TIMEOUT = "2s"
FILL_LIMIT_S = 300
LISTEN_RETRIES = 65  # one a second: a TIME_WAIT lasts 60 s
P3_SLOW_MS = 50
MEMORY_TARGET_BYTES = 1024

# offsets from the port base; authz-cold-<i> (one fresh instance per P3 run) from COLD_PORT
PORTS = {
    "nginx": 0, "b1": 1, "upstream": 2, "databroker": 3, "redis": 4,
    "authz": 10, "authz-w1": 11, "authz-w2": 12, "authz-w4": 13, "authz-mem": 15,
}
COLD_PORT = 20
COLD_MAX = 80

ROUTE_HOST = "app.portcullis.localhost"
DENY_HOST = "deny.portcullis.localhost"
NGINX_HOSTS = ["b2.bench.localhost", "b3.bench.localhost", ROUTE_HOST, DENY_HOST]


class BenchError(Exception):
    """a failure that ends the run: printed, the cluster stopped, exit status 1"""


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP: stop what we started, then exit"""


def on_signal(signo, frame):
    # once: a second signal must not cut short the cleanup the first one started
    for other in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted("signal %d" % signo)


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# ---- processes ----------------------------------------------------------------------------

def proc_stat(pid):
    """(ppid, utime + stime in ticks) of a process, or None once it is gone"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st is not None and st[0] == pid:
                kids.append(int(entry))
    return kids


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise BenchError("no VmRSS for pid %d" % pid)


class Service:
    """one process we started, in its own session (so its group holds its children)"""

    def __init__(self, name, argv, env, log_path, cwd):
        self.name = name
        self.log_path = log_path
        self.logf = open(log_path, "ab")
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                      stdout=self.logf, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def pids(self):
        """the process and its children (nginx's workers)"""
        return [self.pid] + children_of(self.pid)

    def cpu_ticks(self):
        total = 0
        for pid in self.pids():
            st = proc_stat(pid)
            if st is not None:
                total += st[1]
        return total

    def stop(self):
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log("%s (pid %d) did not stop in %d s: killing it"
                    % (self.name, self.pid, STOP_TIMEOUT_S))
                self._signal(signal.SIGKILL)
                self.popen.wait()
        self.logf.close()

    def _signal(self, signo):
        # the group is ours only while its leader is our child (setsid made it); else the pid
        try:
            if os.getpgid(self.pid) == self.pid:
                os.killpg(self.pid, signo)
            else:
                os.kill(self.pid, signo)
        except ProcessLookupError:
            pass

    def tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""


# ---- HTTP probes ----------------------------------------------------------------------------

def insecure_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def probe(port, path, host=None, cookie=None, tls=None, timeout=2.0):
    """one GET; returns (status, headers) or raises OSError"""
    if tls is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls)
    try:
        headers = {}
        if host is not None:
            headers["Host"] = host
        if cookie is not None:
            headers["Cookie"] = "_pomerium=" + cookie
        conn.request("GET", path, headers=headers)
        res = conn.getresponse()
        res.read()
        return res.status, {k.lower(): v for k, v in res.getheaders()}
    finally:
        conn.close()


def port_in_use(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ---- the cluster ---------------------------------------------------------------------------

class Cluster:
    def __init__(self, args):
        self.args = args
        self.base = args.port_base
        self.port = {name: self.base + off for name, off in PORTS.items()}
        for i in range(args.cold_runs):
            self.port["authz-cold-%d" % (i + 1)] = self.base + COLD_PORT + i
        self.run_dir = args.run_dir
        self.bin = os.path.join(args.out_dir, "bin")
        self.tools = os.path.join(args.out_dir, "bench")
        self.certs = os.path.join(self.run_dir, "certs")
        self.logs = os.path.join(self.run_dir, "logs")
        self.config = os.path.join(self.run_dir, "config.yaml")
        self.services = {}
        self.hot_cookie = None
        self.pool_file = os.path.join(self.run_dir, "secrets", "pool.cookies")
        self.mem_file = os.path.join(self.run_dir, "secrets", "memory.cookies")

    # -- preparation

    def check_prerequisites(self):
        for cmd in ("wrk", "nginx", "redis-server", "redis-cli", "openssl"):
            if shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
                raise BenchError("%s is not installed (scripts/install-deps.sh)" % cmd)
        for path in (os.path.join(self.bin, "portcullis-databroker"),
                     os.path.join(self.bin, "portcullis-authorize"),
                     os.path.join(self.tools, "b1_server"),
                     os.path.join(self.tools, "mint_sessions"),
                     os.path.join(self.tools, "cold_floor")):
            if not os.access(path, os.X_OK):
                raise BenchError("%s is missing: run make bench (or make bench-tools)" % path)
        for name, port in sorted(self.port.items(), key=lambda kv: kv[1]):
            if port_in_use(port):
                raise BenchError("port %d (for %s) is taken; set BENCH_PORT_BASE" % (port, name))

    def render(self, template, out, extra=None):
        subst = {
            "@RUN_DIR@": self.run_dir,
            "@NGINX_PORT@": str(self.port["nginx"]),
            "@B1_PORT@": str(self.port["b1"]),
            "@UPSTREAM_PORT@": str(self.port["upstream"]),
            "@BROKER_PORT@": str(self.port["databroker"]),
            "@REDIS_PORT@": str(self.port["redis"]),
            "@AUTHZ_PORT@": str(self.port["authz"]),
            # as root nginx's workers would become nobody, who may not read the run dir
            "@USER_LINE@": "user root root;" if os.getuid() == 0 else "# nginx runs as its user",
        }
        with open(template) as f:
            text = f.read()
        for key, value in subst.items():
            text = text.replace(key, value)
        with open(out, "w") as f:
            f.write(text)

    def prepare(self):
        for d in ("logs", "secrets", "redis", "nginx/tmp"):
            os.makedirs(os.path.join(self.run_dir, d), exist_ok=True)
        os.chmod(os.path.join(self.run_dir, "secrets"), 0o700)
        subprocess.run([os.path.join(REPO, "deploy/certs/make-certs.sh"), self.certs]
                       + NGINX_HOSTS, check=True, stdout=subprocess.DEVNULL)
        for name in ("cookie_secret", "shared_secret"):
            path = os.path.join(self.run_dir, "secrets", name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(base64.b64encode(os.urandom(32)).decode())
        self.render(os.path.join(HERE, "config.yaml.template"), self.config)
        shutil.copy(os.path.join(REPO, "deploy/nginx/proxy.conf"),
                    os.path.join(self.run_dir, "nginx/proxy.conf"))
        self.render(os.path.join(HERE, "nginx.conf.template"),
                    os.path.join(self.run_dir, "nginx/nginx.conf"))

        res = subprocess.run(["nginx", "-t", "-q", "-p", os.path.join(self.run_dir, "nginx"),
                              "-c", os.path.join(self.run_dir, "nginx/nginx.conf"),
                              "-e", "stderr"], env=self.env(), capture_output=True, text=True)
        if res.returncode != 0:
            raise BenchError("nginx -t refuses the bench config:\n" + res.stderr)
        res = subprocess.run([os.path.join(self.bin, "portcullis-authorize"), "-c", self.config,
                              "--check"], env=self.daemon_env("authorize", "authz"),
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise BenchError("portcullis-authorize --check refuses the bench config:\n"
                             + res.stdout + res.stderr)

    # -- processes

    def env(self, **extra):
        env = dict(os.environ)
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
        env.update(extra)
        return env

    def daemon_env(self, cert, port_name, **extra):
        return self.env(ADDRESS="127.0.0.1:%d" % self.port[port_name],
                        CERTIFICATE_FILE=os.path.join(self.certs, cert + ".pem"),
                        CERTIFICATE_KEY_FILE=os.path.join(self.certs, cert + "-key.pem"),
                        **extra)

    def launch(self, name, argv, check, what, env=None):
        """
        Starts a service and waits until `check` passes. Our ports lie in the kernel's
        ephemeral range, so a client connection (wrk's, nginx's) may hold one for a moment: a
        service that could not listen is started again a few times.
        """
        log_path = os.path.join(self.logs, name + ".log")
        for attempt in range(LISTEN_RETRIES + 1):
            svc = Service(name, argv, env or self.env(), log_path, self.run_dir)
            self.services[name] = svc
            if self.wait_for(svc, check, what, retry_busy=attempt < LISTEN_RETRIES):
                return svc
            svc.stop()
            if attempt == 0:
                log("%s: port %d busy (TIME_WAIT of an earlier run?), retrying for a minute"
                    % (name, self.port[name]))
            time.sleep(1)
        raise BenchError("unreachable")

    def wait_for(self, svc, check, what, retry_busy=False):
        """True once check passes; False when the service exited because its port was busy"""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if check():
                    return True
            except OSError:
                pass
            if not svc.alive():
                tail = svc.tail()
                if retry_busy and "in use" in tail.splitlines()[-1]:
                    return False
                raise BenchError("%s exited during start-up:\n%s" % (svc.name, tail))
            if time.monotonic() > deadline:
                raise BenchError("%s: %s not seen within %d s:\n%s"
                                 % (svc.name, what, START_TIMEOUT_S, svc.tail()))
            time.sleep(0.1)

    def broker_tls(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.certs, "ca.pem"))
        ctx.check_hostname = False
        ctx.load_cert_chain(os.path.join(self.certs, "authorize.pem"),
                            os.path.join(self.certs, "authorize-key.pem"))
        return ctx

    def start_redis(self):
        def ping():
            with socket.create_connection(("127.0.0.1", self.port["redis"]), 1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

        self.launch("redis", ["redis-server", "--bind", "127.0.0.1",
                              "--port", str(self.port["redis"]),
                              "--dir", os.path.join(self.run_dir, "redis"),
                              "--save", "", "--appendonly", "no", "--daemonize", "no",
                              "--logfile", "", "--protected-mode", "yes"], ping, "PONG")

    def start_databroker(self):
        tls = self.broker_tls()
        self.launch("databroker", [os.path.join(self.bin, "portcullis-databroker"),
                                   "-c", self.config],
                    lambda: probe(self.port["databroker"], "/readyz", tls=tls)[0] == 200,
                    "/readyz 200", self.daemon_env("databroker", "databroker"))

    def mint(self, count, path):
        argv = [os.path.join(self.tools, "mint_sessions"), "-c", self.config, "-n", str(count),
                "-o", path, "-w", "128"]
        env = self.env(CERTIFICATE_FILE=os.path.join(self.certs, "authenticate.pem"),
                       CERTIFICATE_KEY_FILE=os.path.join(self.certs, "authenticate-key.pem"))
        res = subprocess.run(argv, env=env, capture_output=True, text=True)
        if res.returncode != 0:
            raise BenchError("mint_sessions failed:\n" + res.stdout + res.stderr)
        log(res.stderr.strip())

    def pool_record(self):
        """one stored session record, as the databroker serves it to authorize"""
        def cli(*argv):
            res = subprocess.run(["redis-cli", "-p", str(self.port["redis"])] + list(argv),
                                 capture_output=True, text=True, timeout=10)
            if res.returncode != 0:
                raise BenchError("redis-cli %s failed: %s" % (argv[0], res.stderr.strip()))
            return res.stdout

        keys = cli("--scan", "--pattern", "portcullis:rec:session:*").split()
        if not keys:
            raise BenchError("no session record in Redis to measure the cold floor with")
        return cli("GET", keys[0])

    def start_b1(self, name):
        self.launch(name, [os.path.join(self.tools, "b1_server"), str(self.port[name])],
                    lambda: probe(self.port[name], "/")[0] == 200, "200")

    def start_authorize(self, name, workers=None):
        extra = {} if workers is None else {"AUTHORIZE_WORKERS": str(workers)}
        # ready = the change stream answers, so the databroker is reachable
        return self.launch(name, [os.path.join(self.bin, "portcullis-authorize"),
                                  "-c", self.config],
                           lambda: probe(self.port[name], "/readyz")[0] == 200, "/readyz 200",
                           self.daemon_env("authorize", name, **extra))

    def start_nginx(self):
        nginx_dir = os.path.join(self.run_dir, "nginx")
        tls = insecure_tls()
        self.launch("nginx", ["nginx", "-p", nginx_dir, "-c",
                              os.path.join(nginx_dir, "nginx.conf"), "-e", "stderr"],
                    lambda: probe(self.port["nginx"], "/", host="b2.bench.localhost",
                                  tls=tls)[0] == 200, "B2 200")

    def start_all(self, sessions, pool):
        self.start_redis()
        self.start_databroker()

        # sessions before authorize starts, so their changes are history to its follower
        hot_file = os.path.join(self.run_dir, "secrets", "hot.cookie")
        self.mint(1, hot_file)
        with open(hot_file) as f:
            self.hot_cookie = f.read().strip()
        if pool > 0:
            self.mint(pool, self.pool_file)
            # the memory measurement fills a cache with the first `sessions` of the pool
            with open(self.pool_file) as src, open(self.mem_file, "w") as dst:
                os.chmod(self.mem_file, 0o600)
                for _ in range(sessions):
                    dst.write(src.readline())

        self.start_b1("b1")
        self.start_b1("upstream")
        self.start_authorize("authz")
        for n in (1, 2, 4):
            self.start_authorize("authz-w%d" % n, n)
        # everything listens before any load: our ports lie in the kernel's ephemeral range,
        # and after a load's connections one may stay taken for a minute (TIME_WAIT)
        for i in range(self.args.cold_runs):
            self.start_authorize("authz-cold-%d" % (i + 1))
        self.start_authorize("authz-mem")
        self.rss_start = rss_bytes(self.services["authz-mem"].pid)
        self.start_nginx()

    def stop_all(self):
        for name in reversed(list(self.services)):
            self.services[name].stop()
        self.services.clear()

    def first_pool_cookie(self):
        with open(self.pool_file) as f:
            return f.readline().strip()


# ---- scenarios -----------------------------------------------------------------------------

class Scenario:
    def __init__(self, name, what, port, path, procs, host=None, cookie=None, tls=False,
                 expect=200, before_run=None, preflight_port=None):
        self.name = name
        self.what = what
        self.port = port      # a key of PORTS
        self.path = path
        self.procs = procs    # labels of the processes whose CPU is counted
        self.services = {p: p for p in procs}  # label -> service name
        self.preflight_port = preflight_port or port
        self.host = host
        self.cookie = cookie  # None, "hot" or "pool"
        self.tls = tls
        self.expect = expect
        self.before_run = before_run


def verify_path(host):
    return "/verify?uri=https://%s/bench" % host


def scenarios(cluster):
    cold = iter(range(1, cluster.args.cold_runs + 1))

    def next_cold(sc):
        """each P3 run gets an authorize that has served nothing yet"""
        name = "authz-cold-%d" % next(cold)
        sc.port = name
        sc.services["authz"] = name

    return [
        Scenario("B1", "bare libh2o 200", "b1", "/", ["b1"]),
        Scenario("B2", "nginx -> upstream", "nginx", "/", ["nginx", "upstream"],
                 host="b2.bench.localhost", tls=True),
        Scenario("B3", "nginx auth_request B1 -> upstream", "nginx", "/",
                 ["nginx", "b1", "upstream"], host="b3.bench.localhost", tls=True),
        Scenario("P1", "/verify, cached session, allowed", "authz", verify_path(ROUTE_HOST),
                 ["authz"], cookie="hot"),
        Scenario("P2", "nginx auth_request authorize -> upstream", "nginx", "/",
                 ["nginx", "authz", "upstream"], host=ROUTE_HOST, cookie="hot", tls=True),
        # probed on P1's instance, so that the cold ones stay empty
        Scenario("P3", "/verify, cold session per request", "authz-cold-1",
                 verify_path(ROUTE_HOST), ["authz", "databroker", "redis"], cookie="pool",
                 before_run=next_cold, preflight_port="authz"),
        Scenario("P4-403", "/verify, denied by policy", "authz", verify_path(DENY_HOST),
                 ["authz"], cookie="hot", expect=403),
        Scenario("P4-401", "/verify, no session", "authz", verify_path(ROUTE_HOST), ["authz"],
                 expect=401),
        Scenario("P5-w1", "P1 with 1 worker", "authz-w1", verify_path(ROUTE_HOST), ["authz-w1"],
                 cookie="hot"),
        Scenario("P5-w2", "P1 with 2 workers", "authz-w2", verify_path(ROUTE_HOST), ["authz-w2"],
                 cookie="hot"),
        Scenario("P5-w4", "P1 with 4 workers", "authz-w4", verify_path(ROUTE_HOST), ["authz-w4"],
                 cookie="hot"),
    ]


def preflight(cluster, sc):
    """one request with the exact status expected; also puts the hot session in the cache"""
    cookie = cluster.first_pool_cookie() if sc.cookie == "pool" else {
        None: None, "hot": cluster.hot_cookie}[sc.cookie]
    try:
        status, headers = probe(cluster.port[sc.preflight_port], sc.path, host=sc.host,
                                cookie=cookie, tls=insecure_tls() if sc.tls else None)
    except OSError as e:
        raise BenchError("%s: the probe request failed: %s" % (sc.name, e))
    if status != sc.expect:
        raise BenchError("%s: the probe request got %d, expected %d" % (sc.name, status, sc.expect))
    if sc.name == "P1" and "x-pomerium-jwt-assertion" not in headers:
        raise BenchError("P1: no X-Pomerium-Jwt-Assertion in the answer (identity headers off?)")


def run_wrk(cluster, sc, conns, duration, strict, fill=False):
    """one wrk run; returns its record (the Lua summary plus CPU per process)"""
    out = os.path.join(cluster.run_dir, "wrk-summary.json")
    markers = [out + ".done.%d" % (i + 1) for i in range(WRK_THREADS)]
    for path in [out] + markers:
        if os.path.exists(path):
            os.unlink(path)
    env = cluster.env(BENCH_OUT=out, BENCH_THREADS=str(WRK_THREADS),
                      BENCH_CONNECTIONS=str(conns), BENCH_STRICT="1" if strict else "0",
                      BENCH_FILL="1" if fill else "0")
    for key in ("BENCH_HOST", "BENCH_COOKIE", "BENCH_COOKIE_FILE"):
        env.pop(key, None)
    if sc.host is not None:
        env["BENCH_HOST"] = sc.host
    if sc.cookie == "hot":
        env["BENCH_COOKIE"] = cluster.hot_cookie
    elif sc.cookie == "pool":
        env["BENCH_COOKIE_FILE"] = cluster.pool_file
    elif sc.cookie == "memory":
        env["BENCH_COOKIE_FILE"] = cluster.mem_file
    url = "%s://127.0.0.1:%d%s" % ("https" if sc.tls else "http", cluster.port[sc.port], sc.path)
    argv = ["wrk", "-t", str(WRK_THREADS), "-c", str(conns), "-d", "%ds" % duration,
            "--timeout", WRK_TIMEOUT, "-s", os.path.join(HERE, "wrk.lua"), url]

    svcs = [cluster.services[sc.services[p]] for p in sc.procs]
    before = [s.cpu_ticks() for s in svcs]
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    while fill and proc.poll() is None:
        if all(os.path.exists(m) for m in markers):
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.05)
    text = proc.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    after = [s.cpu_ticks() for s in svcs]
    if proc.returncode != 0 or not os.path.exists(out):
        raise BenchError("%s: wrk failed (exit %d):\n%s" % (sc.name, proc.returncode, text))
    with open(out) as f:
        rec = json.load(f)

    n = max(rec["requests"], 1)
    us_per_tick = 1e6 / CLK_TCK
    rec["scenario"] = sc.name
    rec["connections"] = conns
    rec["rps"] = rec["requests"] / (rec["duration_us"] / 1e6)
    rec["cpu_us_per_req"] = {label: (a - b) * us_per_tick / n
                             for label, b, a in zip(sc.procs, before, after)}
    rec["port"] = sc.port
    rec["wrk_cpu_us_per_req"] = (usage.ru_utime + usage.ru_stime) * 1e6 / n
    rec["problems"] = problems_of(sc, rec)
    rec["notes"] = notes_of(sc, rec)
    rec["error_count"] = error_count(sc, rec)
    return rec


def problems_of(sc, rec):
    """what makes a run count as broken: errors, or answers other than expected"""
    out = []
    e = rec["errors"]
    socket_errors = e["connect"] + e["read"] + e["write"] + e["timeout"]
    if rec["requests"] == 0:
        out.append("no request completed")
    if socket_errors and not closes_after_denial(sc, rec):
        out.append("socket errors %s" % {k: v for k, v in e.items() if k != "status" and v})
    if rec["strict"]:
        wrong = {k: v for k, v in rec["statuses"].items()
                 if (sc.expect == 200 and not k.startswith("2"))
                 or (sc.expect != 200 and k != str(sc.expect))}
        if wrong:
            out.append("unexpected statuses %s" % wrong)
    elif sc.expect == 200 and e["status"]:
        out.append("%d answers >= 400" % e["status"])
    elif sc.expect != 200 and e["status"] != rec["requests"]:
        out.append("%d of %d answers < 400" % (rec["requests"] - e["status"], rec["requests"]))
    return out


def closes_after_denial(sc, rec):
    """
    A denial answered without Content-Length ends its body by closing the connection, which wrk
    counts as a read error per answer. The answers are right (their statuses are checked), the
    transport is merely slower: a note, not a breakage, for the scenarios that expect a denial.
    """
    e = rec["errors"]
    return (sc.expect != 200 and e["connect"] + e["write"] + e["timeout"] == 0
            and e["read"] <= rec["requests"] + rec["connections"])


def error_count(sc, rec):
    """errors of a run, and for the allowed scenarios every answer >= 400 too"""
    e = rec["errors"]
    n = e["connect"] + e["write"] + e["timeout"]
    if not closes_after_denial(sc, rec):
        n += e["read"]
    if sc.expect == 200:
        n += e["status"]
        if rec["strict"]:
            n += sum(v for k, v in rec["statuses"].items() if not k.startswith("2")
                     and int(k) < 400)
    return n


def notes_of(sc, rec):
    """what qualifies a run's numbers without breaking it"""
    out = []
    if sc.cookie == "pool" and rec["wraps"]:
        out.append("cookie pool wrapped %d times: later requests hit the cache" % rec["wraps"])
    if rec["errors"]["read"] and closes_after_denial(sc, rec):
        out.append("authorize closed the connection after each answer: wrk counts a read error")
    return out


# ---- memory --------------------------------------------------------------------------------

def measure_memory(cluster, sessions, strict):
    svc = cluster.services["authz-mem"]
    rss_start = cluster.rss_start
    sc = Scenario("MEM", "fill the cache", "authz-mem", verify_path(ROUTE_HOST), ["authz-mem"],
                  cookie="memory")
    rec = run_wrk(cluster, sc, 64, FILL_LIMIT_S, True, fill=True)
    time.sleep(0.5)
    rss_full = rss_bytes(svc.pid)
    ok = sum(v for k, v in rec["statuses"].items() if k == "200")
    cluster.services.pop("authz-mem").stop()
    result = {
        "sessions": sessions,
        "answered_200": ok,
        "rss_start_bytes": rss_start,
        "rss_full_bytes": rss_full,
        "bytes_per_session": (rss_full - rss_start) / sessions,
        "fill_seconds": rec["duration_us"] / 1e6,
        "problems": list(rec["problems"]),
    }
    if ok < sessions:
        result["problems"].append("only %d of %d sessions answered 200" % (ok, sessions))
    return result


# ---- the cold floor ------------------------------------------------------------------------

def measure_floor(cluster, iterations):
    """
    The two library calls a cold /verify adds to a cached one (parse the record, sign the
    assertion), timed by bench/cold_floor on one thread of the otherwise idle machine.
    """
    path = os.path.join(cluster.run_dir, "floor-record.json")
    with open(path, "w") as f:
        f.write(cluster.pool_record())
    argv = [os.path.join(cluster.tools, "cold_floor"), "-c", cluster.config, "-r", path,
            "-a", ROUTE_HOST, "-n", str(iterations)]
    res = subprocess.run(argv, env=cluster.env(), capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise BenchError("cold_floor failed:\n" + res.stdout + res.stderr)
    return json.loads(res.stdout)


def p3_ceilings(rows, floor, cores):
    """
    What P3 could reach if a cold request cost only the sum of parts it cannot do without, each
    as measured: the client (wrk's CPU per request for P1's static request, less than P3's
    rotating one), everything a cached /verify costs (authorize in P1), the record's parse and
    the assertion's signature (cold_floor), and the databroker's and Redis's share per request
    at their cheapest in any P3 run (the largest batches). Authorize's fetch client, its TLS and
    the kernel's loopback work for it are left out, so real cold requests cost more: the
    ceiling is an upper bound for P3 on this machine.
    """
    def row(name, conns):
        return next((r for r in rows if r["scenario"] == name and r["connections"] == conns),
                    None)

    out = []
    p3_rows = [r for r in rows if r["scenario"] == "P3"]
    for conns in sorted({r["connections"] for r in rows}):
        p1, p3 = row("P1", conns), row("P3", conns)
        if floor is None or p1 is None or p3 is None or p1["rps"] == 0:
            continue
        parts = [("wrk", p1["wrk_cpu_us_per_req"]), ("authz", p1["cpu_us_per_req"]["authz"]),
                 ("parse", floor["parse_us"]), ("sign", floor["sign_us"])]
        for proc in ("databroker", "redis"):
            parts.append((proc, min(r["cpu_us_per_req"][proc] for r in p3_rows)))
        total = sum(v for _, v in parts)
        rps = cores * 1e6 / total
        out.append({"connections": conns, "parts_us": dict(parts), "total_us": total,
                    "rps": rps, "p3_rps": p3["rps"], "of_p1": rps / p1["rps"]})
    return out


# ---- report --------------------------------------------------------------------------------

def mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def summarize(runs, scs):
    """mean over the rounds of each (scenario, connections)"""
    rows = []
    for sc in scs:
        for conns in sorted({r["connections"] for r in runs}):
            rs = [r for r in runs if r["scenario"] == sc.name and r["connections"] == conns]
            if not rs:
                continue
            rows.append({
                "scenario": sc.name, "what": sc.what, "connections": conns, "runs": len(rs),
                "rps": mean([r["rps"] for r in rs]),
                "p50_ms": mean([r["latency_us"]["p50"] for r in rs]) / 1000,
                "p99_ms": mean([r["latency_us"]["p99"] for r in rs]) / 1000,
                "max_ms": max(r["latency_us"]["max"] for r in rs) / 1000,
                "errors": sum(r["error_count"] for r in rs),
                "wrk_cpu_us_per_req": mean([r["wrk_cpu_us_per_req"] for r in rs]),
                "cpu_us_per_req": {p: mean([r["cpu_us_per_req"][p] for r in rs])
                                   for p in sc.procs},
                "problems": sorted({p for r in rs for p in r["problems"]}),
                "notes": sorted({p for r in rs for p in r["notes"]}),
            })
    return rows


def targets(rows, memory):
    def row(name, conns):
        for r in rows:
            if r["scenario"] == name and r["connections"] == conns:
                return r
        return None

    out = []

    def ratio(label, a, b, key, limit, at_least):
        if a is None or b is None or b[key] == 0:
            return
        value = a[key] / b[key]
        ok = value >= limit if at_least else value <= limit
        out.append({"target": label, "value": value, "limit": limit,
                    "relation": ">=" if at_least else "<=", "met": ok})

    for conns in sorted({r["connections"] for r in rows}):
        ratio("P1/B1 req/s @%d" % conns, row("P1", conns), row("B1", conns), "rps", 0.8, True)
        ratio("P2/B3 req/s @%d" % conns, row("P2", conns), row("B3", conns), "rps", 0.9, True)
        ratio("P3/P1 req/s @%d" % conns, row("P3", conns), row("P1", conns), "rps", 0.25, True)
    if rows:
        c = max(r["connections"] for r in rows)
        ratio("P1/B1 p99 @%d" % c, row("P1", c), row("B1", c), "p99_ms", 1.5, False)
    p3 = [r for r in rows if r["scenario"] == "P3"]
    if p3:
        worst = max(r["max_ms"] for r in p3)
        out.append({"target": "P3 slowest request (ms)", "value": worst, "limit": P3_SLOW_MS,
                    "relation": "<=", "met": worst <= P3_SLOW_MS})
        errs = sum(r["errors"] for r in p3)
        out.append({"target": "P3 errors", "value": errs, "limit": 0, "relation": "<=",
                    "met": errs == 0})
    allowed_bad = sum(r["errors"] for r in rows if r["scenario"] not in ("P4-403", "P4-401"))
    out.append({"target": "errors or non-2xx in allowed scenarios", "value": allowed_bad,
                "limit": 0, "relation": "<=", "met": allowed_bad == 0})
    if memory is not None:
        out.append({"target": "bytes per cached session", "value": memory["bytes_per_session"],
                    "limit": MEMORY_TARGET_BYTES, "relation": "<=",
                    "met": memory["bytes_per_session"] <= MEMORY_TARGET_BYTES})
    return out


def format_table(rows, tgts, memory, meta, ceilings):
    lines = []
    lines.append("Portcullis benchmark %s, %s, %d cores, %.1f GiB, wrk -t%d, %d s x %d rounds"
                 % (meta["date"], meta["build"], meta["cores"], meta["mem_gib"], WRK_THREADS,
                    meta["duration_s"], meta["rounds"]))
    head = "%-7s %5s %9s %8s %8s %8s %6s  %s" % ("scen", "conns", "req/s", "p50 ms", "p99 ms",
                                                  "max ms", "errors", "CPU us/req per process")
    lines.append(head)
    lines.append("-" * len(head))
    for r in rows:
        cpu = " ".join("%s=%.1f" % (p, v) for p, v in r["cpu_us_per_req"].items())
        lines.append("%-7s %5d %9.0f %8.2f %8.2f %8.2f %6d  %s%s%s"
                     % (r["scenario"], r["connections"], r["rps"], r["p50_ms"], r["p99_ms"],
                        r["max_ms"], r["errors"], cpu,
                        ("  !! " + "; ".join(r["problems"])) if r["problems"] else "",
                        ("  (" + "; ".join(r["notes"]) + ")") if r["notes"] else ""))
    if memory is not None:
        lines.append("")
        lines.append("memory: authorize RSS %.1f MiB at start, %.1f MiB holding %d sessions: "
                     "%.0f bytes per session"
                     % (memory["rss_start_bytes"] / 2**20, memory["rss_full_bytes"] / 2**20,
                        memory["sessions"], memory["bytes_per_session"]))
    for c in ceilings:
        if c is ceilings[0]:
            lines.append("")
            lines.append("P3 ceiling (bench/README.md): the least CPU a cold request needs, "
                         "summed, on %d cores:" % meta["cores"])
        lines.append("  @%-3d %s = %.1f us" % (c["connections"], " + ".join(
            "%s %.1f" % kv for kv in c["parts_us"].items()), c["total_us"]))
        lines.append("       at most %.0f req/s = %.3f x P1 (P3 ran at %.0f)"
                     % (c["rps"], c["of_p1"], c["p3_rps"]))
    if meta["smoke"]:
        lines.append("")
        lines.append("smoke run: 1 s per scenario on a pool that wraps, so P3 mostly hits the "
                     "cache, and 1,000 sessions")
        lines.append("for the memory figure: it checks that every scenario works; its ratios "
                     "are no measurement")
    lines.append("")
    lines.append("targets:")
    for t in tgts:
        lines.append("  %-40s %10.3f %s %-6g %s" % (t["target"], t["value"], t["relation"],
                                                   t["limit"], "ok" if t["met"] else "MISSED"))
    return "\n".join(lines)


def machine_meta(args):
    meminfo = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            meminfo[k] = v.strip()
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = ""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cores": os.cpu_count(), "cpu": model,
        "mem_gib": int(meminfo.get("MemTotal", "0 kB").split()[0]) / 2**20,
        "kernel": platform.release(), "git": rev, "build": os.path.basename(args.out_dir),
        "duration_s": args.duration, "rounds": args.rounds, "connections": args.connections,
        "sessions": args.sessions, "pool": args.pool, "smoke": args.smoke,
    }


# ---- main ----------------------------------------------------------------------------------

def run(args, cluster):
    cluster.check_prerequisites()
    cluster.prepare()
    log("starting the cluster in %s (ports %d..%d)"
        % (cluster.run_dir, args.port_base, max(cluster.port.values())))
    # the pool only for what reads it: P3 and the memory measurement
    wanted = set(args.scenarios)
    needs_pool = args.serve or not wanted or bool(wanted & {"P3", "memory"})
    cluster.start_all(args.sessions, args.pool if needs_pool else 0)
    everything = scenarios(cluster)
    if [sc.name for sc in everything] != SCENARIO_NAMES:
        raise BenchError("SCENARIO_NAMES (what --scenarios accepts) differs from scenarios()")
    scs = [sc for sc in everything
           if not args.scenarios or sc.name.split("-")[0] in args.scenarios
           or sc.name in args.scenarios]
    for sc in scs:
        preflight(cluster, sc)
    if args.serve:
        serve(cluster)
        return None

    if args.warmup > 0:
        log("warm-up, %d s per scenario" % args.warmup)
        for sc in scs:
            if sc.cookie != "pool":
                run_wrk(cluster, sc, max(args.connections), args.warmup, False)

    runs = []
    for rnd in range(args.rounds):
        # odd rounds go backwards, so that no scenario always runs right after the same one
        order = scs if rnd % 2 == 0 else list(reversed(scs))
        for conns in args.connections:
            for sc in order:
                if sc.before_run is not None:
                    sc.before_run(sc)
                rec = run_wrk(cluster, sc, conns, args.duration, args.smoke)
                rec["round"] = rnd
                runs.append(rec)
                log("round %d %-7s c=%-3d %9.0f req/s p99 %.2f ms%s"
                    % (rnd + 1, sc.name, conns, rec["rps"], rec["latency_us"]["p99"] / 1000,
                       ("  !! " + "; ".join(rec["problems"])) if rec["problems"] else ""))

    memory = None
    if not args.scenarios or "memory" in args.scenarios:
        log("memory: filling a fresh authorize with %d sessions" % args.sessions)
        memory = measure_memory(cluster, args.sessions, args.smoke)
    floor = None
    if any(sc.name == "P3" for sc in scs):
        floor = measure_floor(cluster, 2000 if args.smoke else 20000)
        log("cold floor: parse %.2f us, sign %.2f us" % (floor["parse_us"], floor["sign_us"]))
    return scs, runs, memory, floor


def serve(cluster):
    """keeps the cluster up for profiling until a signal"""
    print("cluster up in %s; hot cookie in secrets/hot.cookie, pool in secrets/pool.cookies"
          % cluster.run_dir)
    for name, svc in sorted(cluster.services.items(), key=lambda kv: cluster.port.get(kv[0], 0)):
        print("  %-14s pid %-7d port %s" % (name, svc.pid, cluster.port.get(name, "-")))
    print("ctrl-c (or SIGTERM to pid %d) stops everything" % os.getpid(), flush=True)
    while all(svc.alive() for svc in cluster.services.values()):
        time.sleep(1)
    raise BenchError("a service exited")


# the names scenarios() builds, for checking --scenarios before anything starts
SCENARIO_NAMES = ["B1", "B2", "B3", "P1", "P2", "P3", "P4-403", "P4-401", "P5-w1", "P5-w2",
                  "P5-w4"]


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("%r is not a whole number of at least 1" % text)
    return value


def int_list(text):
    return [positive_int(part) for part in text.split(",")]


def scenario_list(text):
    """names as --scenarios takes them: a scenario, its group (P4, P5) or 'memory'"""
    names = [n.strip() for n in text.split(",")]
    groups = {n.split("-")[0] for n in SCENARIO_NAMES}
    for n in names:
        if n not in SCENARIO_NAMES and n not in groups and n != "memory":
            raise argparse.ArgumentTypeError("%r names no scenario (%s, P4, P5 or memory)"
                                             % (n, ", ".join(SCENARIO_NAMES)))
    return names


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out-dir", required=True, help="build directory (bin/ and bench/)")
    p.add_argument("--smoke", action="store_true",
                   help="1 s per scenario, 1,000 sessions, strict status checks (CI)")
    p.add_argument("--duration", type=positive_int, help="seconds per run (default 10; smoke 1)")
    p.add_argument("--rounds", type=positive_int, help="runs of each scenario per connection count "
                   "(default 2; smoke 1)")
    p.add_argument("--connections", type=int_list, help="comma-separated wrk -c values (default 16,64; "
                   "smoke 16)")
    p.add_argument("--pool", type=positive_int, help="sessions minted for P3's cold requests (default "
                   "300000, so that a 10 s run at 30,000 req/s never reuses one; smoke 1000)")
    p.add_argument("--sessions", type=positive_int, help="sessions the memory measurement caches, the "
                   "first of the pool (default 100000; "
                   "smoke 1000)")
    p.add_argument("--serve", action="store_true",
                   help="start the cluster, probe every scenario, then wait for ctrl-c "
                   "(for profiling)")
    p.add_argument("--scenarios", type=scenario_list, help="comma-separated scenarios to run (default all; "
                   "'P5' means all three P5 runs, 'memory' the memory measurement), e.g. B1,P1 "
                   "while tuning")
    p.add_argument("--json", help="where the results go (default bench/results/<date>.json; "
                   "smoke: $TMPDIR/portcullis-bench-smoke.json)")
    args = p.parse_args()
    args.out_dir = os.path.abspath(args.out_dir)
    def given_or(value, smoke, full):
        return value if value is not None else (smoke if args.smoke else full)

    args.duration = given_or(args.duration, 1, 10)
    args.rounds = given_or(args.rounds, 1, 2)
    args.connections = given_or(args.connections, [16], [16, 64])
    args.sessions = given_or(args.sessions, 1000, 100000)
    args.pool = max(given_or(args.pool, 1000, 300000), args.sessions)
    args.scenarios = args.scenarios or []
    args.warmup = 0 if args.smoke else 2
    args.cold_runs = args.rounds * len(args.connections)
    if args.cold_runs > COLD_MAX:
        p.error("at most %d P3 runs (rounds x connection counts)" % COLD_MAX)
    if min(args.connections) < WRK_THREADS or args.sessions < 2 * WRK_THREADS:
        p.error("need at least %d connections and %d sessions" % (WRK_THREADS, 2 * WRK_THREADS))
    try:
        args.port_base = int(os.environ.get("BENCH_PORT_BASE", "23500"))
    except ValueError:
        p.error("BENCH_PORT_BASE=%r is not a port number" % os.environ["BENCH_PORT_BASE"])
    if not 1024 <= args.port_base <= 65535 - COLD_PORT - COLD_MAX:
        p.error("BENCH_PORT_BASE out of range (1024..%d)" % (65535 - COLD_PORT - COLD_MAX))
    args.run_dir = os.environ.get("BENCH_RUN_DIR") or tempfile.mkdtemp(prefix="portcullis-bench-")
    os.makedirs(args.run_dir, exist_ok=True)
    args.run_dir = os.path.abspath(args.run_dir)
    return args


def main():
    args = parse_args()
    for signo in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signo, on_signal)
    cluster = Cluster(args)
    meta = machine_meta(args)
    failed = True
    outcome = None
    try:
        outcome = run(args, cluster)
        failed = False
    except BenchError as e:
        log("FAILED: %s" % e)
    except Interrupted as e:
        log("interrupted (%s)" % e)
        if args.serve:
            failed = False
            outcome = None
    finally:
        cluster.stop_all()
    if outcome is None and not failed:
        return 0
    if failed:
        log("logs kept in %s/logs" % cluster.run_dir)
        return 1

    scs, runs, memory, floor = outcome
    rows = summarize(runs, scs)
    tgts = targets(rows, memory)
    ceilings = p3_ceilings(rows, floor, meta["cores"])
    print(format_table(rows, tgts, memory, meta, ceilings), flush=True)

    result = {"meta": meta, "rows": rows, "targets": tgts, "memory": memory,
              "cold_floor": floor, "p3_ceiling": ceilings, "runs": runs}
    path = args.json
    if path is None:
        if args.smoke:
            # the run dir goes after a clean run; CI keeps nothing in the tree
            path = os.path.join(tempfile.gettempdir(), "portcullis-bench-smoke.json")
        else:
            os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
            path = os.path.join(HERE, "results",
                                meta["date"].replace(":", "").replace("T", "-") + ".json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    log("results in %s" % path)

    broken = [r for r in rows if r["problems"]]
    if memory is not None and memory["problems"]:
        broken.append(memory)
    if broken:
        for r in broken:
            log("BROKEN: %s: %s" % (r.get("scenario", "memory"), "; ".join(r["problems"])))
        log("logs kept in %s/logs" % cluster.run_dir)
        return 1
    if not os.environ.get("BENCH_RUN_DIR"):
        shutil.rmtree(cluster.run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
