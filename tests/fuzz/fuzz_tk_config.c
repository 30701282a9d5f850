/* The time node's config keys (hosts_file, crosscheck) are operator input: any text that
 * libconfig accepts must be taken or refused with FILE:LINE, never crash, and what is taken must
 * be within the documented ranges. `tbnode check-config` (tb_tk_config_check) reads the same
 * text through every section's parser: it must count every error it reports, report one when
 * the time node's keys are refused, and say each in one line; with TB_TK_CHECK_ALL (every
 * error, settings at fault set aside one after another) at least as many. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/timekeeper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libconfig 1.5 leaks a string token's buffer on some syntax errors (see fuzz_node_config.c). */
const char *__lsan_default_suppressions(void)
{
    return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

static unsigned said_errors;

static void say(void *arg, int is_error, const char *text)
{
    (void)arg;
    if (!text[0] || strchr(text, '\n'))
        abort();
    said_errors += is_error != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static tb_node_config cfg;
    tb_node_config_defaults(&cfg);
    char err[TB_NODE_ERR_MAX];
    if (tb_node_config_load_string(&cfg, text, "fuzz.conf", err, sizeof(err)) == TB_OK) {
        tb_tk_config t;
        err[0] = '\0';
        said_errors = 0;
        char summary[512];
        unsigned errors = tb_tk_config_check(&cfg, 0, say, NULL, summary, sizeof(summary));
        if (errors != said_errors)
            abort();
        if (tb_tk_config_parse(&cfg, &t, err, sizeof(err)) != TB_OK) {
            if (strncmp(err, "fuzz.conf:", 10) != 0 || errors == 0)
                abort();
        } else if (t.xc.min_agree < 1 || t.xc.min_agree > 64 || t.xc.drift_ppb > 1000000 ||
                   t.xc.window_ns < 10 * 1000000000LL || t.peer_interval_s < 1 ||
                   t.min_interval_ms < 10 || t.retention_s < 60) {
            abort();
        }
        /* every error (settings at fault set aside, cfg->lc changed: last): at least the
         * first of each section, each said once */
        said_errors = 0;
        unsigned all = tb_tk_config_check(&cfg, TB_TK_CHECK_ALL, say, NULL, NULL, 0);
        if (all != said_errors || all < errors)
            abort();
    }
    tb_node_config_free(&cfg);
    free(text);
    return 0;
}
