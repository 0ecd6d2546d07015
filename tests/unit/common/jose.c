/* SPDX-License-Identifier: MIT */
/* Unit tests of common/jose.c: JWKS parsing, ID token verification, the assertion signer. */
#include "common/jose.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include <cjose/cjose.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "common/err.h"

#define NOW 1700000000
#define ISS "https://idp.example.com"
#define AUD "portcullis-client"
#define NONCE "n-0S6_WzA2Mj"
#define SIGN_THREADS 4
#define SIGNS_PER_THREAD 25

typedef struct st_fixture_t {
    EVP_PKEY *rsa_pkey;
    EVP_PKEY *ec_pkey;
    cjose_jwk_t *rsa; /* private, signs the test tokens */
    cjose_jwk_t *ec;
    json_t *rsa_pub;  /* public JWK object with kid "rsa1" */
    json_t *ec_pub;   /* public JWK object with kid "ec1" */
    cmn_jwks_t *jwks; /* both keys */
} fixture_t;

static fixture_t fx;

/* ---- helpers ---- */

static char *b64url(const void *data, size_t len)
{
    char *out = NULL;
    size_t out_len = 0;
    cjose_err cerr;
    char *copy;

    assert_true(cjose_base64url_encode(data, len, &out, &out_len, &cerr));
    copy = strndup(out, out_len);
    cjose_get_dealloc()(out);
    assert_non_null(copy);
    return copy;
}

static void set_bn_member(json_t *obj, const char *member, const EVP_PKEY *pkey,
                          const char *param, size_t pad)
{
    BIGNUM *bn = NULL;
    uint8_t buf[1024];
    int len;
    char *enc;

    assert_int_equal(EVP_PKEY_get_bn_param(pkey, param, &bn), 1);
    len = pad > 0 ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
    assert_true(len > 0);
    enc = b64url(buf, (size_t)len);
    assert_int_equal(json_object_set_new(obj, member, json_string(enc)), 0);
    free(enc);
    BN_clear_free(bn);
}

/* a private JWK object for a test key, from OpenSSL's parameters */
static json_t *private_jwk(const EVP_PKEY *pkey)
{
    json_t *obj = json_object();

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        json_object_set_new(obj, "kty", json_string("RSA"));
        set_bn_member(obj, "n", pkey, OSSL_PKEY_PARAM_RSA_N, 0);
        set_bn_member(obj, "e", pkey, OSSL_PKEY_PARAM_RSA_E, 0);
        set_bn_member(obj, "d", pkey, OSSL_PKEY_PARAM_RSA_D, 0);
        set_bn_member(obj, "p", pkey, OSSL_PKEY_PARAM_RSA_FACTOR1, 0);
        set_bn_member(obj, "q", pkey, OSSL_PKEY_PARAM_RSA_FACTOR2, 0);
        set_bn_member(obj, "dp", pkey, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0);
        set_bn_member(obj, "dq", pkey, OSSL_PKEY_PARAM_RSA_EXPONENT2, 0);
        set_bn_member(obj, "qi", pkey, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0);
    } else {
        json_object_set_new(obj, "kty", json_string("EC"));
        json_object_set_new(obj, "crv", json_string("P-256"));
        set_bn_member(obj, "x", pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32);
        set_bn_member(obj, "y", pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
        set_bn_member(obj, "d", pkey, OSSL_PKEY_PARAM_PRIV_KEY, 32);
    }
    return obj;
}

static cjose_jwk_t *import_jwk(const json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    cjose_err cerr;
    cjose_jwk_t *jwk;

    assert_non_null(text);
    jwk = cjose_jwk_import(text, strlen(text), &cerr);
    free(text);
    assert_non_null(jwk);
    return jwk;
}

/* the public JWK object as cjose exports it, plus a kid */
static json_t *public_jwk(const cjose_jwk_t *jwk, const char *kid)
{
    cjose_err cerr;
    char *text = cjose_jwk_to_json(jwk, false, &cerr);
    json_t *obj;

    assert_non_null(text);
    obj = json_loads(text, 0, NULL);
    cjose_get_dealloc()(text);
    assert_non_null(obj);
    assert_null(json_object_get(obj, "d"));
    if (kid != NULL) {
        json_object_set_new(obj, "kid", json_string(kid));
    }
    return obj;
}

/* parses {"keys":[...]} built from the given key objects (borrowed) */
static cmn_jwks_t *jwks_of(const char **err, size_t n, ...)
{
    json_t *doc = json_pack("{s:[]}", "keys");
    json_t *keys = json_object_get(doc, "keys");
    va_list ap;
    char *text;
    cmn_jwks_t *jwks;

    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        json_array_append(keys, va_arg(ap, json_t *));
    }
    va_end(ap);

    text = json_dumps(doc, JSON_COMPACT);
    jwks = cmn_jwks_parse(text, strlen(text), err);
    free(text);
    json_decref(doc);
    return jwks;
}

static json_t *good_claims(void)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", ISS, "sub", "user-1", "aud", AUD,
                     "exp", (json_int_t)NOW + 300, "iat", (json_int_t)NOW, "nonce", NONCE);
}

