/* SPDX-License-Identifier: MIT */
/* Builds, signs and caches the identity assertion, and renders the claim headers. */
#include "authorize/assertion.h"

#include <stdlib.h>
#include <string.h>
#include "common/cookie.h"
#include "common/crypto.h"

typedef struct st_assertion_slot_t {
    char sid[CMN_SESSION_ID_MAX + 1];
    uint64_t version;
    char audience[256];
    size_t route_index;
    uint64_t table_generation;
    char *jwt;
    uint64_t exp;
    bool truncated;
} assertion_slot_t;

struct st_authz_assertion_cache_t {
    assertion_slot_t slots[AUTHZ_ASSERTION_CACHE_SLOTS];
};

static bool in_list(const cmn_strlist_t *list, const char *s)
{
    for (size_t i = 0; i < list->len; i++) {
        if (strcmp(list->items[i], s) == 0) {
            return true;
        }
    }
    return false;
}

/* jwt_groups_filter, global and per route: a group passes when either list names it */
static bool group_passes(const authz_assertion_params_t *p, const char *group)
{
    const cmn_strlist_t *global = &p->config->jwt_groups_filter;
    const cmn_strlist_t *route = p->route != NULL ? &p->route->jwt_groups_filter : NULL;

    if (global->len == 0 && (route == NULL || route->len == 0)) {
        return true;
    }
    return in_list(global, group) || (route != NULL && in_list(route, group));
}

static json_t *groups_json(const authz_assertion_params_t *p)
{
    json_t *groups = json_array();

    for (size_t i = 0; i < p->session->groups.len; i++) {
        const char *g = p->session->groups.items[i];
        if (group_passes(p, g)) {
            json_array_append_new(groups, json_string(g));
        }
    }
    return groups;
}

static json_t *string_or_empty(const char *s)
{
    return json_string(s != NULL ? s : "");
}

json_t *authz_assertion_claims(const authz_assertion_params_t *p, bool with_groups)
{
    return authz_assertion_claims_shrunk(p, with_groups ? AUTHZ_CLAIMS_FULL
                                                        : AUTHZ_CLAIMS_NO_GROUPS);
}

json_t *authz_assertion_claims_shrunk(const authz_assertion_params_t *p,
                                      authz_claims_size_t size)
{
    bool with_groups = size == AUTHZ_CLAIMS_FULL;
    const cmn_session_t *s = p->session;
    json_t *claims = json_object();
    char jti[CMN_ID_LEN + 1];
    uint64_t exp = p->now + AUTHZ_ASSERTION_TTL_S;

    if (s->expiry < exp) {
        exp = s->expiry;
    }
    cmn_random_id(jti);

    json_object_set_new(claims, "iss", json_string(p->config->authenticate_service_url.host));
    json_object_set_new(claims, "aud", json_stringn(p->audience.base, p->audience.len));
    json_object_set_new(claims, "sub", string_or_empty(s->user_id));
    json_object_set_new(claims, "user", string_or_empty(s->user_id));
    json_object_set_new(claims, "email", string_or_empty(s->email));
    if (size == AUTHZ_CLAIMS_NO_GROUPS_NO_NAME) {
        json_object_set_new(claims, "name_truncated", json_true());
    } else {
        json_object_set_new(claims, "name", string_or_empty(s->name));
    }
    json_object_set_new(claims, "sid", string_or_empty(s->id));
    json_object_set_new(claims, "jti", json_string(jti));
    json_object_set_new(claims, "iat", json_integer((json_int_t)p->now));
    json_object_set_new(claims, "exp", json_integer((json_int_t)exp));
    if (with_groups) {
        json_object_set_new(claims, "groups", groups_json(p));
    } else {
        json_object_set_new(claims, "groups_truncated", json_true());
    }
    return claims;
}

static char *sign_claims(const authz_assertion_params_t *p, authz_claims_size_t size)
{
    json_t *claims = authz_assertion_claims_shrunk(p, size);
    char *jwt = cmn_signer_sign(p->signer, claims);

    json_decref(claims);
    return jwt;
}

/* groups go first, then the display name: neither is needed to identify the user */
char *authz_assertion_mint(const authz_assertion_params_t *p, bool *truncated)
{
    static const authz_claims_size_t sizes[] = {AUTHZ_CLAIMS_FULL, AUTHZ_CLAIMS_NO_GROUPS,
                                                AUTHZ_CLAIMS_NO_GROUPS_NO_NAME};

    *truncated = false;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *jwt = sign_claims(p, sizes[i]);
        if (jwt == NULL) {
            *truncated = false; /* signing failed, whatever the size */
            return NULL;
        }
        if (p->max_len == 0 || strlen(jwt) <= p->max_len) {
            return jwt;
        }
        free(jwt);
        *truncated = true;
    }
    return NULL; /* even the smallest form is too long: *truncated says so */
}

