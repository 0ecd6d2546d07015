/* SPDX-License-Identifier: MIT */
/* PPL internals: the compiled form of a policy, shared by the parser, criteria and evaluator. */
#ifndef AUTHZ_PPL_H
#define AUTHZ_PPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "authorize/policy.h"

#define PPL_MAX_CLAIM_DEPTH 5      /* nested levels of a claim name (Pomerium's limit) */
#define PPL_MAX_CLAIM_PATHS 4      /* literal, split on '/', on '.', on both */
#define PPL_MAX_TZ_TRANSITIONS 4096 /* in one TZif file */
#define PPL_MAX_TZ_TYPES 256
#define PPL_MAX_TZ_NAME 64
#define PPL_MAX_TZ_FILE (256 * 1024)
#define PPL_MAX_VALUE_LEN 4096     /* bytes in one string a criterion compares with */

/* every reason a criterion can give; a set of them is a bit mask, so combining never allocates */
typedef enum en_ppl_reason_t {
    PPL_R_ACCEPT,
    PPL_R_REJECT,
    PPL_R_USER_UNAUTHENTICATED,
    PPL_R_USER_OK,
    PPL_R_USER_UNAUTHORIZED,
    PPL_R_EMAIL_OK,
    PPL_R_EMAIL_UNAUTHORIZED,
    PPL_R_DOMAIN_OK,
    PPL_R_DOMAIN_UNAUTHORIZED,
    PPL_R_GROUPS_OK,
    PPL_R_GROUPS_UNAUTHORIZED,
    PPL_R_CLAIM_OK,
    PPL_R_CLAIM_UNAUTHORIZED,
    PPL_R_HTTP_METHOD_OK,
    PPL_R_HTTP_METHOD_UNAUTHORIZED,
    PPL_R_HTTP_PATH_OK,
    PPL_R_HTTP_PATH_UNAUTHORIZED,
    PPL_R_CORS_REQUEST,
    PPL_R_NON_CORS_REQUEST,
    PPL_R_SOURCE_IP_OK,
    PPL_R_SOURCE_IP_UNAUTHORIZED,
    PPL_R_DATE_OK,
    PPL_R_DATE_UNAUTHORIZED,
    PPL_R_DAY_OF_WEEK_OK,
    PPL_R_DAY_OF_WEEK_UNAUTHORIZED,
    PPL_R_TIME_OF_DAY_OK,
    PPL_R_TIME_OF_DAY_UNAUTHORIZED,
    PPL_R_COUNT
} ppl_reason_t;

typedef uint32_t ppl_reasons_t;
#define PPL_BIT(r) ((ppl_reasons_t)1 << (r))

extern const char *const ppl_reason_names[PPL_R_COUNT];

typedef struct st_ppl_result_t {
    bool value;
    ppl_reasons_t reasons;
} ppl_result_t;

/* everything compiled is allocated here and freed at once with the policy */
typedef struct st_ppl_arena_t {
    void **ptrs;
    size_t len, cap;
    json_t **jsons; /* references kept for compound values */
    size_t num_jsons, jsons_cap;
} ppl_arena_t;

void *ppl_alloc(ppl_arena_t *arena, size_t size); /* zeroed; aborts on out of memory */
char *ppl_strndup(ppl_arena_t *arena, const char *s, size_t len);
json_t *ppl_keep_json(ppl_arena_t *arena, const json_t *value); /* a deep copy, freed with it */
void ppl_arena_clear(ppl_arena_t *arena);

/* where compile errors go: "[file:line] name: reason (at where)" */
typedef struct st_ppl_compile_t {
    ppl_arena_t *arena;
    cmn_strlist_t *errors;
    const char *file;
    unsigned line;
    const char *name;  /* "routes[3].policy" */
    char where[256];   /* position inside the block, "allow.and[0]"; may be empty */
    size_t num_errors;
} ppl_compile_t;