/* signs with cjose; kid may be NULL; takes the claims reference */
static char *sign_token(const cjose_jwk_t *jwk, const char *alg, const char *kid, json_t *claims)
{
    cjose_err cerr;
    cjose_header_t *hdr = cjose_header_new(&cerr);
    char *payload = json_dumps(claims, JSON_COMPACT);
    cjose_jws_t *jws;
    const char *compact = NULL;
    char *out;

    assert_non_null(hdr);
    assert_non_null(payload);
    assert_true(cjose_header_set(hdr, CJOSE_HDR_ALG, alg, &cerr));
    if (kid != NULL) {
        assert_true(cjose_header_set(hdr, CJOSE_HDR_KID, kid, &cerr));
    }
    jws = cjose_jws_sign(jwk, hdr, (const uint8_t *)payload, strlen(payload), &cerr);
    assert_non_null(jws);
    assert_true(cjose_jws_export(jws, &compact, &cerr));
    out = strdup(compact);
    cjose_jws_release(jws);
    cjose_header_release(hdr);
    free(payload);
    json_decref(claims);
    return out;
}

/* hand-assembles a token from raw header and payload JSON and a base64url signature */
static char *assemble(const char *header, const char *payload, const char *sig_b64)
{
    char *h = b64url(header, strlen(header));
    char *p = b64url(payload, strlen(payload));
    char *out = NULL;

    assert_true(asprintf(&out, "%s.%s.%s", h, p, sig_b64) > 0);
    free(h);
    free(p);
    return out;
}

static cmn_jwt_expect_t default_expect(void)
{
    cmn_jwt_expect_t e = {.issuer = ISS, .audience = AUD, .nonce = NONCE, .now = NOW};
    return e;
}

/* verifies and returns the error (NULL on success); frees the token */
static const char *verify_with(char *token, const cmn_jwks_t *jwks, const cmn_jwt_expect_t *e)
{
    json_t *claims = (json_t *)1;
    const char *err = NULL;
    int rc = cmn_jwt_verify(token, strlen(token), jwks, e, &claims, &err);

    free(token);
    if (rc == 0) {
        assert_non_null(claims);
        assert_string_equal(json_string_value(json_object_get(claims, "sub")), "user-1");
        json_decref(claims);
        return NULL;
    }
    assert_int_equal(rc, -1);
    assert_null(claims);
    assert_non_null(err);
    return err;
}

static const char *verify(char *token)
{
    cmn_jwt_expect_t e = default_expect();

    return verify_with(token, fx.jwks, &e);
}

/* good claims with one member replaced (or removed when value is NULL; value is taken) */
static json_t *claims_with(const char *name, json_t *value)
{
    json_t *c = good_claims();

    if (value == NULL) {
        json_object_del(c, name);
    } else {
        json_object_set_new(c, name, value);
    }
    return c;
}

static char *rs256(json_t *claims)
{
    return sign_token(fx.rsa, "RS256", "rsa1", claims);
}

static char *pem_of(EVP_PKEY *pkey, bool private_key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;
    char *out;

    assert_non_null(bio);
    if (private_key) {
        assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
    } else {
        assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
    }
    len = BIO_get_mem_data(bio, &data);
    out = strndup(data, (size_t)len);
    BIO_free(bio);
    return out;
}

/* ---- fixture ---- */

static int setup(void **state)
{
    const char *err = NULL;
    json_t *priv;

    fx.rsa_pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fx.ec_pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (fx.rsa_pkey == NULL || fx.ec_pkey == NULL) {
        return -1;
    }

    priv = private_jwk(fx.rsa_pkey);
    fx.rsa = import_jwk(priv);
    json_decref(priv);
    priv = private_jwk(fx.ec_pkey);
    fx.ec = import_jwk(priv);
    json_decref(priv);

    fx.rsa_pub = public_jwk(fx.rsa, "rsa1");
    fx.ec_pub = public_jwk(fx.ec, "ec1");
    fx.jwks = jwks_of(&err, 2, fx.rsa_pub, fx.ec_pub);
    return fx.jwks != NULL && cmn_jwks_count(fx.jwks) == 2 ? 0 : -1;
}

static int teardown(void **state)
{
    cmn_jwks_destroy(fx.jwks);
    json_decref(fx.rsa_pub);
    json_decref(fx.ec_pub);
    cjose_jwk_release(fx.rsa);
    cjose_jwk_release(fx.ec);
    EVP_PKEY_free(fx.rsa_pkey);
    EVP_PKEY_free(fx.ec_pkey);
    return 0;
}

/* ---- good tokens ---- */

static void test_good_rs256(void **state)
{
    char *token = rs256(good_claims());
    json_t *claims = NULL;
    const char *err = NULL;
    cmn_jwt_expect_t e = default_expect();

    assert_int_equal(cmn_jwt_verify(token, strlen(token), fx.jwks, &e, &claims, &err), 0);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "user-1");
    assert_string_equal(json_string_value(json_object_get(claims, "nonce")), NONCE);
    json_decref(claims);
    free(token);
}

static void test_good_es256(void **state)
{
    assert_null(verify(sign_token(fx.ec, "ES256", "ec1", good_claims())));
}

