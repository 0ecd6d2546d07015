# SPDX-License-Identifier: MIT
"""End-to-end: the browser flow through the real nginx, daemons, Redis and OpenID provider."""

import json
import time
import unittest
import urllib.parse

from harness import (ADMIN_HOST, ALICE, APP_HOST, AUTHN_HOST, BOB, COOKIE_DOMAIN, FA_HOST,
                     MALLORY, PUBLIC_HOST, SEED_HOST, VERIFY_HOST, Browser, authorize_url,
                     hosts_visited, idp_visits, jwt_parts, public_url, verify_es256, wait_until)

COOKIE = "_pomerium"


def app_headers(browser, host):
    """What the sample app behind `host` received on the last hop, as a lower-case dict."""
    r = browser.get(public_url(host, "/headers.json"), headers={"Accept": "application/json"})
    if r.status != 200:
        raise AssertionError("sample app answered %d: %s" % (r.status, r.text()[:200]))
    return header_dict(r.json())


def header_dict(doc):
    """The sample app lists headers as [name, value] pairs in arrival order."""
    return {name.lower(): value for name, value in doc["headers"]}


def login(host, user, path="/"):
    b = Browser()
    r = b.follow(public_url(host, path), credentials=user)
    return b, r


class LoginFlow(unittest.TestCase):
    def test_allowed_user_reaches_app_with_verifiable_assertion(self):
        target = public_url(VERIFY_HOST, "/docs?x=1&y=2")
        b = Browser()
        r = b.follow(target, credentials=ALICE)

        self.assertEqual(r.status, 200, r.text()[:300])
        self.assertEqual(r.url, target, "the login round trip must land on the URL asked for")
        self.assertEqual(idp_visits(b.history), 1)
        cookie = b.find_cookie(COOKIE)
        self.assertIsNotNone(cookie)
        self.assertLess(len(cookie.value), 200)

        seen = app_headers(b, VERIFY_HOST)
        token = seen.get("x-pomerium-jwt-assertion")
        self.assertTrue(token, "the app must receive the signed identity assertion")
        self.assertEqual(seen.get("x-pomerium-claim-email"), "alice@example.com")

        header, claims, _ = jwt_parts(token)
        self.assertEqual(header["alg"], "ES256")
        jwks = b.get(public_url(FA_HOST, "/.well-known/pomerium/jwks.json"),
                     headers={"Accept": "application/json"}).json()
        keys = [k for k in jwks["keys"] if k.get("kid") == header["kid"]]
        self.assertEqual(len(keys), 1, "the assertion's kid must be in the JWKS")
        self.assertNotIn("d", keys[0])
        self.assertTrue(verify_es256(token, keys[0]), "assertion signature must verify")
        self.assertFalse(verify_es256(token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"),
                                      keys[0]), "a tampered signature must not verify")
        self.assertEqual(claims["email"], "alice@example.com")
        self.assertEqual(claims["aud"], VERIFY_HOST)
        self.assertEqual(claims["iss"], AUTHN_HOST)
        self.assertIn("admins", claims["groups"])
        self.assertLessEqual(claims["exp"] - claims["iat"], 300)
        self.assertGreater(claims["exp"], time.time())

    def test_denied_user_gets_403_without_a_loop(self):
        b, r = login(VERIFY_HOST, MALLORY, "/private")
        self.assertEqual(r.status, 403, r.text()[:300])
        self.assertEqual(idp_visits(b.history), 1, "a denied user sees one provider round trip")
        # and staying denied: the next request is a 403 at once, not a new login
        again = b.get(public_url(VERIFY_HOST, "/private"))
        self.assertEqual(again.status, 403)

    def test_user_allowed_by_allowed_users_only(self):
        b, r = login(ADMIN_HOST, BOB)
        self.assertEqual(r.status, 403)
        b, r = login(ADMIN_HOST, ALICE)
        self.assertEqual(r.status, 200)

    def test_tampered_cookie_is_refused_and_a_fresh_login_works(self):
        b, r = login(VERIFY_HOST, ALICE)
        self.assertEqual(r.status, 200)
        cookie = b.find_cookie(COOKIE)
        v = cookie.value
        cookie.value = v[:10] + ("A" if v[10] != "A" else "B") + v[11:]

        r = b.get(public_url(VERIFY_HOST, "/again"))
        self.assertEqual(r.status, 302)
        self.assertTrue(r.header("location").startswith(public_url(FA_HOST, "/?uri=")),
                        r.header("location"))

        direct = b.get(authorize_url("a", "/verify?uri=" + public_url(VERIFY_HOST, "/again")))
        self.assertEqual(direct.status, 401)

        r = b.follow(public_url(VERIFY_HOST, "/again"), credentials=ALICE)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.url, public_url(VERIFY_HOST, "/again"))

    def test_second_route_host_reuses_the_session(self):
        b, r = login(VERIFY_HOST, ALICE)
        self.assertEqual(r.status, 200)
        before = len(b.history)

        r = b.follow(public_url(APP_HOST, "/other"), credentials=ALICE)
        self.assertEqual(r.status, 200)
        self.assertEqual(idp_visits(b.history[before:]), 0,
                         "a second route host must not need a new provider login")
        self.assertIn(AUTHN_HOST, hosts_visited(b.history[before:]))

    def test_shared_domain_cookie_mode(self):
        b, r = login(VERIFY_HOST, ALICE)
        self.assertEqual(r.status, 200)
        cookie = b.find_cookie(COOKIE, COOKIE_DOMAIN)
        self.assertIsNotNone(cookie, "the FA host sets the cookie for cookie_domain")
        self.assertFalse(cookie.host_only)
        self.assertIn("secure", cookie.attrs)
        self.assertIn("httponly", cookie.attrs)

        # another route host inside cookie_domain: no redirect at all
        r = b.get(public_url(ADMIN_HOST, "/"))
        self.assertEqual(r.status, 200)

    def test_host_only_cookie_mode(self):
        b, r = login(APP_HOST, ALICE, "/start?a=1")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.url, public_url(APP_HOST, "/start?a=1"))
        cookie = b.find_cookie(COOKIE, APP_HOST)
        self.assertIsNotNone(cookie)
        self.assertTrue(cookie.host_only, "outside cookie_domain the cookie is host-only")
        self.assertIsNone(b.find_cookie(COOKIE, COOKIE_DOMAIN))
        seen = app_headers(b, APP_HOST)
        self.assertEqual(seen.get("x-pomerium-claim-email"), "alice@example.com")

    def test_seed_guide_nginx_config(self):
        """seed.localhost is configured like Pomerium's guide: everything through
        auth_request, and @authredirect sends the browser to the FA host with ?uri=."""
        b, r = login(SEED_HOST, ALICE, "/seed?q=1")
        self.assertEqual(r.status, 200, r.text()[:300])
        self.assertEqual(r.url, public_url(SEED_HOST, "/seed?q=1"))
        self.assertIsNotNone(b.find_cookie(COOKIE, SEED_HOST))

    def test_public_route_needs_no_login(self):
        b = Browser()
        r = b.get(public_url(PUBLIC_HOST, "/"))
        self.assertEqual(r.status, 200)
        self.assertEqual(len(b.history), 1)

    def test_sign_out_refuses_the_old_cookie_on_every_instance_within_a_second(self):
        b, r = login(VERIFY_HOST, ALICE)
        self.assertEqual(r.status, 200)
        cookie_header = b.cookie_header(VERIFY_HOST, "/")
        target = public_url(VERIFY_HOST, "/after-signout")

        def verify_status(instance):
            return Browser().get(authorize_url(instance, "/verify?uri=" + target),
                                 headers={"Cookie": cookie_header}).status

        self.assertEqual(verify_status("a"), 200)
        self.assertEqual(verify_status("b"), 200)

        r = b.follow(public_url(VERIFY_HOST, "/.pomerium/sign_out"))
        signed_out_at = time.monotonic()
        self.assertIn(AUTHN_HOST, hosts_visited(b.history[-6:]))

        refused = wait_until(lambda: verify_status("a") == 401 and verify_status("b") == 401,
                             timeout_s=1.0)
        elapsed = time.monotonic() - signed_out_at
        self.assertTrue(refused, "old cookie still accepted %.2fs after sign-out" % elapsed)


