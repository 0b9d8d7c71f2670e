#pragma once
#include <curl/curl.h>

// libcurl, loaded on first use (dlopen) instead of at start-up. Linked, libcurl and the ~30
// libraries it needs (GnuTLS, Kerberos, LDAP, RTMP, nghttp2...) cost every ccrun start about
// 10 ms of loading and relocating, and only the AWS commands use it: a no-op run of a runbook,
// whose target is half of one `ssh HOST true` (bench/run row (e)), does not pay it any more.
// CloudAPI calls libcurl only through these functions; curl.h gives the types and constants.

// Loads libcurl.so.4 and its functions once (thread-safe). NULL when loaded, else why not
// (dlopen's or dlsym's message). Call it before any other function below: they assume success.
const char *ccrun_curl_load(void);

CURLcode ccrun_curl_global_init(long flags);
CURL *ccrun_curl_easy_init(void);
void ccrun_curl_easy_cleanup(CURL *h);
CURLcode ccrun_curl_easy_perform(CURL *h);
const char *ccrun_curl_easy_strerror(CURLcode code);
struct curl_slist *ccrun_curl_slist_append(struct curl_slist *list, const char *string);
void ccrun_curl_slist_free_all(struct curl_slist *list);

// curl_easy_setopt and curl_easy_getinfo are variadic: Swift cannot call them.
// These typed wrappers are the only way CloudAPI sets options.
typedef size_t (*ccrun_curl_write_callback)(char *ptr, size_t size, size_t nmemb, void *userdata);
CURLcode ccrun_curl_setopt_long(CURL *h, CURLoption opt, long value);
CURLcode ccrun_curl_setopt_string(CURL *h, CURLoption opt, const char *value);
CURLcode ccrun_curl_setopt_pointer(CURL *h, CURLoption opt, void *value);
CURLcode ccrun_curl_setopt_slist(CURL *h, CURLoption opt, struct curl_slist *value);
CURLcode ccrun_curl_setopt_write_callback(CURL *h, ccrun_curl_write_callback cb);
CURLcode ccrun_curl_getinfo_long(CURL *h, CURLINFO info, long *out);
