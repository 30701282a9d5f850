#include "sources/nts_assoc.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "ntp/client.h"
#include "ntp/packet.h"
#include "sources/nts_session.h"

/* One KE exchange may take this long, resolution included. */
#define KE_TIMEOUT_NS (10 * TB_NS_PER_SEC)

struct tb_nts_assoc {
    tb_source *src;
    tb_nts_trust *trust;
    char ke_host[TB_ADDR_HOST_MAX + 1];
    uint16_t ke_port;
    uint16_t ntp_port; /* configured, used when the KE server names none */
    char server_name[TB_SOURCE_NAME_MAX];
    uint64_t retry_base_ns, retry_max_ns;
    tb_nts_session *ke;
    bool have_keys;
    tb_nts_keys keys;
    tb_nts_cookie_jar jar;
    uint8_t uid[TB_NTS_UID_LEN]; /* of the request in flight */
    unsigned failures;           /* KE exchanges failed in a row */
    char ke_error[256];
    tb_nts_ready_cb ready;
    void *arg;
    tb_nts_stats st;
};

int tb_nts_assoc_create(tb_source *src, const tb_source_config *cfg, tb_nts_ready_cb ready,
                        void *arg, tb_nts_assoc **out)
{
    tb_addr_hostport hp;
    if (tb_addr_parse_default(cfg->address, strlen(cfg->address), TB_NTP_PORT, 0, &hp, NULL) !=
        TB_OK)
        return TB_ERR_INVAL;
    tb_nts_assoc *a = calloc(1, sizeof(*a));
    if (!a)
        return TB_ERR_NOMEM;
    a->src = src;
    snprintf(a->ke_host, sizeof(a->ke_host), "%s", hp.host);
    a->ntp_port = hp.port;
    a->ke_port = cfg->ntsport ? cfg->ntsport : TB_NTS_KE_PORT;
    snprintf(a->server_name, sizeof(a->server_name), "%s", cfg->server_name);
    a->retry_base_ns = (uint64_t)tb_ntp_log2_to_ns(cfg->minpoll);
    if (a->retry_base_ns < TB_NS_PER_SEC)
        a->retry_base_ns = TB_NS_PER_SEC;
    a->retry_max_ns = (uint64_t)tb_ntp_log2_to_ns(cfg->maxpoll);
    if (a->retry_max_ns < a->retry_base_ns)
        a->retry_max_ns = a->retry_base_ns;
    a->ready = ready;
    a->arg = arg;
    a->st.last_ke_error = a->ke_error;
    char why[300];
    int err = tb_nts_trust_create(cfg->ca_file, &a->trust, why, sizeof(why));
    if (err < 0) {
        tb_log_error(tb_source_env_of(src)->log, "nts %s: cannot load trust: %s", cfg->address,
                     why);
        free(a);
        return err;
    }
    *out = a;
    return 0;
}

static void forget_keys(tb_nts_assoc *a)
{
    a->have_keys = false;
    sodium_memzero(&a->keys, sizeof(a->keys));
    tb_nts_jar_clear(&a->jar);
}

void tb_nts_assoc_stop(tb_nts_assoc *a)
{
    tb_nts_session_destroy(a->ke);
    a->ke = NULL;
}

void tb_nts_assoc_destroy(tb_nts_assoc *a)
{
    if (!a)
        return;
    tb_nts_assoc_stop(a);
    forget_keys(a);
    tb_nts_trust_destroy(a->trust);
    free(a);
}

static void ke_failed(tb_nts_assoc *a, const char *why)
{
    a->st.ke_failed++;
    snprintf(a->ke_error, sizeof(a->ke_error), "%s", why);
    /* Back off: 2^minpoll (at least 1 s), doubling, up to 2^maxpoll. */
    uint64_t wait = a->retry_base_ns;
    for (unsigned i = 0; i < a->failures && wait < a->retry_max_ns; i++)
        wait *= 2;
    if (wait > a->retry_max_ns)
        wait = a->retry_max_ns;
    a->failures++;
    tb_source_set_state(a->src, TB_SOURCE_UNREACHABLE, "%s", why);
    tb_source_schedule(a->src, tb_clock_mono(tb_source_env_of(a->src)->clock) + wait);
}

