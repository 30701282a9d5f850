#include "resolve/hosts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bad lines logged per read of the file; the rest are only counted, so a garbage file cannot
 * flood the log. */
#define BAD_LINES_LOGGED 20
#define TOKENS_MAX (1 + TB_HOSTS_NAMES_PER_LINE + 1)

typedef struct entry {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    char name[TB_HOSTS_NAME_MAX + 1]; /* lower case, no trailing dot */
} entry;

struct tb_hosts {
    entry *e;
    size_t n, cap;
};

/* ---- the parser (pure) ------------------------------------------------------------------ */

static bool is_blank(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_name_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* A token for an error message: printable ASCII only, at most 64 characters. */
static void quote(const uint8_t *p, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 4 < outlen && i < 64; i++)
        out[n++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    if (len > 64 && n + 4 < outlen) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = 0;
}

/* Lower-cases `p` into out without a trailing dot. NULL when it is a valid host name, else
 * what is wrong with it. */
static const char *name_normalise(const uint8_t *p, size_t len, char *out)
{
    if (len > 0 && p[len - 1] == '.')
        len--;
    if (len == 0)
        return "empty name";
    if (len > TB_HOSTS_NAME_MAX)
        return "name longer than 253 characters";
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (c == '.') {
            if (label == 0)
                return "empty label in name";
            label = 0;
        } else if (!is_name_char(c)) {
            return "invalid character in name";
        } else if (++label > 63) {
            return "label longer than 63 characters";
        }
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    out[len] = 0;
    return NULL;
}

/* NULL when p is an IPv4 or IPv6 address (written to family/addr), else what is wrong. */
static const char *addr_parse(const uint8_t *p, size_t len, int *family, uint8_t addr[16])
{
    char buf[64];
    if (len >= sizeof(buf))
        return "address too long";
    memcpy(buf, p, len);
    buf[len] = 0;
    if (memchr(buf, '%', len))
        return "scoped IPv6 addresses are not supported";
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = AF_INET;
        return NULL;
    }
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        *family = AF_INET6;
        return NULL;
    }
    return "not an IPv4 or IPv6 address";
}

static int entry_add(tb_hosts *h, int family, const uint8_t addr[16], const char *name)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        if (cap > TB_HOSTS_MAX_ENTRIES)
            cap = TB_HOSTS_MAX_ENTRIES;
        entry *e = realloc(h->e, cap * sizeof(*e));
        if (!e)
            return TB_ERR_NOMEM;
        h->e = e;
        h->cap = cap;
    }
    entry *e = &h->e[h->n++];
    e->family = family;
    memcpy(e->addr, addr, 16);
    snprintf(e->name, sizeof(e->name), "%s", name);
    return 0;
}

typedef struct token {
    size_t off, len;
} token;

/* Splits a line (comment already cut) into blank-separated tokens; returns how many, at most
 * TOKENS_MAX (one more than a valid line may have, so the caller can tell). */
static size_t tokenize(const uint8_t *p, size_t len, token *t)
{
    size_t n = 0, i = 0;
    while (i < len && n < TOKENS_MAX) {
        while (i < len && is_blank(p[i]))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && !is_blank(p[i]))
            i++;
        t[n++] = (token){start, i - start};
    }
    return n;
}

typedef struct parse_ctx {
    tb_hosts *h;
    tb_hosts_bad_line_cb bad;
    void *arg;
    size_t lineno;
    bool full; /* entry cap reached: the rest of the file is skipped */
} parse_ctx;

/* Reports the line as skipped: "'TOKEN': why", or just why when tok is NULL. */
static void bad_line(parse_ctx *c, const char *why, const uint8_t *tok, size_t toklen)
{
    if (!c->bad)
        return;
    char q[80], msg[200];
    if (tok) {
        quote(tok, toklen, q, sizeof(q));
        snprintf(msg, sizeof(msg), "'%s': %s", q, why);
        why = msg;
    }
    c->bad(c->arg, c->lineno, why);
}

/* One line without its newline. Returns 0 or TB_ERR_NOMEM; problems with the line itself are
 * reported through the callback and the line is skipped as a whole. */