static void test_other_rsa_algs(void **state)
{
    assert_null(verify(sign_token(fx.rsa, "RS384", "rsa1", good_claims())));
    assert_null(verify(sign_token(fx.rsa, "RS512", "rsa1", good_claims())));
    assert_null(verify(sign_token(fx.rsa, "PS256", "rsa1", good_claims())));
    assert_null(verify(sign_token(fx.rsa, "PS512", "rsa1", good_claims())));
}

static void test_decode_unverified(void **state)
{
    char *token = rs256(good_claims());
    json_t *payload = cmn_jwt_decode_unverified(token, strlen(token));

    assert_non_null(payload);
    assert_string_equal(json_string_value(json_object_get(payload, "iss")), ISS);
    json_decref(payload);
    assert_null(cmn_jwt_decode_unverified("a.b", 3));
    free(token);
}

/* ---- time claims ---- */

static void test_exp_without_leeway(void **state)
{
    /* issue #4: exp gets no leeway (refused once now >= exp); iat and nbf keep 60 s */
    assert_null(verify(rs256(claims_with("exp", json_integer(NOW + 1)))));
    assert_ptr_equal(verify(rs256(claims_with("exp", json_integer(NOW)))), cmn_err_jwt_expired);
    assert_ptr_equal(verify(rs256(claims_with("exp", json_integer(NOW - 1)))),
                     cmn_err_jwt_expired);
    assert_ptr_equal(verify(rs256(claims_with("exp", json_integer(NOW - 30)))),
                     cmn_err_jwt_expired);
    assert_ptr_equal(verify(rs256(claims_with("exp", json_integer(NOW - 3600)))),
                     cmn_err_jwt_expired);
}

static void test_iat_nbf(void **state)
{
    json_t *c = good_claims();

    json_object_set_new(c, "iat", json_integer(NOW + 2));
    json_object_set_new(c, "nbf", json_integer(NOW + 2));
    assert_null(verify(rs256(c)));

    assert_null(verify(rs256(claims_with("iat", json_integer(NOW + 60)))));
    assert_ptr_equal(verify(rs256(claims_with("iat", json_integer(NOW + 61)))), cmn_err_jwt_iat);
    assert_ptr_equal(verify(rs256(claims_with("iat", json_integer(NOW + 600)))), cmn_err_jwt_iat);
    assert_null(verify(rs256(claims_with("nbf", json_integer(NOW + 60)))));
    assert_ptr_equal(verify(rs256(claims_with("nbf", json_integer(NOW + 61)))),
                     cmn_err_jwt_not_yet_valid);
}

static void test_time_claim_types(void **state)
{
    assert_ptr_equal(verify(rs256(claims_with("exp", json_string("later")))),
                     cmn_err_jwt_malformed);
    assert_ptr_equal(verify(rs256(claims_with("exp", json_real(NOW + 300.5)))),
                     cmn_err_jwt_malformed);
    assert_ptr_equal(verify(rs256(claims_with("exp", NULL))), cmn_err_jwt_missing_claim);
    assert_ptr_equal(verify(rs256(claims_with("iat", NULL))), cmn_err_jwt_missing_claim);
}

/* ---- audience, issuer, subject, nonce ---- */

static void test_wrong_aud(void **state)
{
    assert_ptr_equal(verify(rs256(claims_with("aud", json_string("someone-else")))),
                     cmn_err_jwt_aud);
    assert_ptr_equal(verify(rs256(claims_with("aud", json_pack("[s,s]", "x", "y")))),
                     cmn_err_jwt_aud);
    assert_ptr_equal(verify(rs256(claims_with("aud", json_integer(3)))), cmn_err_jwt_aud);
    assert_ptr_equal(verify(rs256(claims_with("aud", NULL))), cmn_err_jwt_missing_claim);
}

static void test_aud_array(void **state)
{
    json_t *c;

    /* a single-member array needs no azp */
    assert_null(verify(rs256(claims_with("aud", json_pack("[s]", AUD)))));

    /* several audiences: azp required and equal to the client id */
    assert_ptr_equal(verify(rs256(claims_with("aud", json_pack("[s,s]", "other", AUD)))),
                     cmn_err_jwt_azp);
    c = claims_with("aud", json_pack("[s,s]", "other", AUD));
    json_object_set_new(c, "azp", json_string(AUD));
    assert_null(verify(rs256(c)));
    c = claims_with("aud", json_pack("[s,s]", "other", AUD));
    json_object_set_new(c, "azp", json_string("other"));
    assert_ptr_equal(verify(rs256(c)), cmn_err_jwt_azp);
}

static void test_wrong_azp(void **state)
{
    /* azp is checked whenever present, even with a single audience */
    assert_ptr_equal(verify(rs256(claims_with("azp", json_string("other")))), cmn_err_jwt_azp);
    assert_null(verify(rs256(claims_with("azp", json_string(AUD)))));
}