class VerifyContract(unittest.TestCase):
    def verify(self, uri, headers=None, instance="a"):
        return Browser().get(authorize_url(instance, "/verify?uri=" + uri), headers=headers)

    def test_no_session_gives_401_with_location_to_the_forward_auth_host(self):
        target = public_url(VERIFY_HOST, "/a?b=c")
        r = self.verify(target)
        self.assertEqual(r.status, 401)
        loc = r.header("location")
        self.assertTrue(loc.startswith(public_url(FA_HOST, "/?uri=")), loc)
        self.assertEqual(urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)["uri"],
                         [target])
        self.assertEqual(r.header_all("set-cookie"), [])

    def test_a_stale_cookie_beside_the_valid_one_does_not_lock_the_user_out(self):
        b, r = login(VERIFY_HOST, ALICE)
        self.assertEqual(r.status, 200)
        good = b.find_cookie(COOKIE).value
        target = public_url(VERIFY_HOST, "/two-cookies")
        for cookies in (["%s=garbage" % COOKIE, "%s=%s" % (COOKIE, good)],
                        ["%s=%s" % (COOKIE, good), "%s=garbage" % COOKIE]):
            r = self.verify(target, headers={"Cookie": "; ".join(cookies)})
            self.assertEqual(r.status, 200, cookies[0][:20])

    def test_unknown_route_is_403_not_404(self):
        r = self.verify("https://nowhere.example/")
        self.assertEqual(r.status, 403)

    def test_malformed_target_is_400(self):
        for bad in ("not-a-url", "https://", "ftp://verify.portcullis.localhost/"):
            r = Browser().get(authorize_url("a", "/verify?uri=" + urllib.parse.quote(bad)))
            self.assertEqual(r.status, 400, bad)

    def test_json_clients_get_a_json_401(self):
        r = self.verify(public_url(VERIFY_HOST, "/api"),
                        headers={"Accept": "application/json"})
        self.assertEqual(r.status, 401)
        self.assertIn("json", r.header("content-type"))
        json.loads(r.text())

    def test_client_sent_identity_headers_never_reach_the_app(self):
        b, r = login(VERIFY_HOST, ALICE)
        self.assertEqual(r.status, 200)
        r = b.get(public_url(VERIFY_HOST, "/headers.json"),
                  headers={"Accept": "application/json",
                           "X-Pomerium-Claim-Email": "forged@evil.example",
                           "X-Pomerium-Jwt-Assertion": "forged"})
        seen = header_dict(r.json())
        self.assertEqual(seen.get("x-pomerium-claim-email"), "alice@example.com")
        self.assertNotEqual(seen.get("x-pomerium-jwt-assertion"), "forged")


if __name__ == "__main__":
    unittest.main()
