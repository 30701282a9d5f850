#include "routing/unicast.h"

#include <string.h>

#include "common/name.h"

static int same(const char *name, const char *s, size_t len)
{
    return strlen(name) == len && memcmp(name, s, len) == 0;
}

int tb_uc_route_to(const char *self, const char *to, size_t to_len, const char *const *neighbours,
                   size_t nneighbours, tb_uc_route *out)
{
    if (!tb_name_valid(to, to_len))
        return TB_ERR_MALFORMED;
    if (same(self, to, to_len)) {
        out->action = TB_UC_LOCAL;
        out->neighbour = 0;
        return 0;
    }
    for (size_t i = 0; i < nneighbours; i++) {
        if (same(neighbours[i], to, to_len)) {
            out->action = TB_UC_SEND;
            out->neighbour = i;
            return 0;
        }
    }
    return TB_ERR_NOTFOUND;
}

int tb_uc_accept(const char *self, const char *to, size_t to_len)
{
    if (!tb_name_valid(to, to_len))
        return TB_ERR_MALFORMED;
    return same(self, to, to_len) ? 0 : TB_ERR_NOTFOUND;
}
