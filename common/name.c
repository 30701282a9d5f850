#include "common/name.h"

int tb_name_valid(const char *p, size_t len)
{
    if (!p || len < 1 || len > TB_NAME_MAX || p[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}
