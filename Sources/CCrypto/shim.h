#pragma once
// OpenSSL libcrypto for Swift: the few digests the project needs (SHA-256 for checksums and host key
// fingerprints, HMAC-SHA1 for OpenSSH's hashed known_hosts entries), as plain functions with
// fixed-size outputs so callers never touch OpenSSL's deprecated low-level API.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stddef.h>

/// SHA-256 of `len` bytes into `out` (32 bytes). Returns 1 on success.
static inline int ccr_sha256(const void *data, size_t len, unsigned char out[32]) {
    unsigned int outLen = 0;
    return EVP_Digest(data, len, out, &outLen, EVP_sha256(), NULL) == 1 && outLen == 32;
}

/// HMAC-SHA1 of `len` bytes with `key` into `out` (20 bytes). Returns 1 on success.
static inline int ccr_hmac_sha1(const void *key, size_t keyLen, const void *data, size_t len,
                                unsigned char out[20]) {
    unsigned int outLen = 0;
    return HMAC(EVP_sha1(), key, (int)keyLen, (const unsigned char *)data, len, out, &outLen) != NULL
        && outLen == 20;
}

/// Incremental SHA-256 (for large files): new, update..., final (which frees the context).
static inline EVP_MD_CTX *ccr_sha256_begin(void) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) { EVP_MD_CTX_free(ctx); return NULL; }
    return ctx;
}
static inline int ccr_sha256_update(EVP_MD_CTX *ctx, const void *data, size_t len) {
    return EVP_DigestUpdate(ctx, data, len);
}
static inline int ccr_sha256_finish(EVP_MD_CTX *ctx, unsigned char out[32]) {
    unsigned int outLen = 0;
    int ok = EVP_DigestFinal_ex(ctx, out, &outLen) == 1 && outLen == 32;
    EVP_MD_CTX_free(ctx);
    return ok;
}