static void test_iss(void **state)
{
    cmn_jwt_expect_t e = default_expect();

    assert_ptr_equal(verify(rs256(claims_with("iss", json_string("https://evil.example.com")))),
                     cmn_err_jwt_iss);
    assert_ptr_equal(verify(rs256(claims_with("iss", json_string(ISS "/x")))), cmn_err_jwt_iss);
    assert_ptr_equal(verify(rs256(claims_with("iss", json_string(ISS "//")))), cmn_err_jwt_iss);
    assert_ptr_equal(verify(rs256(claims_with("iss", NULL))), cmn_err_jwt_missing_claim);

    /* one trailing slash is ignored on either side */
    assert_null(verify(rs256(claims_with("iss", json_string(ISS "/")))));
    e.issuer = ISS "/";
    assert_null(verify_with(rs256(good_claims()), fx.jwks, &e));
}

static void test_sub(void **state)
{
    assert_ptr_equal(verify(rs256(claims_with("sub", NULL))), cmn_err_jwt_missing_claim);
    assert_ptr_equal(verify(rs256(claims_with("sub", json_integer(7)))), cmn_err_jwt_malformed);
}

static void test_nonce(void **state)
{
    cmn_jwt_expect_t e = default_expect();

    assert_ptr_equal(verify(rs256(claims_with("nonce", NULL))), cmn_err_jwt_nonce);
    assert_ptr_equal(verify(rs256(claims_with("nonce", json_string("other")))),
                     cmn_err_jwt_nonce);

    /* no nonce expected (a refresh): its absence is fine */
    e.nonce = NULL;
    assert_null(verify_with(rs256(claims_with("nonce", NULL)), fx.jwks, &e));
}

/* ---- signatures, keys and algorithms ---- */

static char *flip_sig_char(char *token)
{
    char *sig = strrchr(token, '.') + 1;
    size_t mid = strlen(sig) / 2;

    sig[mid] = sig[mid] == 'A' ? 'B' : 'A';
    return token;
}

static void test_bad_signature(void **state)
{
    char *token = rs256(good_claims());
    char *payload = strchr(token, '.') + 1;

    assert_ptr_equal(verify(flip_sig_char(rs256(good_claims()))), cmn_err_jwt_signature);
    assert_ptr_equal(verify(flip_sig_char(sign_token(fx.ec, "ES256", "ec1", good_claims()))),
                     cmn_err_jwt_signature);

    /* a changed payload under the original signature */
    payload[3] = payload[3] == 'a' ? 'b' : 'a';
    assert_ptr_equal(verify(token), cmn_err_jwt_signature);
}

static void test_es256_sig_length(void **state)
{
    char *token = sign_token(fx.ec, "ES256", "ec1", good_claims());
    char *longer = NULL;

    /* R || S with a byte more or less is refused before cjose splits it */
    assert_true(asprintf(&longer, "%sAA", token) > 0);
    assert_ptr_equal(verify(longer), cmn_err_jwt_signature);
    token[strlen(token) - 3] = '\0';
    assert_ptr_equal(verify(token), cmn_err_jwt_signature);
}

static void test_unknown_kid(void **state)
{
    cmn_jwt_expect_t e = default_expect();

    assert_ptr_equal(verify(sign_token(fx.rsa, "RS256", "rotated-away", good_claims())),
                     cmn_err_jwt_unknown_kid);

    /* no key set at all yet */
    assert_ptr_equal(verify_with(rs256(good_claims()), NULL, &e), cmn_err_jwt_unknown_kid);
}

static char *good_payload(void)
{
    json_t *c = good_claims();
    char *text = json_dumps(c, JSON_COMPACT);

    json_decref(c);
    assert_non_null(text);
    return text;
}

static void test_alg_none(void **state)
{
    char *payload = good_payload();

    assert_ptr_equal(verify(assemble("{\"alg\":\"none\"}", payload, "")), cmn_err_jwt_alg);
    assert_ptr_equal(verify(assemble("{\"alg\":\"none\",\"kid\":\"rsa1\"}", payload, "")),
                     cmn_err_jwt_alg);
    assert_ptr_equal(verify(assemble("{\"alg\":\"None\"}", payload, "")), cmn_err_jwt_alg);
    free(payload);
}

/* the classic confusion: an HMAC keyed with the RSA public key's bytes, which anyone has */
static void test_hs256_with_public_key(void **state)
{
    char *pem = pem_of(fx.rsa_pkey, false);
    char *payload = good_payload();
    const char *headers[] = {"{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", "{\"alg\":\"HS256\"}"};

    for (size_t i = 0; i < 2; i++) {
        char *h = b64url(headers[i], strlen(headers[i]));
        char *p = b64url(payload, strlen(payload));
        char *input = NULL;
        uint8_t mac[32];
        unsigned int mac_len = 0;
        char *sig;

        assert_true(asprintf(&input, "%s.%s", h, p) > 0);
        assert_non_null(HMAC(EVP_sha256(), pem, (int)strlen(pem), (const uint8_t *)input,
                             strlen(input), mac, &mac_len));
        sig = b64url(mac, mac_len);
        assert_ptr_equal(verify(assemble(headers[i], payload, sig)), cmn_err_jwt_alg);
        free(sig);
        free(input);
        free(p);
        free(h);
    }
    free(payload);
    free(pem);
}

