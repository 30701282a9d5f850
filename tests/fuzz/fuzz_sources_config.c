/* Fuzzes the sources list parser (and through it the host:port splitter and the base64 key
 * decoder) on setting trees built from the input bytes with libconfig's setting API. The tree
 * is built rather than parsed from text because libconfig 1.5's own scanner leaks a buffer on
 * a syntax error inside a string, which is not ours to find again and again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sources/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const words[] = {"ntp",
                                    "pool",
                                    "roughtime",
                                    "peer",
                                    "127.0.0.71:11123",
                                    "[::1]:123",
                                    "pool.example",
                                    "a:0",
                                    "[::1",
                                    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                                    "sock",
                                    "pps",
                                    "/run/gps.sock",
                                    "/dev/pps0",
                                    "clear"};

typedef struct in {
    const uint8_t *p;
    size_t n;
} in;

static unsigned take(in *s)
{
    if (s->n == 0)
        return 0;
    s->n--;
    return *s->p++;
}

static void add_string(in *s, config_setting_t *parent, const char *key)
{
    config_setting_t *v = config_setting_add(parent, key, CONFIG_TYPE_STRING);
    if (!v)
        return;
    unsigned how = take(s);
    if (how < 200) {
        config_setting_set_string(v, words[how % (sizeof(words) / sizeof(words[0]))]);
        return;
    }
    char buf[300];
    size_t len = take(s) + 30u;
    size_t i = 0;
    for (; i < len && s->n; i++) {
        buf[i] = (char)take(s);
        if (!buf[i])
            buf[i] = 'x';
    }
    buf[i] = 0;
    config_setting_set_string(v, buf);
}

static void add_member(in *s, config_setting_t *entry)
{
    /* One more than the known keys: the extra one is unknown. */
    unsigned k = take(s) % (TB_SOURCES_CONFIG_NKEYS + 1);
    const char *key = k < TB_SOURCES_CONFIG_NKEYS ? tb_sources_config_keys[k] : "bogus";
    unsigned type = take(s) % 4;
    if (type == 0) {
        config_setting_t *v = config_setting_add(entry, key, CONFIG_TYPE_INT);
        if (v) {
            unsigned b[4] = {take(s), take(s), take(s), take(s)};
            config_setting_set_int(v, (int)(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]));
        }
    } else if (type == 1) {
        config_setting_t *v = config_setting_add(entry, key, CONFIG_TYPE_INT);
        if (v)
            config_setting_set_int(v, (int)take(s) - 16);
    } else if (type == 2) {
        add_string(s, entry, key);
    } else {
        (void)config_setting_add(entry, key, take(s) & 1 ? CONFIG_TYPE_BOOL : CONFIG_TYPE_GROUP);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in s = {data, size};
    config_t cfg;
    config_init(&cfg);
    unsigned top = take(&s) % 16;
    int list_type = top == 0 ? CONFIG_TYPE_GROUP : top == 1 ? CONFIG_TYPE_INT : CONFIG_TYPE_LIST;
    config_setting_t *list = config_setting_add(config_root_setting(&cfg), "sources", list_type);
    config_setting_t *entry = NULL;
    while (s.n && list && list_type != CONFIG_TYPE_INT) {
        unsigned op = take(&s);
        if (!entry || op % 8 == 0) {
            int t = op % 32 == 8 ? CONFIG_TYPE_INT : CONFIG_TYPE_GROUP;
            entry = config_setting_add(list, list_type == CONFIG_TYPE_GROUP ? "e" : NULL, t);
            if (entry && t != CONFIG_TYPE_GROUP)
                entry = NULL;
            if (!entry && list_type == CONFIG_TYPE_GROUP)
                break;
            continue;
        }
        add_member(&s, entry);
    }
    tb_source_config_list l;
    char err[256];
    if (tb_sources_config_parse(list, &l, err, sizeof(err)) == 0) {
        tb_sources_diff d;
        if (tb_sources_diff_compute(&l, &l, &d) == 0) {
            if (d.n_keep != l.n)
                __builtin_trap(); /* a list is unchanged against itself */
            tb_sources_diff_free(&d);
        }
        tb_sources_config_free(&l);
    }
    config_destroy(&cfg);
    return 0;
}
