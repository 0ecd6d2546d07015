/* SPDX-License-Identifier: MIT */
/* PPL evaluator: and/or/not/nor over criterion results, operator blocks OR-ed per action. */
#include "authorize/ppl.h"

/*
 * policy-cases.md §2.5. Every criterion is evaluated (no short cut) because the reasons of the
 * ones that did not decide still matter: "user-unauthenticated" anywhere in the final result
 * means login. `not` inverts each result and ANDs them (so it is NOR) and `nor` inverts each and
 * ORs them (so it is NAND); an inverted result keeps its reasons.
 */
ppl_result_t ppl_block_eval(const ppl_block_t *block, const ppl_env_t *env)
{
    bool invert = block->op == PPL_OP_NOT || block->op == PPL_OP_NOR;
    bool conjunction = block->op == PPL_OP_AND || block->op == PPL_OP_NOT;
    ppl_reasons_t if_true = 0, if_false = 0;
    size_t num_true = 0;
    ppl_result_t out;

    for (size_t i = 0; i < block->num_criteria; i++) {
        ppl_result_t r = ppl_criterion_eval(&block->criteria[i], env);
        if (r.value != invert) {
            num_true++;
            if_true |= r.reasons;
        } else {
            if_false |= r.reasons;
        }
    }

    /*
     * and: when all hold, the reasons of all (which are the true ones), else those of the failing
     * ones; or: when one holds, the reasons of the true ones, else of all (the false ones)
     */
    out.value = conjunction ? num_true == block->num_criteria : num_true > 0;
    out.reasons = out.value ? if_true : if_false;
    return out;
}

/* the blocks of one action OR together; no block at all is (false, {}) */
ppl_result_t ppl_action_eval(const ppl_action_t *action, const ppl_env_t *env)
{
    ppl_reasons_t if_true = 0, if_false = 0;
    bool any = false;
    ppl_result_t out;

    for (size_t i = 0; i < action->num_blocks; i++) {
        ppl_result_t r = ppl_block_eval(&action->blocks[i], env);
        if (r.value) {
            any = true;
            if_true |= r.reasons;
        } else {
            if_false |= r.reasons;
        }
    }
    out.value = any;
    out.reasons = any ? if_true : if_false;
    return out;
}
