/* SPDX-License-Identifier: MIT */
/* Reads the config file into a libyaml document and converts policy blocks to JSON. */
#include "common/config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

/* reads at most CMN_CONFIG_MAX_BYTES + 1 so that a file that grew while read is still refused */
static char *read_file(cfg_ctx_t *ctx, size_t *outlen)
{
    cfg_src_t src = {ctx->path, 0, NULL};
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd;

    /* O_NONBLOCK: a FIFO or device given as the config must not block the open itself */
    fd = open(ctx->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        cfg_error(ctx, &src, "config", "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cfg_error(ctx, &src, "config", "not a regular file");
        goto Exit;
    }
    if (st.st_size > CMN_CONFIG_MAX_BYTES) {
        cfg_error(ctx, &src, "config", "larger than %d bytes (CMN_CONFIG_MAX_BYTES)",
                  CMN_CONFIG_MAX_BYTES);
        goto Exit;
    }

    buf = cfg_alloc(CMN_CONFIG_MAX_BYTES + 2);
    while (len <= CMN_CONFIG_MAX_BYTES) {
        ssize_t n = read(fd, buf + len, CMN_CONFIG_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            cfg_error(ctx, &src, "config", "cannot read: %s", strerror(errno));
            free(buf);
            buf = NULL;
            goto Exit;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    if (len > CMN_CONFIG_MAX_BYTES) {
        cfg_error(ctx, &src, "config", "larger than %d bytes (CMN_CONFIG_MAX_BYTES)",
                  CMN_CONFIG_MAX_BYTES);
        free(buf);
        buf = NULL;
        goto Exit;
    }
    *outlen = len;

Exit:
    close(fd);
    return buf;
}

/*
 * libyaml builds the whole document however deep it is nested, and that costs time quadratic in
 * the depth; one event pass first refuses anything nested deeper than any key of ours can be.
 */
static int check_depth(cfg_ctx_t *ctx, const char *buf, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t event;
    int depth = 0, ret = 0;

    if (yaml_parser_initialize(&parser) == 0) {
        cfg_error(ctx, NULL, "config", "cannot initialise the YAML parser");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    for (;;) {
        if (yaml_parser_parse(&parser, &event) == 0) {
            break; /* the document load that follows reports the syntax error with its line */
        }
        yaml_event_type_t type = event.type;
        unsigned line = (unsigned)event.start_mark.line + 1;
        yaml_event_delete(&event);
        if (type == YAML_STREAM_END_EVENT) {
            break;
        }
        if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
            depth++;
        } else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        if (depth > CMN_CONFIG_MAX_DEPTH + 4) {
            cfg_src_t src = {ctx->path, line, NULL};
            cfg_error(ctx, &src, "yaml", "nested deeper than %d levels (CMN_CONFIG_MAX_DEPTH)",
                      CMN_CONFIG_MAX_DEPTH + 4);
            ret = -1;
            break;
        }
    }
    yaml_parser_delete(&parser);
    return ret;
}

int cfg_yaml_load(cfg_ctx_t *ctx)
{
    yaml_parser_t parser;
    size_t len = 0;
    char *buf;
    int ret = -1;

    buf = read_file(ctx, &len);
    if (buf == NULL) {
        return -1;
    }
    if (check_depth(ctx, buf, len) != 0) {
        goto Exit;
    }
    if (yaml_parser_initialize(&parser) == 0) {
        cfg_error(ctx, NULL, "config", "cannot initialise the YAML parser");
        goto Exit;
    }

    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (yaml_parser_load(&parser, &ctx->doc) == 0) {
        cfg_src_t src = {ctx->path, (unsigned)parser.problem_mark.line + 1, NULL};
        cfg_error(ctx, &src, "yaml", "%s%s%s", parser.problem != NULL ? parser.problem : "error",
                  parser.context != NULL ? " " : "", parser.context != NULL ? parser.context : "");
        yaml_parser_delete(&parser);
        goto Exit;
    }
    yaml_parser_delete(&parser);
    ctx->have_doc = true;
    ret = 0;

Exit:
    /* the text holds the secrets as written */
    OPENSSL_cleanse(buf, len);
    free(buf);
    return ret;
}

static bool scalar_is_int(const char *s)
{
    size_t i = s[0] == '-' ? 1 : 0;

    if (s[i] == '\0' || strlen(s + i) > 18) {
        return false;
    }
    for (; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

/* policy scalars: quoted text stays text; plain true/false, null and integers get their type */
static json_t *scalar_to_json(const yaml_node_t *node)
{
    const char *s = (const char *)node->data.scalar.value;

    if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (strcasecmp(s, "true") == 0) {
            return json_true();
        }
        if (strcasecmp(s, "false") == 0) {
            return json_false();
        }
        if (cfg_node_is_null(node)) {
            return json_null();
        }
        if (scalar_is_int(s)) {
            return json_integer(strtoll(s, NULL, 10));
        }
    }
    return json_stringn(s, node->data.scalar.length);
}

static json_t *node_to_json(cfg_ctx_t *ctx, const char *name, yaml_node_t *node, unsigned depth);

static json_t *mapping_to_json(cfg_ctx_t *ctx, const char *name, yaml_node_t *node, unsigned depth)
{
    json_t *obj = json_object();
    json_t *ret = NULL;
    yaml_node_pair_t *pair;

    if (obj == NULL) {
        return NULL;
    }
    for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(&ctx->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(&ctx->doc, pair->value);
        cfg_src_t src = cfg_src_of_node(ctx, k);
        json_t *jv;

        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) {
            cfg_error(ctx, &src, name, "map keys must be strings");
            goto Exit;
        }
        if (json_object_get(obj, (const char *)k->data.scalar.value) != NULL) {
            cfg_error(ctx, &src, name, "duplicate key \"%.64s\"", k->data.scalar.value);
            goto Exit;
        }
        jv = node_to_json(ctx, name, v, depth + 1);
        if (jv == NULL || json_object_set_new(obj, (const char *)k->data.scalar.value, jv) != 0) {
            goto Exit;
        }
    }
    ret = obj;
    obj = NULL;

Exit:
    json_decref(obj);
    return ret;
}

static json_t *sequence_to_json(cfg_ctx_t *ctx, const char *name, yaml_node_t *node, unsigned depth)
{
    json_t *arr = json_array();
    yaml_node_item_t *item;

    if (arr == NULL) {
        return NULL;
    }
    for (item = node->data.sequence.items.start; item < node->data.sequence.items.top; item++) {
        yaml_node_t *v = yaml_document_get_node(&ctx->doc, *item);
        json_t *jv = v != NULL ? node_to_json(ctx, name, v, depth + 1) : NULL;

        if (jv == NULL || json_array_append_new(arr, jv) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* aliases can make a small file expand into a huge tree; depth and budget bound both */
static json_t *node_to_json(cfg_ctx_t *ctx, const char *name, yaml_node_t *node, unsigned depth)
{
    cfg_src_t src = cfg_src_of_node(ctx, node);

    if (depth > CMN_CONFIG_MAX_DEPTH) {
        cfg_error(ctx, &src, name, "nested deeper than %d (CMN_CONFIG_MAX_DEPTH)",
                  CMN_CONFIG_MAX_DEPTH);
        return NULL;
    }
    if (ctx->json_budget == 0) {
        cfg_error(ctx, &src, name, "more than %d values (CMN_CONFIG_MAX_JSON_NODES)",
                  CMN_CONFIG_MAX_JSON_NODES);
        return NULL;
    }
    ctx->json_budget--;

    switch (node->type) {
    case YAML_SCALAR_NODE: {
        json_t *v = scalar_to_json(node);
        if (v == NULL) {
            cfg_error(ctx, &src, name, "not valid UTF-8");
        }
        return v;
    }
    case YAML_MAPPING_NODE:
        return mapping_to_json(ctx, name, node, depth);
    case YAML_SEQUENCE_NODE:
        return sequence_to_json(ctx, name, node, depth);
    default:
        cfg_error(ctx, &src, name, "empty node");
        return NULL;
    }
}

json_t *cfg_yaml_to_json(cfg_ctx_t *ctx, const char *name, yaml_node_t *node)
{
    return node_to_json(ctx, name, node, 0);
}

void cfg_yaml_cleanse(yaml_node_t *node)
{
    if (node != NULL && node->type == YAML_SCALAR_NODE) {
        OPENSSL_cleanse(node->data.scalar.value, node->data.scalar.length);
    }
}
