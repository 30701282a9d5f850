/* Running a command from a test and reading what it printed. */
#ifndef TB_TESTS_SUPPORT_RUN_H
#define TB_TESTS_SUPPORT_RUN_H

#include <stddef.h>

/* Runs cmd through the shell, its stdout (up to len - 1 bytes, NUL-terminated) into out.
 * Returns the wait status as pclose gives it, or -1 when it could not be started. */
int tb_test_capture(const char *cmd, char *out, size_t len);

#endif