static int parse_line(parse_ctx *c, const uint8_t *p, size_t len)
{
    if (len > TB_HOSTS_LINE_MAX) {
        bad_line(c, "line longer than 1024 bytes", NULL, 0);
        return 0;
    }
    if (memchr(p, 0, len)) {
        bad_line(c, "NUL byte in line", NULL, 0);
        return 0;
    }
    const uint8_t *hash = memchr(p, '#', len);
    if (hash)
        len = (size_t)(hash - p);
    token t[TOKENS_MAX];
    size_t nt = tokenize(p, len, t);
    if (nt == 0)
        return 0;
    int family;
    uint8_t addr[16];
    const char *why = addr_parse(p + t[0].off, t[0].len, &family, addr);
    if (why) {
        bad_line(c, why, p + t[0].off, t[0].len);
        return 0;
    }
    if (nt == 1) {
        bad_line(c, "address without a name", p + t[0].off, t[0].len);
        return 0;
    }
    if (nt == TOKENS_MAX) {
        bad_line(c, "more than 32 names after one address", NULL, 0);
        return 0;
    }
    size_t n0 = c->h->n;
    for (size_t i = 1; i < nt; i++) {
        char name[TB_HOSTS_NAME_MAX + 1];
        why = name_normalise(p + t[i].off, t[i].len, name);
        if (why) {
            bad_line(c, why, p + t[i].off, t[i].len);
            c->h->n = n0;
            return 0;
        }
        if (c->h->n == TB_HOSTS_MAX_ENTRIES) {
            bad_line(c, "more than 4096 entries: this line and the rest of the file skipped", NULL,
                     0);
            c->h->n = n0;
            c->full = true;
            return 0;
        }
        int rc = entry_add(c->h, family, addr, name);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int tb_hosts_parse(const uint8_t *p, size_t len, tb_hosts_bad_line_cb bad, void *arg,
                   tb_hosts **out)
{
    tb_hosts *h = calloc(1, sizeof(*h));
    if (!h)
        return TB_ERR_NOMEM;
    parse_ctx c = {.h = h, .bad = bad, .arg = arg};
    size_t used = 0;
    while (used < len && !c.full) {
        c.lineno++;
        const uint8_t *nl = memchr(p + used, '\n', len - used);
        size_t linelen = nl ? (size_t)(nl - (p + used)) : len - used;
        int rc = parse_line(&c, p + used, linelen);
        if (rc < 0) {
            tb_hosts_free(h);
            return rc;
        }
        used += linelen + (nl ? 1 : 0);
    }
    *out = h;
    return 0;
}

void tb_hosts_free(tb_hosts *h)
{
    if (!h)
        return;
    free(h->e);
    free(h);
}

size_t tb_hosts_count(const tb_hosts *h)
{
    return h ? h->n : 0;
}

static void entry_to_addr(const entry *e, uint16_t port, tb_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (e->family == AF_INET) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&a->ss;
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        memcpy(&v4->sin_addr, e->addr, 4);
        a->len = sizeof(*v4);
    } else {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->ss;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        memcpy(&v6->sin6_addr, e->addr, 16);
        a->len = sizeof(*v6);
    }
}

size_t tb_hosts_lookup(const tb_hosts *h, const char *name, uint16_t port, tb_addr *out, size_t max)
{
    char key[TB_HOSTS_NAME_MAX + 1];
    if (!h || !name || name_normalise((const uint8_t *)name, strlen(name), key) != NULL)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < h->n && n < max; i++) {
        if (strcmp(h->e[i].name, key) != 0)
            continue;
        tb_addr a;
        entry_to_addr(&h->e[i], port, &a);
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = tb_addr_equal(&out[j], &a);
        if (!dup)
            out[n++] = a;
    }
    return n;
}

/* ---- the resolver (edge: file I/O, the loop) -------------------------------------------- */

typedef struct stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int err; /* errno of a failed stat or read; 0 when read */
} stamp;

typedef struct hreq hreq;
typedef struct hres hres;

struct hreq {
    hreq *next;
    hres *owner;
    uint64_t ticket;
    uint64_t fb_ticket; /* for a request passed to the fallback */
    tb_resolve_cb cb;
    void *cb_arg;
    int err;
    char why[160];
    tb_addr addrs[TB_RESOLVE_MAX_ADDRS];
    size_t n;
};

struct hres {
    tb_resolver pub; /* first: the tb_resolver * is the hres * */
    struct ev_loop *loop;
    const tb_log *log;
    tb_resolver *fallback;
    char path[1024];
    tb_hosts *table;
    stamp loaded;
    stamp failed; /* the last failed re-read, logged once */
    bool have_failed;
    ev_timer deliver;
    hreq *local;     /* answers waiting for the loop, oldest first */
    hreq *forwarded; /* requests the fallback holds */
    uint64_t next_ticket;
    bool dispatching, dying;
    size_t bad_lines;
};

