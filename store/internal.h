/* Private to store/. */
#ifndef TB_STORE_INTERNAL_H
#define TB_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/store.h"

sqlite3 *tb_store_db(tb_store *s);

#endif
