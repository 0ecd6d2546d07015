/* SPDX-License-Identifier: MIT */
/* Server-side TLS contexts for the listeners: certificate chain, key, ALPN, client certificates. */
#ifndef CMN_TLS_H
#define CMN_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>
#include "common/server.h"

/**
 * Builds an SSL_CTX (TLS 1.2 and later, ALPN h2 and http/1.1) from the config's
 * certificate_file (chain) and certificate_key_file; CMN_TLS_MUTUAL also demands a client
 * certificate that chains to certificate_authority_file. Returns the context (caller frees with
 * SSL_CTX_free), or NULL with a message naming the file and OpenSSL's reason in `errbuf`.
 */
SSL_CTX *cmn_tls_server_ctx(const cmn_config_t *config, cmn_tls_mode_t mode, char *errbuf,
                            size_t errbuf_size);

#endif
