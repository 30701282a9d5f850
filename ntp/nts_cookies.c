#include "ntp/nts_cookies.h"

#include <sodium.h>
#include <string.h>

void tb_nts_jar_clear(tb_nts_cookie_jar *jar)
{
    sodium_memzero(jar, sizeof(*jar));
}

int tb_nts_jar_put(tb_nts_cookie_jar *jar, const uint8_t *p, size_t len)
{
    if (len == 0)
        return TB_ERR_INVAL;
    if (len > TB_NTS_COOKIE_MAX)
        return TB_ERR_TOO_BIG;
    if (jar->n >= TB_NTS_COOKIES_MAX)
        return TB_ERR_FULL;
    unsigned slot = (jar->head + jar->n) % TB_NTS_COOKIES_MAX;
    memcpy(jar->cookie[slot], p, len);
    jar->len[slot] = (uint16_t)len;
    jar->n++;
    return 0;
}

int tb_nts_jar_take(tb_nts_cookie_jar *jar, uint8_t *out, size_t cap, size_t *len)
{
    if (jar->n == 0)
        return TB_ERR_AGAIN;
    unsigned slot = jar->head;
    if (cap < jar->len[slot])
        return TB_ERR_TOO_BIG;
    memcpy(out, jar->cookie[slot], jar->len[slot]);
    *len = jar->len[slot];
    sodium_memzero(jar->cookie[slot], sizeof(jar->cookie[slot]));
    jar->len[slot] = 0;
    jar->head = (jar->head + 1) % TB_NTS_COOKIES_MAX;
    jar->n--;
    return 0;
}

size_t tb_nts_jar_count(const tb_nts_cookie_jar *jar)
{
    return jar->n;
}
