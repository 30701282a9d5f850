/* Config text is operator input: the loader must reject, never crash, on any bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libconfig 1.5 (Debian 12) leaks the buffer of a string token when a syntax error follows it
 * (`a "x"`, `""""`): its grammar frees no semantic value on error. tbnode exits on a bad config, so
 * the leak is bounded; only those allocation sites in its lexer are suppressed, every other leak
 * still counts. The suppressions match function names, so they need llvm-symbolizer (package
 * llvm, installed by scripts/setup). */
const char *__lsan_default_suppressions(void)
{
    return "leak:strbuf_append\nleak:libconfig_yylex\n";
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
    err[0] = '\0';
    if (tb_node_config_load_string(&cfg, text, "fuzz.conf", err, sizeof(err)) != TB_OK) {
        if (strncmp(err, "fuzz.conf:", 10) != 0)
            abort(); /* every error names the file */
    } else if (cfg.npeers > TB_NODE_MAX_SEEDS) {
        abort();
    }
    tb_node_config_free(&cfg);
    free(text);
    return 0;
}
