/* The long-term Ed25519 key on disk: one line, the base64 32-byte seed, in a file of mode 0600
 * created exclusively. Loading refuses a file that group or others can read. */
#ifndef TB_ROUGHTIME_KEYFILE_H
#define TB_ROUGHTIME_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "roughtime/server.h"

/* Creates path (never overwriting) with a fresh key; pk receives the public key. */
TB_WUR int tb_rt_key_generate(const char *path, uint8_t pk[32], char *err, size_t errlen);
/* Loads the key into a libsodium secret key (seed ‖ public key). */
TB_WUR int tb_rt_key_load(const char *path, uint8_t sk[64], char *err, size_t errlen);
/* Base64 (standard alphabet) of a 32-byte key into out[45]. */
void tb_rt_key_b64(const uint8_t key[32], char out[45]);
/* Decodes a base64 32-byte key. */
TB_WUR int tb_rt_key_from_b64(const char *s, uint8_t key[32]);

/* An offline delegation on disk: the CERT file (public: a comment with the window, then the
 * lines "pubkey B64" (the long-term public key) and "cert B64" (the CERT message)), created
 * exclusively, mode 0644; the online key is a key file as above. */
TB_WUR int tb_rt_cert_write(const char *path, const tb_rt_delegation *d, char *err, size_t errlen);
/* Loads both and checks them (tb_rt_delegation_check), and refuses one whose MAXT is before
 * now_s (TB_ERR_TIMEOUT, "CERT: the delegation expired at T; refusing to serve"): err names
 * the file and what is wrong. */
TB_WUR int tb_rt_delegation_load(const char *cert_path, const char *key_path, int64_t now_s,
                                 tb_rt_delegation *d, char *err, size_t errlen);

#endif
