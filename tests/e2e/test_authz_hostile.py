# SPDX-License-Identifier: MIT
"""End-to-end, issue #4 on the authorize and nginx side: return targets on the forward-auth
host, the handoff callbacks and sign-out; target encodings; the statuses /verify may answer;
CORS preflights; non-browser 401s; cookies; identity headers; the databroker gap."""

import os
import re
import signal
import threading
import time
import unittest
import urllib.parse

from harness import (ADMIN_HOST, ALICE, APP_HOST, AUTHN_HOST, BOB, FA_HOST, MALLORY,
                     PUBLIC_HOST, VERIFY_HOST, Browser, authorize_url, idp_visits, mint_sessions,
                     pid_of, port_of, public_url, raw_exchange, read_response, walk_until)

COOKIE = "_pomerium"
CORS_HOST = "cors.portcullis.localhost"
CORPUS = os.path.join(os.path.dirname(__file__), "..", "data", "openredirects.txt")
ROUTE_HOSTS = {VERIFY_HOST, ADMIN_HOST, APP_HOST, "seed.localhost", PUBLIC_HOST,
               "www.whitelisteddomain.tld", CORS_HOST}
VERIFY_STATUSES = {200, 400, 401, 403, 503}
ATTACKS = ["//evil.example/", "/\\evil.example", "/%09/evil.example", "/%0a/evil.example",
           "/./\\evil.example", "https:evil.example", "javascript:alert(1)",
           "/ok%0d%0aSet-Cookie:%20x=1", "https://evil.example/",
           "https://verify.portcullis.localhost.evil.example/",
           "https://evilverify.portcullis.localhost/", "https://app.localhost@evil.example/",
           "https://app.localhost%40evil.example/", "https://app.localhost%2F@evil.example/",
           "https://www.whitelisteddomain.tld.evil.example/", "https://xwww.whitelisteddomain.tld/"]


def corpus_values():
    """Every corpus line as a query value, both with only unsendable bytes escaped (so the one
    decode sees what the line means) and fully escaped; then the issue's own attacks, raw and
    escaped."""
    with open(CORPUS, encoding="utf-8", errors="surrogateescape") as f:
        lines = [line.rstrip("\n") for line in f]
    values = []
    for line in lines + ATTACKS:
        raw = "".join("%%%02X" % c if c <= 0x20 or c >= 0x7f or c == ord("#") else chr(c)
                      for c in line.encode("utf-8", "surrogateescape"))
        values.append(raw)
        values.append(urllib.parse.quote(line, safe="", errors="surrogateescape"))
    return values


VALUES = corpus_values() if os.path.exists(CORPUS) else []


def direct(host, path, headers=None, method="GET", instance="a"):
    """A request to authorize itself, as nginx forwards one for `host` (its Host header)."""
    h = {"Host": "%s:%d" % (host, port_of("nginx")), "X-Forwarded-Proto": "https"}
    h.update(headers or {})
    return Browser().request(method, authorize_url(instance, path), headers=h)


def assert_location_clean(test, r):
    loc = r.header("location") or ""
    test.assertTrue(all(0x21 <= ord(c) < 0x7f for c in loc), "raw byte in %r" % loc)
    for v in r.header_all("set-cookie"):
        test.assertFalse(v.startswith("x="), "a header made from input: %r" % v)
    return loc


def login(host, user, path="/"):
    b = Browser()
    r = b.follow(public_url(host, path), credentials=user)
    return b, r