static void test_alg_key_mismatch(void **state)
{
    /* an ES256 header naming the RSA key, and the other way round */
    assert_ptr_equal(verify(sign_token(fx.ec, "ES256", "rsa1", good_claims())), cmn_err_jwt_alg);
    assert_ptr_equal(verify(sign_token(fx.rsa, "RS256", "ec1", good_claims())), cmn_err_jwt_alg);
}

static void test_key_alg_member(void **state)
{
    json_t *pinned = json_deep_copy(fx.rsa_pub);
    const char *err = NULL;
    cmn_jwks_t *jwks;
    cmn_jwt_expect_t e = default_expect();

    /* a key that names its algorithm is used for that algorithm only */
    json_object_set_new(pinned, "alg", json_string("RS384"));
    jwks = jwks_of(&err, 1, pinned);
    assert_non_null(jwks);
    assert_ptr_equal(verify_with(rs256(good_claims()), jwks, &e), cmn_err_jwt_alg);
    assert_null(verify_with(sign_token(fx.rsa, "RS384", "rsa1", good_claims()), jwks, &e));
    cmn_jwks_destroy(jwks);
    json_decref(pinned);
}

static void test_allowed_algs(void **state)
{
    static const char *const only_es256[] = {"ES256", NULL};
    cmn_jwt_expect_t e = default_expect();

    e.allowed_algs = only_es256;
    assert_ptr_equal(verify_with(rs256(good_claims()), fx.jwks, &e), cmn_err_jwt_alg);
    assert_null(verify_with(sign_token(fx.ec, "ES256", "ec1", good_claims()), fx.jwks, &e));
}

static void test_no_kid(void **state)
{
    json_t *bare = json_deep_copy(fx.rsa_pub);
    const char *err = NULL;
    cmn_jwks_t *jwks;
    cmn_jwt_expect_t e = default_expect();

    /* a single key without kid */
    json_object_del(bare, "kid");
    jwks = jwks_of(&err, 1, bare);
    assert_non_null(jwks);
    assert_null(verify_with(sign_token(fx.rsa, "RS256", NULL, good_claims()), jwks, &e));

    /* without kid, no key of the right type: the caller may refetch */
    assert_ptr_equal(verify_with(sign_token(fx.ec, "ES256", NULL, good_claims()), jwks, &e),
                     cmn_err_jwt_unknown_kid);
    cmn_jwks_destroy(jwks);
    json_decref(bare);

    /* without kid, every key whose type fits is tried */
    assert_null(verify(sign_token(fx.ec, "ES256", NULL, good_claims())));
    assert_null(verify(sign_token(fx.rsa, "RS256", NULL, good_claims())));
}

static void test_malformed_tokens(void **state)
{
    char *payload = good_payload();
    char *big = malloc(CMN_JWT_MAX_BYTES + 2);
    char *token = rs256(good_claims());
    char *four = NULL;

    assert_ptr_equal(verify(strdup("abc.def")), cmn_err_jwt_malformed);
    assert_ptr_equal(verify(strdup("")), cmn_err_jwt_malformed);
    assert_ptr_equal(verify(strdup("..")), cmn_err_jwt_malformed);
    assert_true(asprintf(&four, "%s.xyz", token) > 0);
    assert_ptr_equal(verify(four), cmn_err_jwt_malformed);
    token[5] = '+';
    assert_ptr_equal(verify(token), cmn_err_jwt_malformed);
    assert_ptr_equal(verify(assemble("[\"alg\"]", payload, "AAAA")), cmn_err_jwt_malformed);
    assert_ptr_equal(verify(assemble("{\"kid\":\"rsa1\"}", payload, "AAAA")),
                     cmn_err_jwt_malformed);
    assert_ptr_equal(verify(assemble("{\"alg\":\"RS256\",\"alg\":\"RS256\"}", payload, "AAAA")),
                     cmn_err_jwt_malformed);
    assert_ptr_equal(verify(assemble("{\"alg\":\"RS256\",\"crit\":[\"exp\"]}", payload, "AAAA")),
                     cmn_err_jwt_malformed);
    assert_ptr_equal(verify(assemble("{\"alg\":\"RS256\",\"kid\":7}", payload, "AAAA")),
                     cmn_err_jwt_malformed);

    memset(big, 'A', CMN_JWT_MAX_BYTES + 1);
    big[CMN_JWT_MAX_BYTES + 1] = '\0';
    assert_ptr_equal(verify(big), cmn_err_too_large);
    free(payload);
}

/* ---- JWKS ---- */

static void test_jwks_ceiling(void **state)
{
    json_t *doc = json_pack("{s:[]}", "keys");
    const char *err = NULL;
    char *text;
    cmn_jwks_t *jwks;
    cmn_jwt_expect_t e = default_expect();

    for (int i = 0; i < 40; i++) {
        json_t *k = json_deep_copy(fx.ec_pub);
        char kid[16];
        snprintf(kid, sizeof(kid), "k%d", i);
        json_object_set_new(k, "kid", json_string(kid));
        json_array_append_new(json_object_get(doc, "keys"), k);
    }
    text = json_dumps(doc, JSON_COMPACT);
    jwks = cmn_jwks_parse(text, strlen(text), &err);
    assert_non_null(jwks);
    assert_int_equal(cmn_jwks_count(jwks), CMN_JWKS_MAX_KEYS);

    /* the first 32 are kept, the rest skipped */
    assert_null(verify_with(sign_token(fx.ec, "ES256", "k31", good_claims()), jwks, &e));
    assert_ptr_equal(verify_with(sign_token(fx.ec, "ES256", "k32", good_claims()), jwks, &e),
                     cmn_err_jwt_unknown_kid);
    cmn_jwks_destroy(jwks);
    free(text);
    json_decref(doc);
}

