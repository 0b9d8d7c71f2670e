#include "CLibCurl.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

// The functions CloudAPI uses, resolved from libcurl.so.4 by `load`.
static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
} curl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512];

static void load(void) {
    // The soname Debian's libcurl4 (the .deb's Depends) installs; RTLD_NOW: a missing symbol
    // shows here, once, not as a crash in the middle of a request.
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(failure, sizeof failure, "%s", dlerror());
        return;
    }
#define RESOLVE(field, name)                                                                   \
    if (!(*(void **)&curl.field = dlsym(lib, name))) {                                          \
        snprintf(failure, sizeof failure, "libcurl.so.4 has no %s", name);                     \
        return;                                                                                \
    }
    RESOLVE(global_init, "curl_global_init")
    RESOLVE(easy_init, "curl_easy_init")
    RESOLVE(easy_cleanup, "curl_easy_cleanup")
    RESOLVE(easy_perform, "curl_easy_perform")
    RESOLVE(easy_strerror, "curl_easy_strerror")
    RESOLVE(slist_append, "curl_slist_append")
    RESOLVE(slist_free_all, "curl_slist_free_all")
    RESOLVE(easy_setopt, "curl_easy_setopt")
    RESOLVE(easy_getinfo, "curl_easy_getinfo")
#undef RESOLVE
}

const char *ccrun_curl_load(void) {
    pthread_once(&once, load);
    return failure[0] ? failure : NULL;
}

CURLcode ccrun_curl_global_init(long flags) { return curl.global_init(flags); }
CURL *ccrun_curl_easy_init(void) { return curl.easy_init(); }
void ccrun_curl_easy_cleanup(CURL *h) { curl.easy_cleanup(h); }
CURLcode ccrun_curl_easy_perform(CURL *h) { return curl.easy_perform(h); }
const char *ccrun_curl_easy_strerror(CURLcode code) { return curl.easy_strerror(code); }
struct curl_slist *ccrun_curl_slist_append(struct curl_slist *list, const char *string) {
    return curl.slist_append(list, string);
}
void ccrun_curl_slist_free_all(struct curl_slist *list) { curl.slist_free_all(list); }

CURLcode ccrun_curl_setopt_long(CURL *h, CURLoption opt, long value) { return curl.easy_setopt(h, opt, value); }
CURLcode ccrun_curl_setopt_string(CURL *h, CURLoption opt, const char *value) { return curl.easy_setopt(h, opt, value); }
CURLcode ccrun_curl_setopt_pointer(CURL *h, CURLoption opt, void *value) { return curl.easy_setopt(h, opt, value); }
CURLcode ccrun_curl_setopt_slist(CURL *h, CURLoption opt, struct curl_slist *value) {
    return curl.easy_setopt(h, opt, value);
}
CURLcode ccrun_curl_setopt_write_callback(CURL *h, ccrun_curl_write_callback cb) {
    return curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, cb);
}
CURLcode ccrun_curl_getinfo_long(CURL *h, CURLINFO info, long *out) { return curl.easy_getinfo(h, info, out); }