class RedirectSafety(unittest.TestCase):
    def check_sign_in(self, value, r):
        """S(U): 400, a JSON 401 for a non-browser, or a 302 to the authenticate host's signed
        sign-in whose return target is a route host."""
        loc = assert_location_clean(self, r)
        if r.status == 400:
            return False
        self.assertEqual(r.status, 302, "%r: %d" % (value, r.status))
        u = urllib.parse.urlsplit(loc)
        self.assertEqual((u.scheme, u.hostname, u.path),
                         ("https", AUTHN_HOST, "/.pomerium/sign_in"), "%r -> %s" % (value, loc))
        target = urllib.parse.parse_qs(u.query)["pomerium_redirect_uri"][0]
        t = urllib.parse.urlsplit(target)
        self.assertEqual(t.scheme, "https", "%r -> %s" % (value, target))
        self.assertIn(t.hostname, ROUTE_HOSTS, "%r -> %s" % (value, target))
        self.assertTrue(all(0x21 <= ord(c) < 0x7f for c in target), repr(target))
        return True

    def test_open_redirect_corpus_through_forward_auth_sign_in(self):
        self.assertGreater(len(VALUES), 1000)
        accepted = 0
        for value in VALUES:
            accepted += self.check_sign_in(value, direct(FA_HOST, "/?uri=" + value))
        # the odd but valid spellings of route targets are accepted: see the next tests
        self.assertLess(accepted, len(VALUES))

    def test_issue_attacks_as_forward_auth_target_are_400(self):
        for value in ATTACKS:
            for v in (value, urllib.parse.quote(value, safe="")):
                r = direct(FA_HOST, "/?uri=" + v)
                self.assertEqual(r.status, 400, "%r -> %d %s" % (v, r.status, r.header("location")))

    def test_crlf_in_target_never_becomes_a_header(self):
        for host in (VERIFY_HOST, APP_HOST):
            target = public_url(host, "/ok%0d%0aSet-Cookie:%20x=1")
            r = direct(FA_HOST, "/?uri=" + target)
            self.assertEqual(r.status, 302)
            loc = assert_location_clean(self, r)
            self.assertNotIn("\r", urllib.parse.unquote(loc.split("pomerium_redirect_uri=")[0]))
            v = direct(host, "/verify?uri=" + target)
            self.assertEqual(v.status, 401)
            assert_location_clean(self, v)

    def test_mixed_case_route_host_and_explicit_port_are_route_targets(self):
        for target in ("https://WWW.WhiteListedDomain.TLD/x", "https://app.localhost:8443/",
                       public_url(VERIFY_HOST, "/p")):
            r = direct(FA_HOST, "/?uri=" + urllib.parse.quote(target, safe=""))
            self.assertTrue(self.check_sign_in(target, r), "%s refused" % target)

    def test_open_redirect_corpus_through_handoff_callbacks(self):
        """The handoff on the FA host and on a route host takes only a token authenticate
        minted; anything else is a 400 and never a redirect."""
        for value in VALUES[::3] + ATTACKS:
            for host in (FA_HOST, APP_HOST, VERIFY_HOST):
                r = direct(host, "/.pomerium/callback?pomerium_handoff=" + value)
                self.assertEqual(r.status, 400, "%s %r: %d" % (host, value, r.status))
                self.assertIsNone(r.header("location"))
                self.assertEqual(r.header_all("set-cookie"), [])
            # the seed's @authredirect path: a route host's callback URL given to the FA host
            r = direct(FA_HOST, "/?uri=" + urllib.parse.quote(
                public_url(APP_HOST, "/.pomerium/callback?pomerium_handoff=") + value, safe=""))
            self.assertEqual(r.status, 400, "%r: %d" % (value, r.status))

    def check_sign_out(self, host, value, r):
        loc = assert_location_clean(self, r)
        self.assertEqual(r.status, 302, "%s %r: %d" % (host, value, r.status))
        u = urllib.parse.urlsplit(loc)
        self.assertEqual((u.hostname, u.path), (AUTHN_HOST, "/.pomerium/sign_out"), loc)
        back = urllib.parse.parse_qs(u.query).get("pomerium_redirect_uri")
        if back is not None:
            t = urllib.parse.urlsplit(back[0])
            self.assertEqual(t.scheme, "https", back)
            self.assertIn(t.hostname, ROUTE_HOSTS, "%s %r -> %s" % (host, value, back))
        return back

    def test_open_redirect_corpus_through_sign_out(self):
        for value in VALUES + ATTACKS:
            for host in (VERIFY_HOST, FA_HOST):
                path = "/.pomerium/sign_out?pomerium_redirect_uri=" + value
                back = self.check_sign_out(host, value, direct(host, path))
                if host == VERIFY_HOST and back is not None:
                    t = urllib.parse.urlsplit(back[0])
                    self.assertTrue(t.hostname in ROUTE_HOSTS)

    def test_sign_out_with_a_hostile_host_header_falls_back_to_nothing_hostile(self):
        for authority in ("verify.portcullis.localhost:@evil.example",
                          "verify.portcullis.localhost:99999", "evil.example"):
            r = Browser().request("GET", authorize_url("a", "/.pomerium/sign_out"),
                                  headers={"Host": authority, "X-Forwarded-Proto": "https"})
            self.assertIn(r.status, (302, 400), authority)
            if r.status == 302:
                self.check_sign_out(authority, "", r)
        # and the route's own root is the fallback for an unusable target
        r = direct(VERIFY_HOST, "/.pomerium/sign_out?pomerium_redirect_uri=//evil.example/")
        back = self.check_sign_out(VERIFY_HOST, "", r)
        self.assertEqual(back, [public_url(VERIFY_HOST, "/")])