static bool stamp_eq(const stamp *a, const stamp *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->err == b->err;
}

static stamp stamp_of(const struct stat *st)
{
    return (stamp){.dev = st->st_dev, .ino = st->st_ino, .size = st->st_size, .mtime = st->st_mtim};
}

static void log_bad_line(void *arg, size_t line, const char *why)
{
    hres *h = arg;
    if (h->bad_lines++ < BAD_LINES_LOGGED)
        tb_log_warn(h->log, "%s:%zu: %s; line skipped", h->path, line, why);
}

/* Reads and parses the file. On failure returns the error, with errno-style detail in *why. */
static int read_table(hres *h, tb_hosts **out, stamp *st_out, char *why, size_t whylen)
{
    int fd = open(h->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        snprintf(why, whylen, "%s", strerror(e));
        if (fd >= 0)
            close(fd);
        return e == ENOENT ? TB_ERR_NOTFOUND : TB_ERR_IO;
    }
    *st_out = stamp_of(&st);
    if (!S_ISREG(st.st_mode) || st.st_size > TB_HOSTS_FILE_MAX) {
        snprintf(why, whylen, "%s", S_ISREG(st.st_mode) ? "larger than 1 MiB" : "not a file");
        close(fd);
        return S_ISREG(st.st_mode) ? TB_ERR_TOO_BIG : TB_ERR_INVAL;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    size_t used = 0;
    int rc = buf ? 0 : TB_ERR_NOMEM;
    while (rc == 0 && used <= (size_t)st.st_size) {
        ssize_t n = read(fd, buf + used, (size_t)st.st_size + 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            rc = TB_ERR_IO;
        }
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    if (rc == 0 && used > (size_t)st.st_size) {
        snprintf(why, whylen, "changed while being read");
        rc = TB_ERR_AGAIN;
    }
    h->bad_lines = 0;
    if (rc == 0)
        rc = tb_hosts_parse(buf, used, log_bad_line, h, out);
    if (rc == TB_ERR_NOMEM)
        snprintf(why, whylen, "out of memory");
    if (h->bad_lines > BAD_LINES_LOGGED)
        tb_log_warn(h->log, "%s: %zu more bad lines skipped", h->path,
                    h->bad_lines - BAD_LINES_LOGGED);
    free(buf);
    return rc;
}

/* Reads the file again when it changed since it was last read (or last failed). */
static void maybe_reload(hres *h)
{
    struct stat st;
    stamp now = {0};
    if (stat(h->path, &st) == 0)
        now = stamp_of(&st);
    else
        now.err = errno;
    if (stamp_eq(&now, &h->loaded) || (h->have_failed && stamp_eq(&now, &h->failed)))
        return;
    tb_hosts *t = NULL;
    stamp got = now;
    char why[128] = "";
    int rc = now.err ? TB_ERR_IO : read_table(h, &t, &got, why, sizeof(why));
    if (rc < 0) {
        h->failed = now;
        h->have_failed = true;
        tb_log_warn(h->log, "%s: cannot read it again (%s); keeping the %zu entries read before",
                    h->path, now.err ? strerror(now.err) : why, tb_hosts_count(h->table));
        return;
    }
    tb_hosts_free(h->table);
    h->table = t;
    h->loaded = got;
    h->have_failed = false;
    tb_log_info(h->log, "%s: changed, %zu entries now", h->path, tb_hosts_count(t));
}

static void req_free_list(hreq *r)
{
    while (r) {
        hreq *next = r->next;
        free(r);
        r = next;
    }
}

static void hres_free(hres *h)
{
    req_free_list(h->local);
    tb_hosts_free(h->table);
    free(h);
}

/* Delivers the answers queued before this call; ones queued by a callback wait for the next
 * round, so a callback that resolves again is never re-entered. */
static void deliver_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hres *h = w->data;
    (void)loop;
    (void)revents;
    size_t due = 0;
    for (hreq *r = h->local; r; r = r->next)
        due++;
    h->dispatching = true;
    while (due-- > 0 && h->local && !h->dying) {
        hreq *r = h->local;
        h->local = r->next;
        r->cb(r->cb_arg, r->err, r->why, r->addrs, r->n);
        free(r);
    }
    h->dispatching = false;
    if (h->dying)
        hres_free(h);
}

static hreq *req_new(hres *h, tb_resolve_cb cb, void *cb_arg)
{
    hreq *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->owner = h;
    r->ticket = ++h->next_ticket;
    r->cb = cb;
    r->cb_arg = cb_arg;
    return r;
}

static void queue_local(hres *h, hreq *r)
{
    hreq **pp = &h->local;
    while (*pp)
        pp = &(*pp)->next;
    *pp = r;
    if (!ev_is_active(&h->deliver))
        ev_timer_start(h->loop, &h->deliver);
}

static void unlink_req(hreq **list, hreq *r)
{
    for (hreq **pp = list; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            return;
        }
    }
}