static cmn_jwks_t *parse_str(const char *text, const char **err)
{
    return cmn_jwks_parse(text, strlen(text), err);
}

static void test_jwks_malformed(void **state)
{
    const char *err = NULL;
    char *big = malloc(CMN_JWKS_MAX_BYTES + 1);

    assert_null(parse_str("{\"keys\":[", &err));
    assert_ptr_equal(err, cmn_err_bad_json);
    assert_null(parse_str("[]", &err));
    assert_ptr_equal(err, cmn_err_malformed);
    assert_null(parse_str("{\"keys\":{}}", &err));
    assert_ptr_equal(err, cmn_err_malformed);
    assert_null(parse_str("{\"keys\":[]}", &err));
    assert_ptr_equal(err, cmn_err_not_found);
    assert_null(parse_str("{\"keys\":[1,\"x\",{\"kty\":\"oct\",\"k\":\"AAAA\"},"
                          "{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"},{\"kty\":\"EC\"}]}",
                          &err));
    assert_ptr_equal(err, cmn_err_not_found);

    memset(big, ' ', CMN_JWKS_MAX_BYTES + 1);
    assert_null(cmn_jwks_parse(big, CMN_JWKS_MAX_BYTES + 1, &err));
    assert_ptr_equal(err, cmn_err_too_large);
    free(big);
}

static void test_jwks_skips(void **state)
{
    json_t *enc = json_deep_copy(fx.rsa_pub);
    json_t *p521 = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-521", "x", "AA", "y",
                             "AA");
    json_t *wrong_alg = json_deep_copy(fx.ec_pub);
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    json_t *small_priv = private_jwk(small);
    cjose_jwk_t *small_jwk = import_jwk(small_priv);
    json_t *small_pub = public_jwk(small_jwk, "small");
    const char *err = NULL;
    cmn_jwks_t *jwks;

    json_object_set_new(enc, "use", json_string("enc"));
    json_object_set_new(enc, "kid", json_string("enc1"));
    json_object_set_new(wrong_alg, "alg", json_string("RS256"));
    json_object_set_new(wrong_alg, "kid", json_string("wrong"));

    /* only the plain EC key survives: an encryption key, P-521, RSA-1024, and an EC key
     * claiming an RSA algorithm are all skipped */
    jwks = jwks_of(&err, 5, enc, p521, wrong_alg, small_pub, fx.ec_pub);
    assert_non_null(jwks);
    assert_int_equal(cmn_jwks_count(jwks), 1);
    cmn_jwks_destroy(jwks);

    jwks = jwks_of(&err, 2, enc, small_pub);
    assert_null(jwks);
    assert_ptr_equal(err, cmn_err_not_found);

    json_decref(small_pub);
    cjose_jwk_release(small_jwk);
    json_decref(small_priv);
    EVP_PKEY_free(small);
    json_decref(wrong_alg);
    json_decref(p521);
    json_decref(enc);
}

/* ---- thumbprint ---- */

static json_t *load_fixture(const char *name)
{
    char path[512];
    json_t *obj;

    snprintf(path, sizeof(path), "%s/tests/data/jose/%s", PORTCULLIS_SOURCE_DIR, name);
    obj = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(obj);
    return obj;
}

static void test_rfc7638_thumbprint(void **state)
{
    json_t *jwk = load_fixture("rfc7638-rsa.json");
    char tp[CMN_JWK_THUMBPRINT_LEN + 1];
    const char *err = NULL;

    /* RFC 7638 §3.1 */
    assert_int_equal(cmn_jwk_thumbprint(jwk, tp, &err), 0);
    assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");

    json_object_del(jwk, "e");
    assert_int_equal(cmn_jwk_thumbprint(jwk, tp, &err), -1);
    assert_ptr_equal(err, cmn_err_malformed);
    json_decref(jwk);
}

/* ---- signer ---- */