class TargetEncoding(unittest.TestCase):
    TARGETS = ["/asdf?", "/a%20b?q=1%2B2&r=%25", "/many?a=1&b=2&c=%26&d=&e",
               "/own?uri=mine&pomerium_redirect_uri=x&pomerium_signature=y"]

    def test_targets_come_back_byte_for_byte_after_login(self):
        for host in (VERIFY_HOST, APP_HOST):
            for path in self.TARGETS:
                target = public_url(host, path)
                b, r = login(host, ALICE, path)
                self.assertEqual(r.status, 200, "%s: %d" % (target, r.status))
                # the Location that ends the round trip, as sent (urljoin drops a bare "?")
                last = [h.header("location") for h in b.history if h.status == 302][-1]
                self.assertEqual(last, target, "landed elsewhere")
                seen = b.history[-1]
                self.assertEqual(urllib.parse.urlsplit(seen.url).hostname, host)

    def test_verify_with_escaped_and_raw_uri_agree(self):
        b, r = login(VERIFY_HOST, ALICE)
        self.assertEqual(r.status, 200)
        cookie = {"Cookie": b.cookie_header(VERIFY_HOST, "/")}
        for path in self.TARGETS:
            target = public_url(VERIFY_HOST, path)
            raw = direct(VERIFY_HOST, "/verify?uri=" + target, headers=cookie)
            escaped = direct(VERIFY_HOST, "/verify?uri=" + urllib.parse.quote(target, safe=""),
                             headers=cookie)
            self.assertEqual((raw.status, escaped.status), (200, 200), target)
            raw = direct(VERIFY_HOST, "/verify?uri=" + target)
            escaped = direct(VERIFY_HOST, "/verify?uri=" + urllib.parse.quote(target, safe=""))
            self.assertEqual((raw.status, escaped.status), (401, 401), target)
            self.assertEqual(raw.header("location"), escaped.header("location"))
            loc = urllib.parse.urlsplit(raw.header("location"))
            self.assertEqual(urllib.parse.parse_qs(loc.query, keep_blank_values=True)["uri"],
                             [target])

    def test_encoded_newlines_are_allowed_for_an_allowed_user(self):
        b, r = login(VERIFY_HOST, ALICE)
        for path in ("/random/%0A/path/", "/?q=testing%0A1234", "/x%0D%0Ay"):
            r = b.get(public_url(VERIFY_HOST, path))
            self.assertEqual(r.status, 200, "%s: %d" % (path, r.status))

    def test_refused_path_through_nginx_stays_a_400_without_retry_after(self):
        # nginx's auth_request makes a 400 of the subrequest a 500; the shipped config turns it
        # back into a 400, not the 503 "retry in a few seconds" meant for an outage
        b, r = login(VERIFY_HOST, ALICE)
        self.assertEqual(r.status, 200)
        for path in ("/a%2Fb", "/a%5Cb", "/a%00b"):
            r = b.get(public_url(VERIFY_HOST, path))
            self.assertEqual(r.status, 400, path)
            self.assertIsNone(r.header("retry-after"), path)

    def test_unparseable_target_is_a_logged_400(self):
        log = os.path.join(os.environ.get("PORTCULLIS_RUN_DIR", ""), "logs", "authorize-a.log")
        with open(log, encoding="utf-8", errors="replace") as f:
            before = sum(1 for line in f if "verify 400" in line)
        for bad in ("https%3A%2F%2F%5B", "https://verify.portcullis.localhost/%zz",
                    "https://verify.portcullis.localhost:0/", "http%3A//a%20b/", "%ff"):
            r = direct(VERIFY_HOST, "/verify?uri=" + bad)
            self.assertEqual(r.status, 400, bad)
        time.sleep(0.2)
        with open(log, encoding="utf-8", errors="replace") as f:
            after = sum(1 for line in f if "verify 400" in line)
        self.assertGreaterEqual(after - before, 5, "every refused target is logged")