static void forwarded_cb(void *arg, int err, const char *why, const tb_addr *addrs, size_t n)
{
    hreq *r = arg;
    unlink_req(&r->owner->forwarded, r);
    tb_resolve_cb cb = r->cb;
    void *cb_arg = r->cb_arg;
    free(r);
    cb(cb_arg, err, why, addrs, n); /* may destroy the resolver: touch nothing after */
}

static int hosts_resolve(tb_resolver *pub, const char *host, const char *port, tb_resolve_cb cb,
                         void *cb_arg, uint64_t *ticket)
{
    hres *h = (hres *)pub;
    uint16_t pv;
    if (tb_addr_port_parse(port, strlen(port), 0, &pv, NULL) != TB_OK)
        return TB_ERR_INVAL;
    hreq *r = req_new(h, cb, cb_arg);
    if (!r)
        return TB_ERR_NOMEM;
    if (tb_addr_numeric(host, pv, &r->addrs[0]) == 0) {
        r->n = 1;
    } else {
        maybe_reload(h);
        r->n = tb_hosts_lookup(h->table, host, pv, r->addrs, TB_RESOLVE_MAX_ADDRS);
    }
    if (r->n == 0 && h->fallback) {
        int rc = h->fallback->resolve(h->fallback, host, port, forwarded_cb, r, &r->fb_ticket);
        if (rc < 0) {
            free(r);
            return rc;
        }
        r->next = h->forwarded;
        h->forwarded = r;
        *ticket = r->ticket;
        return 0;
    }
    if (r->n == 0) {
        r->err = TB_ERR_NOTFOUND;
        snprintf(r->why, sizeof(r->why), "not listed in %.140s", h->path);
    }
    *ticket = r->ticket;
    queue_local(h, r);
    return 0;
}

static void hosts_cancel(tb_resolver *pub, uint64_t ticket)
{
    hres *h = (hres *)pub;
    for (hreq *r = h->local; r; r = r->next) {
        if (r->ticket == ticket) {
            unlink_req(&h->local, r);
            free(r);
            return;
        }
    }
    for (hreq *r = h->forwarded; r; r = r->next) {
        if (r->ticket == ticket) {
            h->fallback->cancel(h->fallback, r->fb_ticket);
            unlink_req(&h->forwarded, r);
            free(r);
            return;
        }
    }
}

int tb_resolver_hosts_create(struct ev_loop *loop, const char *path, tb_resolver *fallback,
                             const tb_log *log, tb_resolver **out)
{
    hres *h = calloc(1, sizeof(*h));
    if (!h)
        return TB_ERR_NOMEM;
    if (snprintf(h->path, sizeof(h->path), "%s", path) >= (int)sizeof(h->path)) {
        tb_log_error(log, "hosts file path too long: %.64s...", path);
        free(h);
        return TB_ERR_INVAL;
    }
    h->pub.resolve = hosts_resolve;
    h->pub.cancel = hosts_cancel;
    h->loop = loop;
    h->log = log;
    h->fallback = fallback;
    char why[128] = "";
    int rc = read_table(h, &h->table, &h->loaded, why, sizeof(why));
    if (rc < 0) {
        tb_log_error(log, "hosts file %s: %s", path, why);
        hres_free(h);
        return rc;
    }
    tb_log_info(log, "hosts file %s: %zu entries", path, tb_hosts_count(h->table));
    ev_timer_init(&h->deliver, deliver_cb, 0.0, 0.0);
    h->deliver.data = h;
    *out = &h->pub;
    return 0;
}

void tb_resolver_hosts_destroy(tb_resolver *pub)
{
    if (!pub)
        return;
    hres *h = (hres *)pub;
    for (hreq *r = h->forwarded; r; r = r->next)
        h->fallback->cancel(h->fallback, r->fb_ticket);
    req_free_list(h->forwarded);
    h->forwarded = NULL;
    ev_timer_stop(h->loop, &h->deliver);
    if (h->dispatching) {
        h->dying = true; /* deliver_cb frees it once the callback returns */
        return;
    }
    hres_free(h);
}
