/* SPDX-License-Identifier: MIT */
/* Server-side TLS contexts for the listeners: certificate chain, key, ALPN, client certificates. */
#include "common/tls.h"

#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <h2o.h>

/* the ALPN identifiers we offer; h2o_accept starts HTTP/2 for "h2", HTTP/1.1 for the rest */
static const h2o_iovec_t alpn_protocols[] = {
    {H2O_STRLIT("h2")},
    {H2O_STRLIT("http/1.1")},
    {NULL, 0},
};

/* a fixed session id context, required for resumed sessions once peers are verified */
static const unsigned char session_id_context[] = "portcullis";

/* writes "<what> "<file>": <OpenSSL reason>" and clears OpenSSL's error queue */
static void tls_error(char *errbuf, size_t errbuf_size, const char *what, const char *file)
{
    char reason[256] = "unknown error";
    unsigned long code = ERR_get_error();

    if (code != 0) {
        ERR_error_string_n(code, reason, sizeof(reason));
    }
    ERR_clear_error();
    snprintf(errbuf, errbuf_size, "%s \"%s\": %s", what, file != NULL ? file : "(unset)", reason);
}

static int load_certificate(SSL_CTX *ctx, const cmn_config_t *config, char *errbuf,
                            size_t errbuf_size)
{
    if (config->certificate_file == NULL || config->certificate_key_file == NULL) {
        snprintf(errbuf, errbuf_size, "TLS needs certificate_file and certificate_key_file");
        return -1;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, config->certificate_file) != 1) {
        tls_error(errbuf, errbuf_size, "cannot load certificate_file", config->certificate_file);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, config->certificate_key_file, SSL_FILETYPE_PEM) != 1) {
        tls_error(errbuf, errbuf_size, "cannot load certificate_key_file",
                  config->certificate_key_file);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_error(errbuf, errbuf_size, "certificate_key_file does not match the certificate",
                  config->certificate_key_file);
        return -1;
    }
    return 0;
}

static int require_client_certificates(SSL_CTX *ctx, const cmn_config_t *config, char *errbuf,
                                       size_t errbuf_size)
{
    const char *ca = config->certificate_authority_file;
    STACK_OF(X509_NAME) *names = NULL;

    if (ca == NULL) {
        snprintf(errbuf, errbuf_size, "mutual TLS needs certificate_authority_file");
        return -1;
    }
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        tls_error(errbuf, errbuf_size, "cannot load certificate_authority_file", ca);
        return -1;
    }

    /* tell clients which CA we accept, so they pick the right certificate */
    names = SSL_load_client_CA_file(ca);
    if (names == NULL) {
        tls_error(errbuf, errbuf_size, "no CA names in certificate_authority_file", ca);
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names);

    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    if (SSL_CTX_set_session_id_context(ctx, session_id_context,
                                       sizeof(session_id_context) - 1) != 1) {
        tls_error(errbuf, errbuf_size, "cannot set the session id context for", ca);
        return -1;
    }
    return 0;
}

SSL_CTX *cmn_tls_server_ctx(const cmn_config_t *config, cmn_tls_mode_t mode, char *errbuf,
                            size_t errbuf_size)
{
    SSL_CTX *ctx = NULL;
    SSL_CTX *ret = NULL;

    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tls_error(errbuf, errbuf_size, "cannot create a TLS context for", "server");
        goto Exit;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        tls_error(errbuf, errbuf_size, "cannot require TLS 1.2 for", "server");
        goto Exit;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);

    if (load_certificate(ctx, config, errbuf, errbuf_size) != 0) {
        goto Exit;
    }
    if (mode == CMN_TLS_MUTUAL && require_client_certificates(ctx, config, errbuf,
                                                              errbuf_size) != 0) {
        goto Exit;
    }

    h2o_ssl_register_alpn_protocols(ctx, alpn_protocols);
    ret = ctx;
    ctx = NULL;

Exit:
    SSL_CTX_free(ctx); /* NULL-safe */
    return ret;
}
