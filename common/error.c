#include "common/error.h"

const char *tb_strerror(int err)
{
    switch (err) {
    case TB_OK:
        return "success";
    case TB_ERR_INVAL:
        return "invalid argument";
    case TB_ERR_NOMEM:
        return "out of memory";
    case TB_ERR_TRUNCATED:
        return "truncated input";
    case TB_ERR_MALFORMED:
        return "malformed input";
    case TB_ERR_TOO_BIG:
        return "over size limit";
    case TB_ERR_UNSUPPORTED:
        return "unsupported";
    case TB_ERR_IO:
        return "I/O error";
    case TB_ERR_CRYPTO:
        return "cryptographic failure";
    case TB_ERR_VERIFY:
        return "verification failed";
    case TB_ERR_NOTFOUND:
        return "not found";
    case TB_ERR_EXISTS:
        return "already exists";
    case TB_ERR_AGAIN:
        return "try again";
    case TB_ERR_TIMEOUT:
        return "timed out";
    case TB_ERR_STATE:
        return "invalid state";
    case TB_ERR_FULL:
        return "full";
    default:
        return "unknown error";
    }
}