authz_assertion_cache_t *authz_assertion_cache_create(void)
{
    authz_assertion_cache_t *cache = calloc(1, sizeof(*cache));

    if (cache == NULL) {
        h2o_fatal("out of memory");
    }
    return cache;
}

void authz_assertion_cache_destroy(authz_assertion_cache_t *cache)
{
    if (cache == NULL) {
        return;
    }
    for (size_t i = 0; i < AUTHZ_ASSERTION_CACHE_SLOTS; i++) {
        free(cache->slots[i].jwt);
    }
    free(cache);
}

static size_t route_index_of(const authz_assertion_params_t *p)
{
    return p->route != NULL ? p->route->index : SIZE_MAX;
}

static uint64_t slot_hash(const authz_assertion_params_t *p)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the key */

    for (const char *c = p->session->id; *c != '\0'; c++) {
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    }
    for (size_t i = 0; i < p->audience.len; i++) {
        h = (h ^ (unsigned char)p->audience.base[i]) * 1099511628211ULL;
    }
    h = (h ^ p->session_version) * 1099511628211ULL;
    return (h ^ route_index_of(p)) * 1099511628211ULL;
}

static bool slot_matches(const assertion_slot_t *slot, const authz_assertion_params_t *p)
{
    return slot->jwt != NULL && slot->version == p->session_version &&
           slot->route_index == route_index_of(p) &&
           slot->table_generation == p->table_generation &&
           strcmp(slot->sid, p->session->id) == 0 &&
           strlen(slot->audience) == p->audience.len &&
           memcmp(slot->audience, p->audience.base, p->audience.len) == 0 &&
           p->now + AUTHZ_ASSERTION_REUSE_MARGIN_S < slot->exp;
}

static void slot_store(assertion_slot_t *slot, const authz_assertion_params_t *p, char *jwt,
                       bool truncated)
{
    uint64_t exp = p->now + AUTHZ_ASSERTION_TTL_S;

    free(slot->jwt);
    slot->jwt = jwt;
    slot->truncated = truncated;
    slot->version = p->session_version;
    slot->route_index = route_index_of(p);
    slot->table_generation = p->table_generation;
    slot->exp = p->session->expiry < exp ? p->session->expiry : exp;
    snprintf(slot->sid, sizeof(slot->sid), "%s", p->session->id);
    snprintf(slot->audience, sizeof(slot->audience), "%.*s", (int)p->audience.len,
             p->audience.base);
}

const char *authz_assertion_get(authz_assertion_cache_t *cache, const authz_assertion_params_t *p,
                                bool *truncated)
{
    assertion_slot_t *slot = &cache->slots[slot_hash(p) % AUTHZ_ASSERTION_CACHE_SLOTS];
    char *jwt;

    if (slot_matches(slot, p)) {
        *truncated = slot->truncated;
        return slot->jwt;
    }

    jwt = authz_assertion_mint(p, truncated);
    if (jwt == NULL) {
        return NULL;
    }
    /* ids and audiences too long for a slot are served but not kept */
    if (strlen(p->session->id) > CMN_SESSION_ID_MAX || p->audience.len >= sizeof(slot->audience)) {
        free(slot->jwt);
        slot->jwt = jwt;
        slot->exp = 0;
        return jwt;
    }
    slot_store(slot, p, jwt, *truncated);
    return jwt;
}

/* claim headers */

static bool is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* "email" -> "X-Pomerium-Claim-Email"; NULL when the name is not a header token */
static h2o_iovec_t claim_header_name(h2o_mem_pool_t *pool, const char *claim)
{
    static const char prefix[] = "X-Pomerium-Claim-";
    size_t len = strlen(claim);
    h2o_iovec_t name;
    bool upper = true;

    if (len == 0 || len > 128) {
        return h2o_iovec_init(NULL, 0);
    }
    name = h2o_concat(pool, h2o_iovec_init(H2O_STRLIT(prefix)), h2o_iovec_init(claim, len));
    for (size_t i = sizeof(prefix) - 1; i < name.len; i++) {
        char c = name.base[i];
        if (!is_token_char(c)) {
            return h2o_iovec_init(NULL, 0);
        }
        name.base[i] = upper && c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
        upper = c == '-';
    }
    return name;
}

static bool header_name_ok(const char *name)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > 128) {
        return false;
    }
    for (const char *c = name; *c != '\0'; c++) {
        if (!is_token_char(*c)) {
            return false;
        }
    }
    return true;
}

/* appends a claim value, minus control bytes, to buf; false when it would pass the limit */
static bool append_clean(char *buf, size_t *len, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) {
            continue;
        }
        if (*len >= AUTHZ_CLAIM_VALUE_MAX) {
            return false;
        }
        buf[(*len)++] = (char)c;
    }
    return true;
}

static bool append_json_value(char *buf, size_t *len, const json_t *v)
{
    char *dumped;
    bool ok;

    if (json_is_string(v)) {
        return append_clean(buf, len, json_string_value(v));
    }
    dumped = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (dumped == NULL) {
        return false;
    }
    ok = append_clean(buf, len, dumped);
    free(dumped);
    return ok;
}

