/* The time-source framework: one object per source, whatever its protocol. The framework owns
 * the identity, the operator-visible state (with its reason), the poll timer on the libev loop
 * and the delivery of measurements to the node's measurement core. A driver (NTP here,
 * Roughtime in rt_driver.c) owns the protocol and its sockets, behind tb_source_driver. Mesh
 * peers are not sources of this framework (adr/0007, "Mesh peers").
 *
 * Every callback runs on the loop thread. A driver never blocks the loop: name resolution goes
 * through the asynchronous resolver in the environment. */
#ifndef TB_SOURCES_SOURCE_H
#define TB_SOURCES_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

struct ev_loop;
struct tb_resolver;
struct tb_pps_dev_ops;

typedef enum tb_source_kind {
    TB_SOURCE_NTP = 0,
    TB_SOURCE_POOL, /* configuration only: a pool's members are NTP sources */
    TB_SOURCE_ROUGHTIME,
    TB_SOURCE_PEER, /* reserved: mesh peers are measured by the time node, not configured */
    TB_SOURCE_NTS,  /* NTP authenticated with NTS (RFC 8915); its measurements are kind NTP */
    TB_SOURCE_SOCK, /* a SOCK reference clock (sources/sock_driver.h); measurements kind
                       refclock */
    TB_SOURCE_PPS,  /* a PPS device locked to another source (sources/pps_driver.h); refclock */
    TB_SOURCE_KIND_COUNT
} tb_source_kind;

const char *tb_source_kind_name(tb_source_kind kind);
/* "ntp", "pool", "roughtime", "peer" (refused in configurations), "nts", "sock", "pps". */
TB_WUR int tb_source_kind_parse(const char *s, tb_source_kind *out);

typedef enum tb_source_state {
    TB_SOURCE_STARTING = 0, /* started, no valid measurement yet */
    TB_SOURCE_REACHABLE,    /* the last polls produced valid measurements */
    TB_SOURCE_UNREACHABLE,  /* a configured number of polls in a row gave none */
    TB_SOURCE_DEMOBILISED,  /* told to stop (KoD DENY/RSTR, bad key...): polls no more */
    TB_SOURCE_STOPPED,      /* not running (stopped, or no driver for its kind) */
} tb_source_state;

const char *tb_source_state_name(tb_source_state st);

#define TB_SOURCE_NAME_MAX 256
#define TB_SOURCE_ADDR_MAX 64
#define TB_SOURCE_KEY_LEN 32

/* Who a measurement is about. `name` is what the configuration says (host:port or pool
 * name); `address` the numeric address actually measured ("" before resolution). */
typedef struct tb_source_id {
    tb_source_kind kind;
    char name[TB_SOURCE_NAME_MAX];
    char address[TB_SOURCE_ADDR_MAX];
    bool has_public_key;
    uint8_t public_key[TB_SOURCE_KEY_LEN]; /* Roughtime long-term key (Ed25519) */
} tb_source_id;

/* One measurement, valid for the duration of the callback (copy what you keep). Times in ns;
 * offset is the source's clock minus ours. */
typedef struct tb_source_meas {
    const tb_source_id *source;
    uint64_t mono_ns;     /* local monotonic time the measurement refers to (reply received) */
    int64_t real_ns;      /* local real time at that instant (NTP: T4) */
    int64_t sent_real_ns; /* local real time the request left (NTP: T1), 0 if none; with
                             real_ns and the packets a receiver can recompute offset and delay */
    int64_t offset_ns;
    int64_t delay_ns;       /* round trip */
    int64_t error_ns;       /* the true offset lies within offset ± error */
    int stratum;            /* NTP stratum, -1 when the kind has none */
    uint32_t refid;         /* NTP reference id, 0 otherwise */
    const uint8_t *request; /* raw evidence: the packets exchanged, as sent and received */
    size_t request_len;
    const uint8_t *response;
    size_t response_len;
    const uint8_t *rand; /* Roughtime: the 32 bytes the nonce was chained with
                            (H(previous response ‖ rand)), NULL when not chained */
} tb_source_meas;

typedef void (*tb_source_meas_cb)(void *arg, const tb_source_meas *m);

/* What a source is made from, as parsed from the configuration (sources/config.h). */
typedef struct tb_source_config {
    tb_source_kind kind;
    char address[TB_SOURCE_NAME_MAX]; /* ntp, roughtime, nts: host[:port] (nts: the KE host
                                         and the NTP port used unless the KE server names one);
                                         sock: the socket's path (config key `path`);
                                         pps: the device (config key `device`) */
    char name[TB_SOURCE_NAME_MAX];    /* pool: host[:port] */
    int minpoll, maxpoll;             /* log2 seconds */
    unsigned count;                   /* pool: members kept */
    unsigned unreach_after;           /* polls without a valid measurement → unreachable */
    unsigned resolve_interval;        /* pool: seconds between re-resolutions */
    bool has_public_key;
    uint8_t public_key[TB_SOURCE_KEY_LEN];
    uint16_t ntsport;                     /* nts: KE port, default 4460 */
    char ca_file[TB_SOURCE_NAME_MAX];     /* nts: PEM CA file; "" = the system store */
    char server_name[TB_SOURCE_NAME_MAX]; /* nts: name the certificate must carry; "" = host */
    int64_t precision_ns;                 /* sock, pps: the precision, default 1000 */
    int64_t delay_ns;                     /* sock: delay charged to each sample, default 0 */
    bool xleave; /* ntp, pool: ask for interleaved mode (ntp/client.h), default off */
    char lock[TB_SOURCE_NAME_MAX]; /* pps: the name of the source naming the second */
    bool edge_clear;               /* pps: the clear edge marks the second, not assert */
    unsigned rate;                 /* pps: pulses per second, default 1 */
    int64_t offset_ns;             /* pps: added to each pulse's offset, default 0 */
    int64_t width_ns;              /* pps: pulse width, 0 (default): not checked */
    unsigned maxlockage;           /* pps: pulse intervals, default 2 */
    int line; /* where it was declared, for messages; not part of its identity */
} tb_source_config;

