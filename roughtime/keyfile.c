#include "roughtime/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"

void tb_rt_key_b64(const uint8_t key[32], char out[45])
{
    sodium_bin2base64(out, 45, key, 32, sodium_base64_VARIANT_ORIGINAL);
}

int tb_rt_key_from_b64(const char *s, uint8_t key[32])
{
    size_t n;
    if (sodium_base642bin(key, 32, s, strlen(s), "\n\r ", &n, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        n != 32)
        return TB_ERR_MALFORMED;
    return 0;
}

int tb_rt_key_generate(const char *path, uint8_t pk[32], char *err, size_t errlen)
{
    uint8_t seed[32], sk[64];
    char line[46];
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == EEXIST ? TB_ERR_EXISTS : TB_ERR_IO;
    }
    randombytes_buf(seed, sizeof(seed));
    crypto_sign_ed25519_seed_keypair(pk, sk, seed);
    tb_rt_key_b64(seed, line);
    size_t len = strlen(line);
    line[len++] = '\n';
    ssize_t w = write(fd, line, len);
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(line, sizeof(line));
    if (w != (ssize_t)len || fsync(fd) < 0 || close(fd) < 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        unlink(path);
        return TB_ERR_IO;
    }
    return 0;
}

int tb_rt_key_load(const char *path, uint8_t sk[64], char *err, size_t errlen)
{
    char line[128];
    uint8_t seed[32], pk[32];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? TB_ERR_NOTFOUND : TB_ERR_IO;
    }
    if (fstat(fd, &st) < 0 || (st.st_mode & 077) != 0) {
        snprintf(err, errlen, "%s: mode %03o lets others read the key; chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
        close(fd);
        return TB_ERR_INVAL;
    }
    ssize_t n = read(fd, line, sizeof(line) - 1);
    close(fd);
    if (n <= 0) {
        snprintf(err, errlen, "%s: empty or unreadable", path);
        return TB_ERR_MALFORMED;
    }
    line[n] = 0;
    int rc = tb_rt_key_from_b64(line, seed);
    sodium_memzero(line, sizeof(line));
    if (rc < 0) {
        sodium_memzero(seed, sizeof(seed)); /* a failed decode may have written part of it */
        snprintf(err, errlen, "%s: not a base64 32-byte Ed25519 seed", path);
        return rc;
    }
    crypto_sign_ed25519_seed_keypair(pk, sk, seed);
    sodium_memzero(seed, sizeof(seed));
    return 0;
}

int tb_rt_cert_write(const char *path, const tb_rt_delegation *d, char *err, size_t errlen)
{
    char pk[45], cert[sodium_base64_ENCODED_LEN(160, sodium_base64_VARIANT_ORIGINAL)];
    char from[TB_CLOCK_RFC3339_LEN], to[TB_CLOCK_RFC3339_LEN];
    tb_rt_key_b64(d->longterm_pk, pk);
    sodium_bin2base64(cert, sizeof(cert), d->cert, d->cert_len, sodium_base64_VARIANT_ORIGINAL);
    tb_clock_format_rfc3339(d->mint_s * (int64_t)TB_NS_PER_SEC, from, sizeof(from));
    tb_clock_format_rfc3339(d->maxt_s * (int64_t)TB_NS_PER_SEC, to, sizeof(to));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == EEXIST ? TB_ERR_EXISTS : TB_ERR_IO;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(path);
        return snprintf(err, errlen, "%s: %s", path, strerror(errno)), TB_ERR_IO;
    }
    fprintf(f, "# tbroughtime delegation, valid %s to %s\npubkey %s\ncert %s\n", from, to, pk,
            cert);
    if (fflush(f) != 0 || fsync(fd) < 0 || fclose(f) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        unlink(path);
        return TB_ERR_IO;
    }
    return 0;
}

/* The value of "NAME value" in text, into out (NUL-terminated); false when absent. */
static bool field(const char *text, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, name, n) != 0 || l[n] != ' ')
            continue;
        size_t k = strcspn(l + n + 1, "\n");
        if (k >= cap)
            return false;
        memcpy(out, l + n + 1, k);
        out[k] = 0;
        return true;
    }
    return false;
}

int tb_rt_delegation_load(const char *cert_path, const char *key_path, int64_t now_s,
                          tb_rt_delegation *d, char *err, size_t errlen)
{
    char text[1024], b64[400];
    memset(d, 0, sizeof(*d));
    FILE *f = fopen(cert_path, "re");
    if (!f)
        return snprintf(err, errlen, "%s: %s", cert_path, strerror(errno)), TB_ERR_NOTFOUND;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = 0;
    size_t len = 0;
    if (!field(text, "pubkey", b64, sizeof(b64)) || tb_rt_key_from_b64(b64, d->longterm_pk) < 0 ||
        !field(text, "cert", b64, sizeof(b64)) ||
        sodium_base642bin(d->cert, sizeof(d->cert), b64, strlen(b64), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return snprintf(err, errlen, "%s: not a delegation (lines \"pubkey B64\", \"cert B64\")",
                        cert_path),
               TB_ERR_MALFORMED;
    d->cert_len = len;
    int rc = tb_rt_key_load(key_path, d->online_sk, err, errlen);
    if (rc < 0)
        return rc;
    rc = tb_rt_delegation_check(d);
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", cert_path,
                 rc == TB_ERR_VERIFY ? "does not delegate this online key (signature or key differ)"
                                     : "CERT malformed");
    if (rc == 0 && now_s > d->maxt_s) {
        char when[TB_CLOCK_RFC3339_LEN];
        tb_clock_format_rfc3339(d->maxt_s * (int64_t)TB_NS_PER_SEC, when, sizeof(when));
        snprintf(err, errlen, "%s: the delegation expired at %s; refusing to serve", cert_path,
                 when);
        rc = TB_ERR_TIMEOUT;
    }
    if (rc < 0)
        sodium_memzero(d, sizeof(*d));
    return rc;
}
