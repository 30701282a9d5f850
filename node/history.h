/* node/history: `tbnode history`, the measurements in the state directory's tbnode.db read
 * without a node (or beside a running one: the database is opened read-only). */
#ifndef TB_NODE_HISTORY_H
#define TB_NODE_HISTORY_H

#include <stdint.h>

#include "common/error.h"

/* "2026-12-06T17:00:00Z" (fraction of a second optional) or "30s"/"30m"/"1h"/"2d" before
 * now_ns: the time in ns since the epoch. TB_ERR_INVAL otherwise. */
TB_WUR int tb_history_parse_time(const char *s, int64_t now_ns, int64_t *out);

/* argv[0] is "history"; returns the process exit code (0, 1 runtime, 2 usage). */
int tb_history_main(int argc, char **argv);

#endif
