/* The `roughtime` group of tbnode's libconfig file: whether and how the node serves Roughtime,
 * turned into what the server logic (server.h) and its UDP edge (udp.h) take.
 *
 *   roughtime = {
 *     listen = "127.0.0.1:5319";   # numeric ADDR:PORT or [V6]:PORT (default 127.0.0.1:5319,
 *                                  # the IANA port; 2002 is what servers in the wild use)
 *     key = "rt.key";              # long-term key file from `tbroughtime keygen` (required);
 *                                  # a relative path is taken from the config file's folder
 *     max_batch = 64;              # requests per signature, 1..128
 *     queue = 256;                 # pending requests, max_batch..4096 (default 4 × max_batch)
 *     flush_interval_us = 1000;    # longest wait for a batch, 1..10000000
 *     radius = 3;                  # RADI in s when the kernel clock is not synchronised, 1..86400
 *     radius_from_kernel = true;   # RADI from adjtimex when synchronised
 *     key_lifetime = 86400;        # online key validity in s, 60..31536000 (rotated at half)
 *     threads = 1;                 # edges on SO_REUSEPORT sockets, 1..64
 *     enabled = true;              # false keeps the group but serves nothing
 *     tcp = false;                 # also serve TCP on the same address and port
 *     cert = "rt.cert";            # instead of key: an offline delegation (tbroughtime
 *     online_key = "rt.online";    #   delegate), so the long-term key stays off this host
 *     cert_warn = 86400;           # warn this many s before the delegation expires
 *   };
 *
 * Every key is optional except `key` (unless enabled = false); unknown keys and wrong types are
 * errors, each naming "FILE:LINE: key 'roughtime.KEY': what is wrong". Parsing reads no file:
 * tb_rt_config_load_key does. */
#ifndef TB_ROUGHTIME_CONFIG_H
#define TB_ROUGHTIME_CONFIG_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "roughtime/server.h"
#include "roughtime/udp.h"

#define TB_RT_CONFIG_PATH_MAX 1024
#define TB_RT_CONFIG_MAX_THREADS 64

/* Every key the group may have (for help text, and the fuzzer). */
#define TB_RT_CONFIG_NKEYS 14
extern const char *const tb_rt_config_keys[TB_RT_CONFIG_NKEYS];

typedef struct tb_rt_config {
    bool enabled;                                /* the group is present and not disabled */
    char key_path[TB_RT_CONFIG_PATH_MAX];        /* "" with a delegation */
    char cert_path[TB_RT_CONFIG_PATH_MAX];       /* offline delegation (tbroughtime delegate) */
    char online_key_path[TB_RT_CONFIG_PATH_MAX]; /* ... and its online key */
    unsigned threads;
    tb_rt_srv_config srv; /* longterm_sk stays zero until tb_rt_config_load_key */
    tb_rt_udp_config udp; /* reuseport set when threads > 1 */
} tb_rt_config;

/* Disabled, with the defaults of tbroughtime serve. */
void tb_rt_config_default(tb_rt_config *c);

/* Parses the group (NULL: absent, so disabled, and 0). On error returns TB_ERR_INVAL and writes
 * "FILE:LINE: key 'roughtime.KEY': ..." into err; *out is then the defaults. */
TB_WUR int tb_rt_config_parse(const config_setting_t *group, tb_rt_config *out, char *err,
                              size_t errlen);

/* Reads the long-term key named by key_path into srv.longterm_sk (keyfile.h rules: mode 0600),
 * or the delegation of cert_path and online_key_path into srv.delegation (refused when expired
 * at now_ns). */
TB_WUR int tb_rt_config_load_key(tb_rt_config *c, int64_t now_ns, char *err, size_t errlen);

/* Wipes the secret key. */
void tb_rt_config_clear(tb_rt_config *c);

#endif
