/* Roughtime benchmarks (reported, never gated):
 *   rt_bench compute            in-process sign cost per request for batch sizes 1, 8, 64, 128,
 *                               beside the baseline of one Ed25519 signature per request;
 *   rt_bench load ADDR PUBKEY S  a loopback load generator: keeps a window of valid requests in
 *                               flight for S seconds and prints responses/s and µs per response. */
#define _GNU_SOURCE
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/clock.h"
#include "roughtime/keyfile.h"
#include "roughtime/server.h"
#include "roughtime/udp.h"
#include "roughtime/verify.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void discard(void *arg, uint64_t cookie, const uint8_t *resp, size_t len)
{
    (*(unsigned long *)arg)++;
}

static int compute(void)
{
    static const unsigned batches[] = {1, 8, 64, 128};
    uint8_t pk[32], nonce[32] = {0};
    tb_rt_query q;
    tb_rt_srv_config cfg;
    uint32_t v = TB_RT_VER_RFC;
    tb_rt_srv_config_default(&cfg);
    crypto_sign_ed25519_keypair(pk, cfg.longterm_sk);
    if (tb_rt_query_init(&q, pk, &v, 1, nonce, 0) < 0)
        return 1;
    /* Baseline: what answering costs without batching, one signature per request. */
    uint8_t sig[64];
    unsigned n = 20000;
    double t0 = now_s();
    for (unsigned i = 0; i < n; i++)
        crypto_sign_ed25519_detached(sig, NULL, q.request, 100, cfg.longterm_sk);
    double base_us = (now_s() - t0) / n * 1e6;
    printf("baseline: one Ed25519 signature %.2f us\n", base_us);
    for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
        tb_rt_srv *s;
        cfg.max_batch = batches[b];
        cfg.queue_cap = batches[b];
        if (tb_rt_srv_new(&cfg, NULL, 1795000000LL * 1000000000LL, &s) < 0)
            return 1;
        unsigned long out = 0, total = 0;
        t0 = now_s();
        while (now_s() - t0 < 1.0) {
            for (unsigned i = 0; i < batches[b]; i++)
                if (tb_rt_srv_submit(s, q.request, q.request_len, i) < 0)
                    return 1;
            if (tb_rt_srv_flush(s, 1795000000LL * 1000000000LL, 3, discard, &out) < 0)
                return 1;
            total += batches[b];
        }
        double us = (now_s() - t0) / (double)total * 1e6;
        printf("compute batch %3u: %.2f us/request, %.0f requests/s per core, %.1fx baseline\n",
               batches[b], us, 1e6 / us, base_us / us);
        tb_rt_srv_free(s);
    }
    return 0;
}

static int load(const char *addr, const char *pub, double seconds, unsigned window)
{
    enum { VEC = 64 };
    uint8_t pk[32], nonce[32];
    static tb_rt_query q;
    uint32_t v = TB_RT_VER_RFC;
    tb_addr a;
    if (tb_rt_key_from_b64(pub, pk) < 0 ||
        tb_addr_parse_numeric(addr, strlen(addr), 0, &a, NULL) != TB_OK)
        return 1;
    randombytes_buf(nonce, sizeof(nonce));
    if (tb_rt_query_init(&q, pk, &v, 1, nonce, 0) < 0)
        return 1;
    int fd = socket(a.ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0), big = 8 << 20;
    if (fd < 0 || connect(fd, (struct sockaddr *)&a.ss, a.len) < 0)
        return 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    struct mmsghdr tx[VEC], rx[VEC];
    struct iovec txv[VEC], rxv[VEC];
    static uint8_t rbuf[VEC][1024];
    for (int i = 0; i < VEC; i++) {
        txv[i] = (struct iovec){q.request, q.request_len};
        rxv[i] = (struct iovec){rbuf[i], sizeof(rbuf[i])};
        memset(&tx[i], 0, sizeof(tx[i]));
        memset(&rx[i], 0, sizeof(rx[i]));
        tx[i].msg_hdr.msg_iov = &txv[i];
        tx[i].msg_hdr.msg_iovlen = 1;
        rx[i].msg_hdr.msg_iov = &rxv[i];
        rx[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long sent = 0, got = 0, verified = 0;
    double t0 = now_s(), last_progress = t0;
    while (now_s() - t0 < seconds) {
        /* Refill the window; lost datagrams are written off after 100 ms of silence. */
        if (sent - got < window) {
            unsigned k = window - (unsigned)(sent - got);
            int n = sendmmsg(fd, tx, k < VEC ? k : VEC, 0);
            if (n > 0)
                sent += (unsigned)n;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1) > 0) {
            int n = recvmmsg(fd, rx, VEC, MSG_DONTWAIT, NULL);
            if (n > 0) {
                if (!verified) {
                    tb_rt_reason why;
                    if (tb_rt_verify(&q, rbuf[0], rx[0].msg_len, 0, &why) < 0) {
                        fprintf(stderr, "rt_bench: response rejected: %s\n",
                                tb_rt_reason_name(why));
                        return 1;
                    }
                    verified = 1;
                }
                got += (unsigned)n;
                last_progress = now_s();
            }
        } else if (now_s() - last_progress > 0.1) {
            sent = got;
            last_progress = now_s();
        }
    }
    double el = now_s() - t0;
    printf("load %s window %u: %.0f responses/s, %.2f us per response\n", addr, window,
           (double)got / el, el / (double)got * 1e6);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    if (argc >= 2 && strcmp(argv[1], "compute") == 0)
        return compute();
    if (argc >= 5 && strcmp(argv[1], "load") == 0)
        return load(argv[2], argv[3], atof(argv[4]), argc >= 6 ? (unsigned)atoi(argv[5]) : 256);
    fprintf(stderr, "usage: rt_bench compute | rt_bench load ADDR:PORT PUBKEY SECONDS [WINDOW]\n");
    return 64;
}
