/* Source declarations in the node's libconfig file, and the reload diff.
 *
 *   sources = (
 *     { kind = "ntp"; address = "127.0.0.71:11123"; minpoll = 6; maxpoll = 10; },
 *     { kind = "pool"; name = "pool.example"; count = 3; },
 *     { kind = "roughtime"; address = "rt.example:2002"; public_key = "base64..."; },
 *     { kind = "nts"; address = "time.example"; ntsport = 4460; ca_file = "/etc/ca.pem"; },
 *     { kind = "sock"; path = "/run/tbnode/gps.sock"; precision = 1000; delay = 0; },
 *     { kind = "pps"; device = "/dev/pps0"; lock = "/run/tbnode/gps.sock"; edge = "assert";
 *       rate = 1; offset = 0; width = 0; maxlockage = 2; precision = 1000; }
 *   );
 *
 * Keys: kind (required); address (ntp, nts, roughtime; roughtime "tcp://host:port" measures
 * over TCP, sources/rt_tcp.h); name (pool); minpoll, maxpoll
 * (log2 s, -6..17); unreachable_after (polls, 1..64); count (pool, 1..16);
 * resolve_interval (pool, seconds, 10..604800); public_key (roughtime, base64 of 32 bytes);
 * ntsport (nts: the NTS-KE port, default 4460), ca_file (nts: PEM file of the CAs that may
 * sign the KE server's certificate, relative to the configuration file's folder; default the
 * system store), server_name (nts: the name
 * the certificate must carry; default the host of address). An nts address is the KE host
 * and the NTP port to use when the KE server names none (default 123).
 * path (sock: absolute path of the Unix datagram socket tbnode binds, < 108 bytes), precision
 * and delay (sock: nanoseconds, 0..1e9; the error bound is precision + delay/2).
 * xleave (ntp, pool: true asks the server for interleaved mode, ntp/client.h; default false).
 * device (pps: absolute path of the PPS device, < 108 bytes), lock (pps: the name of another,
 * non-pps source of the list: an address, a pool's name or a sock path; required), edge
 * (pps: "assert", default, or "clear"), rate (pps: pulses per second, 1..1000, default 1),
 * offset (pps: ns added to each pulse's offset, within half an interval), width (pps: the pulse
 * width in ns, below one interval; 0, default: not checked), maxlockage (pps: pulse intervals
 * the lock's measurement may be away from a pulse, 1..64, default 2), precision (pps too). A
 * pps source whose lock names no source of the list is an error of the whole list.
 * Unknown keys are errors, so a typo never silently falls back to a default. Mesh peers are
 * not configured here: the time node measures every connected peer (adr/0007). */
#ifndef TB_SOURCES_CONFIG_H
#define TB_SOURCES_CONFIG_H

#include <libconfig.h>
#include <stddef.h>

#include "sources/source.h"

#define TB_SOURCES_MAX 256

/* Every key a source entry may have (for help text, and the fuzzer). */
#define TB_SOURCES_CONFIG_NKEYS 23
extern const char *const tb_sources_config_keys[TB_SOURCES_CONFIG_NKEYS];

typedef struct tb_source_config_list {
    tb_source_config *items;
    size_t n;
} tb_source_config_list;

/* Parses the list setting `list` (the value of `sources`). On error returns TB_ERR_INVAL and
 * writes "FILE:LINE: key 'sources.[i].key': what is wrong" into err. out is emptied first. */
TB_WUR int tb_sources_config_parse(const config_setting_t *list, tb_source_config_list *out,
                                   char *err, size_t errlen);

/* Entry i of the list alone, as tb_sources_config_parse reads it (errors name
 * "sources.[i]..."): `tbnode check-config` checks every entry, not only up to the first bad. */
TB_WUR int tb_sources_config_parse_entry(const config_setting_t *list, unsigned i,
                                         tb_source_config *out, char *err, size_t errlen);
void tb_sources_config_free(tb_source_config_list *l);

/* Which sources a reload starts, stops and keeps: pure, no I/O. old_to_new[i] is the index in
 * `new` that old entry i continues as, or -1 (stop it); new_from_old[j] the old entry new
 * entry j continues, or -1 (start it). An entry is kept only when it is unchanged
 * (tb_source_config_equal); a changed one is stopped and started afresh. */
typedef struct tb_sources_diff {
    long *old_to_new;
    long *new_from_old;
    size_t n_keep, n_stop, n_start;
} tb_sources_diff;

TB_WUR int tb_sources_diff_compute(const tb_source_config_list *old,
                                   const tb_source_config_list *new_list, tb_sources_diff *out);
void tb_sources_diff_free(tb_sources_diff *d);

#endif