static void ke_done(void *arg, int err, const char *why, const tb_nts_ke_response *resp,
                    const tb_nts_keys *keys)
{
    tb_nts_assoc *a = arg;
    tb_nts_session_destroy(a->ke);
    a->ke = NULL;
    if (err < 0) {
        ke_failed(a, why);
        return;
    }
    forget_keys(a);
    a->keys = *keys;
    a->jar = resp->cookies;
    a->have_keys = true;
    a->failures = 0;
    a->ke_error[0] = 0;
    a->st.ke_ok++;
    tb_addr_hostport hp = {.port = resp->has_port ? resp->port : a->ntp_port};
    snprintf(hp.host, sizeof(hp.host), "%s", resp->has_server ? resp->server : a->ke_host);
    tb_addr ip;
    hp.kind = tb_addr_numeric(hp.host, hp.port, &ip) == 0
                  ? (ip.ss.ss_family == AF_INET6 ? TB_ADDR_IPV6 : TB_ADDR_IPV4)
                  : TB_ADDR_NAME;
    char where[TB_ADDR_TEXT_MAX];
    tb_addr_hostport_format(&hp, where, sizeof(where));
    tb_log_debug(tb_source_env_of(a->src)->log, "nts %s: NTS-KE done, %zu cookies, NTP at %s",
                 a->ke_host, tb_nts_jar_count(&a->jar), where);
    a->ready(a->arg, where);
}

void tb_nts_assoc_rekey(tb_nts_assoc *a)
{
    if (a->ke)
        return;
    forget_keys(a);
    tb_nts_session_params p = {.host = a->ke_host,
                               .port = a->ke_port,
                               .server_name = a->server_name,
                               .trust = a->trust,
                               .timeout_ns = KE_TIMEOUT_NS};
    int err = tb_nts_session_start(tb_source_env_of(a->src), &p, ke_done, a, &a->ke);
    if (err < 0)
        ke_failed(a, "cannot start NTS-KE");
}

bool tb_nts_assoc_ready(const tb_nts_assoc *a)
{
    return a->have_keys && tb_nts_jar_count(&a->jar) > 0;
}

int tb_nts_assoc_wrap(tb_nts_assoc *a, const uint8_t header[48], const uint8_t *rnd, uint8_t *out,
                      size_t cap, size_t *len)
{
    uint8_t cookie[TB_NTS_COOKIE_MAX];
    size_t clen;
    if (!a->have_keys || tb_nts_jar_take(&a->jar, cookie, sizeof(cookie), &clen) < 0)
        return TB_ERR_STATE;
    /* Ask for as many new cookies as it takes to fill the jar again (RFC 8915 §5.7). */
    unsigned placeholders = TB_NTS_COOKIES_MAX - 1 - (unsigned)tb_nts_jar_count(&a->jar);
    memcpy(a->uid, rnd, TB_NTS_UID_LEN);
    int err = tb_nts_request_write(&a->keys, header, a->uid, rnd + TB_NTS_UID_LEN, cookie, clen,
                                   placeholders, out, cap, len);
    sodium_memzero(cookie, sizeof(cookie));
    return err;
}

tb_nts_verdict tb_nts_assoc_check(tb_nts_assoc *a, const uint8_t *p, size_t len)
{
    tb_nts_verdict v =
        a->have_keys ? tb_nts_reply_check(&a->keys, a->uid, p, len, &a->jar) : TB_NTS_REJ_AUTH;
    a->st.rejects[v]++;
    a->st.last = v;
    if (v == TB_NTS_NAK) {
        a->st.naks++;
        tb_log_info(tb_source_env_of(a->src)->log, "nts %s: NTS NAK from the server: re-keying",
                    a->ke_host);
        tb_nts_assoc_rekey(a);
    }
    return v;
}

void tb_nts_assoc_stats(const tb_nts_assoc *a, tb_nts_stats *out)
{
    *out = a->st;
    out->cookies = tb_nts_jar_count(&a->jar);
}
