#include "roughtime/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
