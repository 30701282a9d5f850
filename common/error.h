/* Error codes shared by every module: 0 is success, negative is failure.
 * Functions that return one are marked TB_WUR so a caller cannot drop it. */
#ifndef TB_COMMON_ERROR_H
#define TB_COMMON_ERROR_H

#define TB_WUR __attribute__((warn_unused_result))

enum {
    TB_OK = 0,
    TB_ERR_INVAL = -1,       /* bad argument or configuration value */
    TB_ERR_NOMEM = -2,       /* allocation failed */
    TB_ERR_TRUNCATED = -3,   /* input ends before a field it announces */
    TB_ERR_MALFORMED = -4,   /* input violates the format */
    TB_ERR_TOO_BIG = -5,     /* input or count over a configured cap */
    TB_ERR_UNSUPPORTED = -6, /* unknown version, type or algorithm */
    TB_ERR_IO = -7,          /* a system call failed; see errno in the log line */
    TB_ERR_CRYPTO = -8,      /* a cryptographic operation failed */
    TB_ERR_VERIFY = -9,      /* a signature, certificate or proof did not verify */
    TB_ERR_NOTFOUND = -10,   /* no such file, peer or entry */
    TB_ERR_EXISTS = -11,     /* would overwrite something that exists */
    TB_ERR_AGAIN = -12,      /* nothing to do now; try later */
    TB_ERR_TIMEOUT = -13,    /* a deadline passed */
    TB_ERR_STATE = -14,      /* call not valid in the object's current state */
    TB_ERR_FULL = -15,       /* a bounded queue or table is full */
};

/* A short static text for an error code, for log lines. */
const char *tb_strerror(int err);

#endif