class VerifyStatuses(unittest.TestCase):
    def test_verify_listener_answers_only_nginx_safe_statuses(self):
        cases = ["/verify", "/verify?", "/verify?uri=", "/verify?uri=%", "/verify?uri=nothing",
                 "/verify?uri=" + public_url(VERIFY_HOST, "/"),
                 "/verify?uri=" + public_url(PUBLIC_HOST, "/"),
                 "/verify?uri=https://nowhere.example/", "/verify?uri=ftp://x/",
                 "/verify?uri=" + public_url(APP_HOST, "/.pomerium/callback?pomerium_handoff=x"),
                 "/verify/extra", "/nothing", "/.pomerium/unknown", "/.well-known/nothing",
                 "/" + "a" * 5000]
        for path in cases:
            for method in ("GET", "HEAD", "POST", "OPTIONS", "PUT", "DELETE"):
                for host in ("127.0.0.1", VERIFY_HOST, FA_HOST):
                    r = direct(host, path, method=method)
                    self.assertIn(r.status, VERIFY_STATUSES, "%s %s %s" % (method, host, path))

    def test_declared_body_and_upgrade_through_nginx_answer_at_once(self):
        host = VERIFY_HOST
        port = port_of("nginx")
        for extra in (b"Content-Length: 77\r\n", b"Transfer-Encoding: chunked\r\n",
                      b"Connection: Upgrade\r\nUpgrade: websocket\r\n"):
            req = (b"POST /x HTTP/1.1\r\nHost: " + ("%s:%d" % (host, port)).encode() +
                   b"\r\nAccept: application/json\r\n" + extra + b"\r\n")
            sock, res, took = raw_exchange(port, req, tls_host=host)
            try:
                self.assertTrue(res.startswith(b"HTTP/1.1 401"), res[:80])
                self.assertLess(took, 2.0, "nginx must not wait for the body to ask /verify")
            finally:
                sock.close()

    def test_upgrade_request_gets_a_plain_answer_and_keeps_the_connection(self):
        target = public_url(PUBLIC_HOST, "/")
        for port, tls in ((port_of("authorize_a"), None), (port_of("nginx"), PUBLIC_HOST)):
            path = "/verify?uri=" + target if tls is None else "/"
            req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: Upgrade\r\n"
                   "Upgrade: websocket\r\n\r\n" % (path, PUBLIC_HOST, port_of("nginx"))).encode()
            sock, res, took = raw_exchange(port, req, tls_host=tls)
            try:
                self.assertTrue(res.startswith(b"HTTP/1.1 200"), res[:200])
                self.assertLess(took, 2.0)
                sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                              % (path, PUBLIC_HOST, port_of("nginx"))).encode())
                again = read_response(sock)
                self.assertTrue(again.startswith(b"HTTP/1.1 200"), again[:200])
            finally:
                sock.close()

    def test_direct_verify_with_a_declared_body_answers_once_it_arrives(self):
        """libh2o 2.2 reads a declared body before it calls any handler (docs/SECURITY.md);
        once the bytes are there the answer is normal and the connection stays usable."""
        target = public_url(PUBLIC_HOST, "/")
        for extra, body in ((b"Content-Length: 77\r\n", b"x" * 77),
                            (b"Transfer-Encoding: chunked\r\n", b"4\r\nabcd\r\n0\r\n\r\n")):
            req = (b"GET /verify?uri=" + target.encode() + b" HTTP/1.1\r\nHost: a\r\n" + extra +
                   b"\r\n" + body)
            sock, res, took = raw_exchange(port_of("authorize_a"), req)
            try:
                self.assertTrue(res.startswith(b"HTTP/1.1 200"), res[:200])
                sock.sendall(b"GET /verify?uri=" + target.encode() +
                             b" HTTP/1.1\r\nHost: a\r\n\r\n")
                self.assertTrue(read_response(sock).startswith(b"HTTP/1.1 200"))
            finally:
                sock.close()

    def test_cors_preflight_only_on_its_route_and_only_as_a_preflight(self):
        pre = {"Origin": "https://other.example", "Access-Control-Request-Method": "PUT"}
        uri = "/verify?uri=" + public_url(CORS_HOST, "/api")
        r = direct(CORS_HOST, uri, headers=pre, method="OPTIONS")
        self.assertEqual(r.status, 200)
        self.assertEqual([k for k, _ in r.headers if k.startswith("x-pomerium")], [])
        self.assertEqual(r.header_all("set-cookie"), [])
        # as nginx forwards it: a GET subrequest that names the original method
        r = direct(CORS_HOST, uri, headers=dict(pre, **{"X-Original-Method": "OPTIONS"}))
        self.assertEqual(r.status, 200)
        for headers, method in (({"Origin": "https://other.example"}, "OPTIONS"),
                                ({"Access-Control-Request-Method": "PUT"}, "OPTIONS"),
                                ({}, "OPTIONS"), (pre, "GET"), (pre, "POST")):
            r = direct(CORS_HOST, uri, headers=headers, method=method)
            self.assertEqual(r.status, 401, "%s %s" % (method, headers))
        r = direct(VERIFY_HOST, "/verify?uri=" + public_url(VERIFY_HOST, "/api"), headers=pre,
                   method="OPTIONS")
        self.assertEqual(r.status, 401, "no cors_allow_preflight on this route")

    def test_non_browser_without_a_valid_session_gets_a_json_401_never_a_redirect(self):
        b, r = login(VERIFY_HOST, ALICE)
        cookie = b.find_cookie(COOKIE)
        stale = cookie.value[:12] + ("A" if cookie.value[12] != "A" else "B") + cookie.value[13:]
        for headers in ({"Accept": "application/json"}, {"X-Requested-With": "XMLHttpRequest"},
                        {"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"}):
            for jar in ("", "%s=%s" % (COOKIE, stale)):
                h = dict(headers, Cookie=jar) if jar else dict(headers)
                r = direct(VERIFY_HOST, "/verify?uri=" + public_url(VERIFY_HOST, "/api"),
                           headers=dict(h, **{"X-Original-Method": "POST"}))
                self.assertEqual(r.status, 401)
                self.assertIn("json", r.header("content-type"))
                self.assertEqual(r.json(), {"error": "unauthenticated"})
                # through nginx: a POST, an XHR or a fetch gets the 401 as it is
                nb = Browser()
                r = nb.request("POST", public_url(VERIFY_HOST, "/api"), headers=h, body=b"{}")
                self.assertEqual(r.status, 401, headers)
                self.assertIsNone(r.header("location"))
                self.assertEqual(r.json(), {"error": "unauthenticated"})
        # a fetch() GET is no navigation either; a browser's own navigation is
        r = Browser().get(public_url(VERIFY_HOST, "/api"), headers={"Sec-Fetch-Mode": "cors"})
        self.assertEqual(r.status, 401)
        r = Browser().get(public_url(VERIFY_HOST, "/api"), headers={"Sec-Fetch-Mode": "navigate"})
        self.assertEqual(r.status, 302)
        r = Browser().request("HEAD", public_url(VERIFY_HOST, "/api"))
        self.assertEqual(r.status, 302)

    def test_logged_in_but_denied_is_403_after_one_provider_round_trip(self):
        for host, user in ((VERIFY_HOST, MALLORY), (ADMIN_HOST, BOB), (APP_HOST, MALLORY)):
            b, r = login(host, user, "/denied")
            self.assertEqual(r.status, 403, "%s %s" % (host, user["login"]))
            self.assertEqual(idp_visits(b.history), 1)
            self.assertNotIn(401, [h.status for h in b.history])
            again = b.get(public_url(host, "/denied"))
            self.assertEqual(again.status, 403)
            v = direct(host, "/verify?uri=" + public_url(host, "/denied"),
                       headers={"Cookie": b.cookie_header(host, "/")})
            self.assertEqual(v.status, 403)