/* checks the signer's JWKS document holds exactly the public members */
static void check_public_jwks(const cmn_signer_t *signer, const char *kty)
{
    static const char *const ec_members[] = {"kty", "crv", "x", "y", "kid", "alg", "use"};
    static const char *const rsa_members[] = {"kty", "n", "e", "kid", "alg", "use"};
    char *text = cmn_signer_jwks_json(signer);
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    json_t *key = json_array_get(json_object_get(doc, "keys"), 0);
    bool ec = strcmp(kty, "EC") == 0;
    size_t n = ec ? 7 : 6;
    char tp[CMN_JWK_THUMBPRINT_LEN + 1];
    const char *err = NULL;

    assert_non_null(key);
    assert_int_equal(json_array_size(json_object_get(doc, "keys")), 1);
    assert_null(strstr(text, "\"d\""));
    assert_null(strstr(text, "\"p\""));
    assert_int_equal(json_object_size(key), n);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(json_object_get(key, ec ? ec_members[i] : rsa_members[i]));
    }
    assert_string_equal(json_string_value(json_object_get(key, "kty")), kty);
    assert_string_equal(json_string_value(json_object_get(key, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(key, "alg")), cmn_signer_alg(signer));
    assert_string_equal(json_string_value(json_object_get(key, "kid")), cmn_signer_kid(signer));
    assert_int_equal(cmn_jwk_thumbprint(key, tp, &err), 0);
    assert_string_equal(tp, cmn_signer_kid(signer));
    json_decref(doc);
    free(text);
}

/* signs through the signer and verifies through its own published JWKS */
static void check_sign_verify(const cmn_signer_t *signer)
{
    char *jwks_text = cmn_signer_jwks_json(signer);
    const char *err = NULL;
    cmn_jwks_t *jwks = parse_str(jwks_text, &err);
    json_t *claims = good_claims();
    char *token = cmn_signer_sign(signer, claims);
    char *dot;
    json_t *header;
    char expected_header[128];
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    cjose_err cerr;
    cmn_jwt_expect_t e = default_expect();

    assert_non_null(jwks);
    assert_non_null(token);

    /* header {alg, kid, typ} in that order */
    dot = strchr(token, '.');
    assert_true(cjose_base64url_decode(token, (size_t)(dot - token), &raw, &raw_len, &cerr));
    snprintf(expected_header, sizeof(expected_header),
             "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", cmn_signer_alg(signer),
             cmn_signer_kid(signer));
    header = json_loadb((const char *)raw, raw_len, 0, NULL);
    assert_non_null(header);
    assert_int_equal(raw_len, strlen(expected_header));
    assert_memory_equal(raw, expected_header, raw_len);
    cjose_get_dealloc()(raw);
    json_decref(header);

    assert_null(verify_with(token, jwks, &e));

    /* and not through another key set */
    token = cmn_signer_sign(signer, claims);
    assert_non_null(token);
    assert_ptr_equal(verify_with(token, fx.jwks, &e), cmn_err_jwt_unknown_kid);

    json_decref(claims);
    cmn_jwks_destroy(jwks);
    free(jwks_text);
}

static void test_signer_seed(void **state)
{
    uint8_t seed[CMN_SIGNER_SEED_LEN];
    uint8_t other[CMN_SIGNER_SEED_LEN];
    const char *err = NULL;
    cmn_signer_t *a, *b, *c;

    memset(seed, 0x42, sizeof(seed));
    memset(other, 0x43, sizeof(other));
    a = cmn_signer_create(NULL, seed, &err);
    b = cmn_signer_create(NULL, seed, &err);
    c = cmn_signer_create(NULL, other, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);

    /* deterministic: same seed, same key on every instance */
    assert_string_equal(cmn_signer_alg(a), "ES256");
    assert_int_equal(strlen(cmn_signer_kid(a)), CMN_JWK_THUMBPRINT_LEN);
    assert_string_equal(cmn_signer_kid(a), cmn_signer_kid(b));
    assert_string_not_equal(cmn_signer_kid(a), cmn_signer_kid(c));

    check_public_jwks(a, "EC");
    check_sign_verify(a);
    cmn_signer_destroy(a);
    cmn_signer_destroy(b);
    cmn_signer_destroy(c);
}

static void test_signer_seed_zero(void **state)
{
    /* the P-256 group order n: reduces to zero, which is no key */
    static const uint8_t order[CMN_SIGNER_SEED_LEN] = {
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51};
    uint8_t zero[CMN_SIGNER_SEED_LEN] = {0};
    const char *err = NULL;

    assert_null(cmn_signer_create(NULL, zero, &err));
    assert_ptr_equal(err, cmn_err_malformed);
    err = NULL;
    assert_null(cmn_signer_create(NULL, order, &err));
    assert_ptr_equal(err, cmn_err_malformed);
    err = NULL;
    assert_null(cmn_signer_create(NULL, NULL, &err));
    assert_non_null(err);
}

static void test_signer_pem(void **state)
{
    char *ec_pem = pem_of(fx.ec_pkey, true);
    char *rsa_pem = pem_of(fx.rsa_pkey, true);
    const char *err = NULL;
    cmn_signer_t *ec = cmn_signer_create(ec_pem, NULL, &err);
    cmn_signer_t *rsa = cmn_signer_create(rsa_pem, NULL, &err);
    char tp[CMN_JWK_THUMBPRINT_LEN + 1];

    assert_non_null(ec);
    assert_non_null(rsa);
    assert_string_equal(cmn_signer_alg(ec), "ES256");
    assert_string_equal(cmn_signer_alg(rsa), "RS256");

    /* the kid is the thumbprint of the same public key the test built independently */
    assert_int_equal(cmn_jwk_thumbprint(fx.ec_pub, tp, &err), 0);
    assert_string_equal(cmn_signer_kid(ec), tp);
    assert_int_equal(cmn_jwk_thumbprint(fx.rsa_pub, tp, &err), 0);
    assert_string_equal(cmn_signer_kid(rsa), tp);

    check_public_jwks(ec, "EC");
    check_public_jwks(rsa, "RSA");
    check_sign_verify(ec);
    check_sign_verify(rsa);
    cmn_signer_destroy(ec);
    cmn_signer_destroy(rsa);
    free(ec_pem);
    free(rsa_pem);
}

