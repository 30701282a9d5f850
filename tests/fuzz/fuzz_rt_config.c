/* Fuzzes the node's `roughtime` group parser (and through it the listen-address parser) on
 * setting trees built from the input with libconfig's setting API: libconfig 1.5's own scanner
 * leaks on some syntax errors inside strings, which is not ours to find again and again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "roughtime/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const words[] = {
    "127.0.0.1:2002", "[::1]:2002", "0.0.0.0:0",   "[::1]",          "1.2.3.4:", ":80",
    "[]:1",           "rt.key",     "/abs/rt.key", "127.0.0.1:99999"};

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

static void set_string(in *s, config_setting_t *v)
{
    unsigned how = take(s);
    if (how < 200) {
        config_setting_set_string(v, words[how % (sizeof(words) / sizeof(words[0]))]);
        return;
    }
    char buf[1200];
    size_t len = take(s) * 4u + 1u; /* up to past the path and address caps */
    size_t i = 0;
    for (; i < len && s->n; i++) {
        buf[i] = (char)take(s);
        if (!buf[i])
            buf[i] = ':';
    }
    buf[i] = 0;
    config_setting_set_string(v, buf);
}

static void add_member(in *s, config_setting_t *g)
{
    /* One more than the known keys: the extra one is unknown. */
    unsigned k = take(s) % (TB_RT_CONFIG_NKEYS + 1);
    const char *key = k < TB_RT_CONFIG_NKEYS ? tb_rt_config_keys[k] : "bogus";
    unsigned type = take(s) % 5;
    static const int types[] = {CONFIG_TYPE_INT, CONFIG_TYPE_INT64, CONFIG_TYPE_STRING,
                                CONFIG_TYPE_BOOL, CONFIG_TYPE_FLOAT};
    config_setting_t *v = config_setting_add(g, key, types[type]);
    if (!v)
        return;
    unsigned b[8];
    for (int i = 0; i < 8; i++)
        b[i] = take(s);
    if (type == 0)
        config_setting_set_int(v, (int)(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]) >> (b[4] % 32));
    else if (type == 1)
        config_setting_set_int64(v, (long long)((uint64_t)b[0] << 56 | (uint64_t)b[1] << 40 |
                                                (uint64_t)b[2] << 24 | b[3]) >>
                                        (b[4] % 64));
    else if (type == 2)
        set_string(s, v);
    else if (type == 3)
        config_setting_set_bool(v, b[0] & 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in s = {data, size};
    config_t cfg;
    config_init(&cfg);
    unsigned top = take(&s) % 8;
    int type = top == 0 ? CONFIG_TYPE_LIST : top == 1 ? CONFIG_TYPE_INT : CONFIG_TYPE_GROUP;
    config_setting_t *g = config_setting_add(config_root_setting(&cfg), "roughtime", type);
    while (s.n && g && type == CONFIG_TYPE_GROUP)
        add_member(&s, g);
    tb_rt_config c;
    char err[256] = "";
    if (tb_rt_config_parse(g, &c, err, sizeof(err)) == 0 && c.enabled) {
        /* What the parser accepts, the server and its edge accept too. */
        tb_addr a;
        if (c.srv.max_batch < 1 || c.srv.max_batch > TB_RT_SRV_MAX_BATCH ||
            c.srv.queue_cap < c.srv.max_batch || c.srv.queue_cap > TB_RT_SRV_MAX_QUEUE ||
            c.udp.radius_s < 1 || !c.key_path[0] == !c.cert_path[0] ||
            !c.cert_path[0] != !c.online_key_path[0] || c.threads < 1 ||
            tb_addr_parse_numeric(c.udp.listen, strlen(c.udp.listen), TB_ADDR_PORT_ZERO_OK, &a,
                                  NULL) != TB_OK)
            __builtin_trap();
    } else if (memchr(err, 0, sizeof(err)) == NULL) {
        __builtin_trap();
    }
    config_destroy(&cfg);
    return 0;
}
