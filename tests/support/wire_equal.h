/* Message equality, for tests only (the node never compares decoded messages). */
#ifndef TB_TESTS_SUPPORT_WIRE_EQUAL_H
#define TB_TESTS_SUPPORT_WIRE_EQUAL_H

#include <stdbool.h>

#include "wire/wire.h"

/* True when two messages have the same type and field values (not the same storage). */
bool tb_wire_msg_equal(const tb_wire_msg *a, const tb_wire_msg *b);

#endif