class CookiesAndHeaders(unittest.TestCase):
    def test_verify_emits_at_most_one_set_cookie_and_small_cookies(self):
        sizes = set()
        for user in (ALICE, BOB):
            b, r = login(VERIFY_HOST, user)
            self.assertEqual(r.status, 200)
            for h in b.history:
                if urllib.parse.urlsplit(h.url).port != port_of("idp"):
                    self.assertLessEqual(len(h.header_all("set-cookie")), 2, h)
            cookie = b.find_cookie(COOKIE)
            self.assertLess(len(cookie.value), 200)
            sizes.add(len(cookie.value))
            jar = b.cookie_header(VERIFY_HOST, "/")
            for c in ("", jar, jar + "; " + jar, COOKIE + "=garbage"):
                for path in ("/", "/.pomerium/callback?pomerium_handoff=x"):
                    v = direct(VERIFY_HOST, "/verify?uri=" + public_url(VERIFY_HOST, path),
                               headers={"Cookie": c} if c else None)
                    self.assertLessEqual(len(v.header_all("set-cookie")), 1, (c, path))
        self.assertEqual(len(sizes), 1, "the cookie's size does not depend on claims or groups")
        # the host-only handoff through auth_request (seed-style): exactly one Set-Cookie
        b = Browser()
        url, r = walk_until(b, public_url(APP_HOST, "/one"), credentials=ALICE,
                            stop=lambda u: "/.pomerium/callback" in u
                            and urllib.parse.urlsplit(u).hostname == APP_HOST)
        self.assertIsNone(r)
        v = direct(APP_HOST, "/verify?uri=" + url)
        self.assertEqual(v.status, 401)
        self.assertEqual(len(v.header_all("set-cookie")), 1)
        self.assertEqual(v.header("location"), public_url(APP_HOST, "/one"))

    FORGED = {"X-Pomerium-Jwt-Assertion": "forged.jwt.value",
              "X-Pomerium-Claim-Email": "forged@evil.example",
              "x-pomerium-claim-email": "forged2@evil.example",
              "X_Pomerium_Claim_Email": "forged3@evil.example",
              "X-Pomerium-Claim-Groups": "forged-admins"}

    def app_saw(self, b, host):
        r = b.get(public_url(host, "/headers.json"),
                  headers=dict(self.FORGED, Accept="application/json"))
        self.assertEqual(r.status, 200)
        self.assertNotIn("forged", r.text().split('"headers"', 1)[0])
        return {k.lower(): v for k, v in r.json()["headers"]}, r

    def test_client_identity_headers_never_reach_the_app_or_the_response(self):
        b, r = login(VERIFY_HOST, ALICE)
        seen, r = self.app_saw(b, VERIFY_HOST)
        self.assertEqual(seen.get("x-pomerium-claim-email"), "alice@example.com")
        self.assertNotIn("forged", seen.get("x-pomerium-jwt-assertion", ""))
        self.assertNotIn("x_pomerium_claim_email", seen)
        self.assertNotIn("forged", seen.get("x-pomerium-claim-groups", ""))
        for k, v in r.headers:
            self.assertNotIn("forged", v, k)
        seen, r = self.app_saw(Browser(), PUBLIC_HOST)
        for k, v in seen.items():
            self.assertFalse(k.startswith("x-pomerium") or k.startswith("x_pomerium"), k)
        # /verify itself never echoes them
        v = direct(VERIFY_HOST, "/verify?uri=" + public_url(VERIFY_HOST, "/"),
                   headers=dict(self.FORGED, Cookie=b.cookie_header(VERIFY_HOST, "/")))
        self.assertEqual(v.status, 200)
        for k, val in v.headers:
            self.assertNotIn("forged", val, k)

    def test_client_x_original_url_cannot_change_the_authorized_url(self):
        b, r = login(VERIFY_HOST, BOB)
        jar = {"Cookie": b.cookie_header(ADMIN_HOST, "/")}
        # bob may use verify, not admin: the header names a URL that would decide otherwise
        r = direct(ADMIN_HOST, "/verify?uri=" + public_url(ADMIN_HOST, "/"),
                   headers=dict(jar, **{"X-Original-URL": public_url(VERIFY_HOST, "/")}))
        self.assertEqual(r.status, 403)
        r = direct(VERIFY_HOST, "/verify?uri=" + public_url(VERIFY_HOST, "/"),
                   headers={"X-Original-URL": public_url(PUBLIC_HOST, "/")})
        self.assertEqual(r.status, 401)
        # through nginx the client's header is replaced, whatever it says
        r = b.get(public_url(ADMIN_HOST, "/"),
                  headers={"X-Original-URL": public_url(VERIFY_HOST, "/")})
        self.assertEqual(r.status, 403)
        r = Browser().get(public_url(VERIFY_HOST, "/"),
                          headers={"X-Original-URL": public_url(PUBLIC_HOST, "/")})
        self.assertEqual(r.status, 302)