/* Fills the defaults (minpoll 6, maxpoll 10, count 4, unreach_after 4, resolve 3600 s,
 * precision 1 µs, rate 1, maxlockage 2). */
void tb_source_config_default(tb_source_config *cfg, tb_source_kind kind);
/* Same source, same parameters (the line is ignored): keeps its state on reload. */
bool tb_source_config_equal(const tb_source_config *a, const tb_source_config *b);

/* What every source needs from the node; must outlive the sources. */
typedef struct tb_source_env {
    struct ev_loop *loop;
    const tb_log *log;
    const tb_clock *clock;
    struct tb_resolver *resolver; /* resolve/resolver.h */
    tb_source_meas_cb on_measurement;
    void *measurement_arg;
    /* Optional: the PPS device I/O (sources/pps_dev.h); NULL is the kernel's. Tests put a
     * device without hardware here. */
    const struct tb_pps_dev_ops *pps_dev;
    /* Set by the source set (sources/sources.h), not by the node: the running source with this
     * configured name that measured last, or NULL (a PPS source's lock). */
    const struct tb_source *(*find)(void *arg, const char *name);
    void *find_arg;
} tb_source_env;

typedef struct tb_source tb_source;

/* A protocol. All hooks run on the loop; state is the driver's own object from create. */
typedef struct tb_source_driver {
    tb_source_kind kind;
    /* Builds the driver state for a source; no I/O yet. */
    TB_WUR int (*create)(tb_source *src, const tb_source_config *cfg, void **state);
    /* Opens sockets (or starts resolving) and schedules the first poll. */
    TB_WUR int (*start)(tb_source *src, void *state);
    /* Closes sockets, cancels resolution; start may be called again. */
    void (*stop)(tb_source *src, void *state);
    /* The framework's poll timer fired: send a request, then tb_source_schedule again. */
    void (*poll)(tb_source *src, void *state);
    void (*destroy)(void *state);
    /* Optional: one line of driver detail for the operator (poll interval, counters). */
    void (*describe)(const void *state, char *buf, size_t len);
} tb_source_driver;

/* --- owner side (the node, the pool) --- */

/* drv NULL makes an inert source that reports STOPPED with "no driver for kind ...", so a
 * configuration may name kinds whose driver is not linked yet. address, when not NULL,
 * overrides the configured one (pool members). */
TB_WUR int tb_source_create(const tb_source_env *env, const tb_source_driver *drv,
                            const tb_source_config *cfg, const char *address, tb_source **out);
TB_WUR int tb_source_start(tb_source *s);
void tb_source_stop(tb_source *s);
void tb_source_destroy(tb_source *s);

/* Called after every state change. The hook must not destroy the source (defer it). */
typedef void (*tb_source_state_cb)(void *arg, tb_source *s);
void tb_source_set_state_hook(tb_source *s, tb_source_state_cb cb, void *arg);

/* Operator view. */
const tb_source_id *tb_source_identity(const tb_source *s);
tb_source_state tb_source_state_of(const tb_source *s);
const char *tb_source_reason(const tb_source *s);
uint64_t tb_source_measurements(const tb_source *s); /* delivered so far */
/* The newest measurement delivered: its local real time, offset and error bound. false when
 * there was none since the start. */
bool tb_source_last(const tb_source *s, int64_t *real_ns, int64_t *offset_ns, int64_t *error_ns);
/* "ntp 127.0.0.71:11123 reachable (...)" plus the driver's detail. */
void tb_source_describe(const tb_source *s, char *buf, size_t len);
const tb_source_config *tb_source_config_of(const tb_source *s);
/* The driver state, for driver-specific inspection (tests, status). */
void *tb_source_driver_state(const tb_source *s);

/* --- driver side --- */

const tb_source_env *tb_source_env_of(const tb_source *s);
/* Sets the numeric address being measured (after resolution). */
void tb_source_set_address(tb_source *s, const char *address);
/* Arms the poll timer for monotonic time at_ns (the clock's mono); UINT64_MAX disarms. */
void tb_source_schedule(tb_source *s, uint64_t at_ns);
/* Hands a measurement to the node (m->source is filled in) and marks the source reachable. */
void tb_source_deliver(tb_source *s, tb_source_meas *m);
void tb_source_set_state(tb_source *s, tb_source_state st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
