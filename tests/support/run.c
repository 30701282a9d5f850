#include "tests/support/run.h"

#include <stdio.h>

int tb_test_capture(const char *cmd, char *out, size_t len)
{
    out[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, len - 1, p);
    out[n] = 0;
    return pclose(p);
}