class DatabrokerGap(unittest.TestCase):
    def test_concurrent_uncached_reads_each_get_their_own_identity(self):
        """Uncached sessions asked for at once go to the databroker in shared batch reads, and
        asks for one session share one read: every answer must still carry its own identity."""
        target = public_url(VERIFY_HOST, "/batch")
        cookies = {}
        for who in (ALICE, BOB):
            b = Browser()
            hops = []
            _, r = walk_until(b, target, credentials=who,
                              stop=lambda u: hops.append(u) is None and len(hops) > 1
                              and u == target)
            self.assertIsNone(r, "stopped before the last hop: no instance has the session")
            cookies[who["login"]] = b.cookie_header(VERIFY_HOST, "/")
        asks = [login for login in cookies for _ in range(12)]
        results = [None] * len(asks)

        def ask(i):
            r = direct(VERIFY_HOST, "/verify?uri=" + target,
                       headers={"Cookie": cookies[asks[i]]}, instance="b")
            results[i] = (r.status, r.header("x-pomerium-claim-email"))

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(asks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(results, [(200, login) for login in asks])

    def verify_all(self, cookies, threads=20):
        """/verify for each cookie at once on instance b: [(status, email header)]"""
        target = public_url(VERIFY_HOST, "/many")
        results = [None] * len(cookies)
        todo = list(range(len(cookies)))

        def work():
            while todo:
                i = todo.pop()
                r = direct(VERIFY_HOST, "/verify?uri=" + target, instance="b",
                           headers={"Cookie": COOKIE + "=" + cookies[i]})
                results[i] = (r.status, r.header("x-pomerium-claim-email"))

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(60)
        return results

    def test_a_burst_of_large_uncached_sessions_all_gets_through(self):
        # 150 KB records: 7 of them pass the 1 MiB that batch answers were once capped at. While
        # the databroker is held, the first asks fill the batches in flight and the rest pile up
        # into one large batch sent when it answers.
        cookies = mint_sessions("-n", "60", "-p", "150000")
        results = []
        pid = pid_of("databroker")
        os.kill(pid, signal.SIGSTOP)
        try:
            asker = threading.Thread(target=lambda: results.extend(self.verify_all(cookies, 30)))
            asker.start()
            time.sleep(0.5)  # under the 1 s connect timeout, so the held reads do not fail
        finally:
            os.kill(pid, signal.SIGCONT)
        asker.join(60)
        self.assertEqual(results, [(200, "user%d@example.com" % i) for i in range(len(cookies))])

    def test_a_session_id_the_databroker_refuses_fails_only_its_own_request(self):
        # a cookie that opens but names an id outside the databroker's alphabet
        bad = mint_sessions("-u", "bad~id")
        cookies = mint_sessions("-n", "20")
        results = self.verify_all(bad * 5 + cookies)
        self.assertEqual(results[:5], [(401, None)] * 5)
        self.assertEqual(results[5:], [(200, "user%d@example.com" % i) for i in range(20)])

    def test_uncached_session_while_the_databroker_is_away_is_503_with_retry_after(self):
        target = public_url(VERIFY_HOST, "/gap")
        b = Browser()
        # log in up to the last hop: the session exists but no authorize instance holds it yet
        hops = []
        url, r = walk_until(b, target, credentials=ALICE,
                            stop=lambda u: hops.append(u) is None and len(hops) > 1
                            and u == target)
        self.assertIsNone(r)
        pid = pid_of("databroker")
        os.kill(pid, signal.SIGSTOP)
        try:
            r = b.get(target)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(r.status, 503, r.text()[:200])
        self.assertEqual(r.header("retry-after"), "5")
        self.assertNotIn("location", dict(r.headers))
        # and once it is back, the same cookie works
        r = b.get(target)
        for _ in range(20):
            if r.status == 200:
                break
            time.sleep(0.5)
            r = b.get(target)
        self.assertEqual(r.status, 200)


if __name__ == "__main__":
    unittest.main()