void ppl_error(ppl_compile_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* a JSON value from the policy, ready to compare without looking anything up */
typedef struct st_ppl_value_t {
    json_type type;
    const char *str; /* JSON_STRING: lower-cased when the matcher ignores case */
    size_t len;
    double number;   /* JSON_INTEGER and JSON_REAL */
    json_t *json;    /* JSON_ARRAY and JSON_OBJECT: compared with json_equal (arena) */
} ppl_value_t;

typedef enum en_ppl_string_op_t {
    PPL_SM_IS,
    PPL_SM_NOT,
    PPL_SM_CONTAINS,
    PPL_SM_STARTS_WITH,
    PPL_SM_ENDS_WITH,
    PPL_SM_IN,
    PPL_SM_NOT_IN
} ppl_string_op_t;

typedef struct st_ppl_string_cond_t {
    ppl_string_op_t op;
    ppl_value_t value;  /* every op but in/not_in */
    ppl_value_t *list;  /* in, not_in */
    size_t list_len;
} ppl_string_cond_t;

/* all conditions must hold */
typedef struct st_ppl_string_matcher_t {
    ppl_string_cond_t *conds;
    size_t num_conds;
    bool fold_case;
} ppl_string_matcher_t;

typedef enum en_ppl_list_op_t { PPL_LM_HAS, PPL_LM_IS, PPL_LM_EXCLUDE } ppl_list_op_t;

typedef struct st_ppl_list_cond_t {
    ppl_list_op_t op;
    ppl_value_t value;
} ppl_list_cond_t;

typedef struct st_ppl_list_matcher_t {
    ppl_list_cond_t *conds;
    size_t num_conds;
} ppl_list_matcher_t;

/* what a list matcher looks at: a list of strings (groups) or a JSON value (a claim) */
typedef struct st_ppl_list_subject_t {
    const cmn_strlist_t *strings;
    const json_t *json; /* an array's elements, or a scalar as a list of one; NULL = empty */
} ppl_list_subject_t;

int ppl_string_matcher_compile(ppl_compile_t *c, const json_t *spec, bool fold_case,
                               ppl_string_matcher_t *out);
bool ppl_string_matcher_match(const ppl_string_matcher_t *m, const char *s, size_t len);
int ppl_list_matcher_compile(ppl_compile_t *c, const json_t *spec, ppl_list_matcher_t *out);
bool ppl_list_matcher_match(const ppl_list_matcher_t *m, const ppl_list_subject_t *subject);

/* source_ip: ranges kept as 16 bytes; IPv4 and IPv4-mapped IPv6 are one family */
typedef struct st_ppl_cidr_t {
    uint8_t addr[16]; /* masked */
    unsigned bits;    /* 0..32 for IPv4, 0..128 for IPv6 */
    bool v4;
} ppl_cidr_t;

typedef struct st_ppl_cidrs_t {
    ppl_cidr_t *items;
    size_t len;
} ppl_cidrs_t;

int ppl_cidrs_compile(ppl_compile_t *c, const json_t *spec, ppl_cidrs_t *out);
bool ppl_cidrs_match(const ppl_cidrs_t *cidrs, const struct sockaddr_storage *ip);

/* time zones read from the TZif database at compile time, converted without libc's state */
typedef struct st_ppl_tz_rule_t {
    char kind;           /* 'M' (month.week.day), 'J' (Julian 1..365, no Feb 29) or 'D' (0..365) */
    int month, week, day; /* 'M': month 1..12, week 1..5, weekday 0..6; 'J'/'D': day in day */
    int32_t time;        /* seconds after local midnight (may be negative or past 24 h) */
} ppl_tz_rule_t;

typedef struct st_ppl_tz_t {
    int64_t *times;      /* transition instants, ascending */
    uint8_t *type_of;    /* index into utoffs for each transition */
    size_t num_times;
    int32_t *utoffs;     /* seconds east of UTC of each local time type */
    size_t num_types;
    bool has_footer;     /* the POSIX TZ string after the v2 data, for later instants */
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    ppl_tz_rule_t start, end;
} ppl_tz_t;

int ppl_tz_load(ppl_compile_t *c, const char *name, ppl_tz_t *out);
int ppl_tz_parse_posix(const char *s, ppl_tz_t *out);
int ppl_tz_parse_tzif(ppl_arena_t *arena, const uint8_t *data, size_t len, ppl_tz_t *out);
int32_t ppl_tz_offset(const ppl_tz_t *tz, int64_t t);

typedef struct st_ppl_date_t {
    bool has_after, has_before;
    int64_t after, before; /* unix seconds */
} ppl_date_t;

typedef struct st_ppl_clock_t {
    const ppl_tz_t *tz;  /* NULL: UTC */
    uint8_t days;        /* day_of_week: bit 0 = Sunday */
    bool has_after, has_before;
    int32_t after, before; /* time_of_day: seconds after local midnight */
} ppl_clock_t;

int ppl_date_compile(ppl_compile_t *c, const json_t *spec, ppl_date_t *out);
bool ppl_date_match(const ppl_date_t *d, time_t now);
int ppl_day_of_week_compile(ppl_compile_t *c, const json_t *spec, ppl_clock_t *out);
int ppl_time_of_day_compile(ppl_compile_t *c, const json_t *spec, ppl_clock_t *out);
bool ppl_day_of_week_match(const ppl_clock_t *k, time_t now);
bool ppl_time_of_day_match(const ppl_clock_t *k, time_t now);
int ppl_parse_iso8601(const char *s, int64_t *out);
int ppl_parse_clock(const char *s, int32_t *out);
int64_t ppl_days_from_civil(int64_t y, unsigned m, unsigned d);

typedef enum en_ppl_kind_t {
    PPL_C_ACCEPT,
    PPL_C_REJECT,
    PPL_C_AUTHENTICATED_USER,
    PPL_C_USER,
    PPL_C_EMAIL,
    PPL_C_DOMAIN,
    PPL_C_GROUPS,
    PPL_C_CLAIM,
    PPL_C_HTTP_METHOD,
    PPL_C_HTTP_PATH,
    PPL_C_CORS_PREFLIGHT,
    PPL_C_SOURCE_IP,
    PPL_C_DATE,
    PPL_C_DAY_OF_WEEK,
    PPL_C_TIME_OF_DAY
} ppl_kind_t;

/* the claim name's candidate key paths, tried in order: the literal key first */
typedef struct st_ppl_claim_path_t {
    const char *segs[PPL_MAX_CLAIM_DEPTH];
    size_t num_segs;
} ppl_claim_path_t;

typedef struct st_ppl_criterion_t {
    ppl_kind_t kind;
    ppl_string_matcher_t string; /* user, email, domain, http_method, http_path */
    ppl_list_matcher_t list;     /* groups, claim */
    ppl_claim_path_t claim_paths[PPL_MAX_CLAIM_PATHS];
    size_t num_claim_paths;
    ppl_cidrs_t cidrs;
    ppl_date_t date;
    ppl_clock_t clock;
} ppl_criterion_t;

/* compiles one criterion object's key and value; returns -1 after reporting the error */
int ppl_criterion_compile(ppl_compile_t *c, const char *key, const json_t *value,
                          ppl_criterion_t *out);
bool ppl_criterion_needs_session(const ppl_criterion_t *crit);

/* the request facts one evaluation looks at */
typedef struct st_ppl_env_t {
    const authz_policy_input_t *in;
    const cmn_session_t *session;
} ppl_env_t;

ppl_result_t ppl_criterion_eval(const ppl_criterion_t *crit, const ppl_env_t *env);

typedef enum en_ppl_op_t { PPL_OP_AND, PPL_OP_OR, PPL_OP_NOT, PPL_OP_NOR } ppl_op_t;

typedef struct st_ppl_block_t {
    ppl_op_t op;
    ppl_criterion_t *criteria;
    size_t num_criteria;
} ppl_block_t;

/* every operator block of every rule with one action; the blocks OR together */
typedef struct st_ppl_action_t {
    ppl_block_t *blocks;
    size_t num_blocks;
    size_t cap;
} ppl_action_t;

struct st_authz_policy_t {
    ppl_arena_t arena;
    ppl_action_t allow;
    ppl_action_t deny;
    bool needs_session;
};

/* appends the rules of `ppl` (a rules object or a list of them) to `policy` */
int ppl_compile_rules(ppl_compile_t *c, const json_t *ppl, authz_policy_t *policy);

ppl_result_t ppl_block_eval(const ppl_block_t *block, const ppl_env_t *env);
ppl_result_t ppl_action_eval(const ppl_action_t *action, const ppl_env_t *env);

#endif