static void test_signer_bad_pem(void **state)
{
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    char *p384_pem = pem_of(p384, true);
    char *pub_pem = pem_of(fx.ec_pkey, false);
    const char *err = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *enc = NULL;
    long len;

    assert_null(cmn_signer_create("not a key", NULL, &err));
    assert_ptr_equal(err, cmn_err_malformed);
    assert_null(cmn_signer_create(p384_pem, NULL, &err));
    assert_ptr_equal(err, cmn_err_malformed);
    assert_null(cmn_signer_create(pub_pem, NULL, &err));
    assert_ptr_equal(err, cmn_err_malformed);

    /* an encrypted key is refused, never prompts for a passphrase */
    assert_int_equal(PEM_write_bio_PrivateKey(bio, fx.ec_pkey, EVP_aes_256_cbc(),
                                              (unsigned char *)"pw", 2, NULL, NULL), 1);
    len = BIO_get_mem_data(bio, &enc);
    enc = strndup(enc, (size_t)len);
    assert_null(cmn_signer_create(enc, NULL, &err));
    assert_ptr_equal(err, cmn_err_malformed);

    free(enc);
    BIO_free(bio);
    free(pub_pem);
    free(p384_pem);
    EVP_PKEY_free(p384);
}

typedef struct st_sign_job_t {
    const cmn_signer_t *signer;
    const cmn_jwks_t *jwks;
    int failures;
} sign_job_t;

static void *sign_many(void *arg)
{
    sign_job_t *job = arg;
    json_t *claims = good_claims();
    cmn_jwt_expect_t e = default_expect();

    for (int i = 0; i < SIGNS_PER_THREAD; i++) {
        char *token = cmn_signer_sign(job->signer, claims);
        json_t *out = NULL;
        const char *err = NULL;

        if (token == NULL || cmn_jwt_verify(token, strlen(token), job->jwks, &e, &out, &err) != 0) {
            job->failures++;
        }
        json_decref(out);
        free(token);
    }
    json_decref(claims);
    return NULL;
}

static void test_signer_threads(void **state)
{
    uint8_t seed[CMN_SIGNER_SEED_LEN];
    const char *err = NULL;
    cmn_signer_t *signer;
    char *text;
    cmn_jwks_t *jwks;
    pthread_t threads[SIGN_THREADS];
    sign_job_t jobs[SIGN_THREADS];

    memset(seed, 7, sizeof(seed));
    signer = cmn_signer_create(NULL, seed, &err);
    assert_non_null(signer);
    text = cmn_signer_jwks_json(signer);
    jwks = parse_str(text, &err);
    assert_non_null(jwks);

    for (int i = 0; i < SIGN_THREADS; i++) {
        jobs[i] = (sign_job_t){.signer = signer, .jwks = jwks};
        assert_int_equal(pthread_create(&threads[i], NULL, sign_many, &jobs[i]), 0);
    }
    for (int i = 0; i < SIGN_THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].failures, 0);
    }

    /* each thread signed with its own copy of the key; the creating thread still can */
    check_sign_verify(signer);
    cmn_jwks_destroy(jwks);
    free(text);
    cmn_signer_destroy(signer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_rs256),
        cmocka_unit_test(test_good_es256),
        cmocka_unit_test(test_other_rsa_algs),
        cmocka_unit_test(test_decode_unverified),
        cmocka_unit_test(test_exp_without_leeway),
        cmocka_unit_test(test_iat_nbf),
        cmocka_unit_test(test_time_claim_types),
        cmocka_unit_test(test_wrong_aud),
        cmocka_unit_test(test_aud_array),
        cmocka_unit_test(test_wrong_azp),
        cmocka_unit_test(test_iss),
        cmocka_unit_test(test_sub),
        cmocka_unit_test(test_nonce),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_es256_sig_length),
        cmocka_unit_test(test_unknown_kid),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_hs256_with_public_key),
        cmocka_unit_test(test_alg_key_mismatch),
        cmocka_unit_test(test_key_alg_member),
        cmocka_unit_test(test_allowed_algs),
        cmocka_unit_test(test_no_kid),
        cmocka_unit_test(test_malformed_tokens),
        cmocka_unit_test(test_jwks_ceiling),
        cmocka_unit_test(test_jwks_malformed),
        cmocka_unit_test(test_jwks_skips),
        cmocka_unit_test(test_rfc7638_thumbprint),
        cmocka_unit_test(test_signer_seed),
        cmocka_unit_test(test_signer_seed_zero),
        cmocka_unit_test(test_signer_pem),
        cmocka_unit_test(test_signer_bad_pem),
        cmocka_unit_test(test_signer_threads),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