static const json_t *claim_value(const cmn_session_t *s, const char *claim, json_t **owned)
{
    *owned = NULL;
    if (strcmp(claim, "email") == 0 && s->email != NULL) {
        return *owned = json_string(s->email);
    }
    if ((strcmp(claim, "user") == 0 || strcmp(claim, "sub") == 0) && s->user_id != NULL) {
        return *owned = json_string(s->user_id);
    }
    if (strcmp(claim, "name") == 0 && s->name != NULL) {
        return *owned = json_string(s->name);
    }
    if (strcmp(claim, "groups") == 0) {
        *owned = json_array();
        for (size_t i = 0; i < s->groups.len; i++) {
            json_array_append_new(*owned, json_string(s->groups.items[i]));
        }
        return *owned;
    }
    return json_is_object(s->claims) ? json_object_get(s->claims, claim) : NULL;
}

/*
 * The session's own fields rendered without building JSON for them (the hot path): true when
 * `claim` is one of them, with `*ok` saying whether it fits; false to read it from the claims.
 * Renders exactly what claim_value's JSON would.
 */
static bool render_field(const cmn_session_t *s, const char *claim, char *buf, size_t *len,
                         bool *ok)
{
    const char *field = NULL;

    if (strcmp(claim, "groups") == 0) {
        *ok = true;
        for (size_t i = 0; i < s->groups.len && *ok; i++) {
            *ok = (i == 0 || append_clean(buf, len, ",")) &&
                  append_clean(buf, len, s->groups.items[i]);
        }
        return true;
    }
    if (strcmp(claim, "email") == 0) {
        field = s->email;
    } else if (strcmp(claim, "user") == 0 || strcmp(claim, "sub") == 0) {
        field = s->user_id;
    } else if (strcmp(claim, "name") == 0) {
        field = s->name;
    }
    if (field == NULL) {
        return false;
    }
    *ok = append_clean(buf, len, field);
    return true;
}

/* the header value for one claim, in the pool; {NULL, 0} when absent or too long */
static h2o_iovec_t render_claim(h2o_mem_pool_t *pool, const cmn_session_t *s, const char *claim)
{
    json_t *owned = NULL;
    char *buf = h2o_mem_alloc_pool(pool, AUTHZ_CLAIM_VALUE_MAX + 1);
    size_t len = 0;
    const json_t *v = NULL;
    bool ok = false;
    size_t i;
    json_t *element;

    if (render_field(s, claim, buf, &len, &ok)) {
        goto Exit;
    }
    v = claim_value(s, claim, &owned);
    ok = v != NULL && !json_is_null(v);
    if (ok && json_is_array(v)) {
        json_array_foreach(v, i, element) {
            bool sep_ok = i == 0 || append_clean(buf, &len, ",");
            if (!sep_ok || !append_json_value(buf, &len, element)) {
                ok = false;
                break;
            }
        }
    } else if (ok) {
        ok = append_json_value(buf, &len, v);
    }

Exit:
    json_decref(owned);
    if (!ok) {
        return h2o_iovec_init(NULL, 0);
    }
    buf[len] = '\0';
    return h2o_iovec_init(buf, len);
}

static size_t add_claim_header(h2o_mem_pool_t *pool, const cmn_session_t *s, h2o_iovec_t name,
                               const char *claim, size_t *budget, authz_header_t *out)
{
    h2o_iovec_t value;
    size_t cost;

    if (name.base == NULL) {
        return 0;
    }
    value = render_claim(pool, s, claim);
    if (value.base == NULL) {
        return 0;
    }
    cost = name.len + value.len + 4;
    if (cost > *budget) {
        return 0;
    }
    *budget -= cost;
    *out = (authz_header_t){.name = name, .value = value};
    return 1;
}

size_t authz_claim_headers(h2o_mem_pool_t *pool, const cmn_config_t *config,
                           const cmn_session_t *session, size_t budget,
                           authz_header_t out[AUTHZ_CLAIM_HEADERS_MAX])
{
    size_t n = 0;

    if (json_is_object(config->jwt_claims_headers_map)) {
        const char *header;
        json_t *claim;
        json_object_foreach(config->jwt_claims_headers_map, header, claim) {
            if (n == AUTHZ_CLAIM_HEADERS_MAX || !json_is_string(claim) || !header_name_ok(header)) {
                continue;
            }
            n += add_claim_header(pool, session, h2o_strdup(pool, header, SIZE_MAX),
                                  json_string_value(claim), &budget, &out[n]);
        }
        return n;
    }

    for (size_t i = 0; i < config->jwt_claims_headers.len && n < AUTHZ_CLAIM_HEADERS_MAX; i++) {
        const char *claim = config->jwt_claims_headers.items[i];
        n += add_claim_header(pool, session, claim_header_name(pool, claim), claim, &budget,
                              &out[n]);
    }
    return n;
}
