// Older symbol versions for the few glibc and libstdc++ functions that the static Swift runtime
// (built on a newer distribution) would otherwise take at versions Amazon Linux 2023 lacks (it has
// glibc 2.34 and the libstdc++ of GCC 11, GLIBCXX_3.4.29). The executables link with
// `--wrap=NAME` (Package.swift, `olderSymbolVersions`), so every call to NAME lands on
// `__wrap_NAME` here, which calls the older version that Debian 12 and AL2023 both export.
// scripts/test-package fails naming any symbol version that is still too new.
//
// The older version is looked up with dlvsym on first use, not bound with `.symver NAME@VERSION`:
// gold applies --wrap to such a versioned reference too, which would make the wrapper call itself.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

/// NAME at VERSION in the libraries already loaded; the process cannot go on without it.
static void *older_version(const char *name, const char *version) {
    void *function = dlvsym(RTLD_DEFAULT, name, version);
    if (function == NULL) {
        fprintf(stderr, "GlibcCompat: %s@%s not found (%s)\n", name, version, dlerror());
        abort();
    }
    return function;
}

/// Loads the cached function pointer, or looks it up once (a race only stores the same value twice).
#define OLDER(type, cache, name, version) \
    type function = __atomic_load_n(&cache, __ATOMIC_ACQUIRE); \
    if (function == NULL) { \
        function = (type)older_version(name, version); \
        __atomic_store_n(&cache, function, __ATOMIC_RELEASE); \
    }

// glibc 2.35 gave hypot and hypotf new default versions that drop the old SVID error-handling
// wrapper; the GLIBC_2.2.5 versions are that wrapper around the same computation.
typedef double (*hypot_function)(double, double);
typedef float (*hypotf_function)(float, float);
static hypot_function hypot_2_2_5;
static hypotf_function hypotf_2_2_5;

double __wrap_hypot(double x, double y) {
    OLDER(hypot_function, hypot_2_2_5, "hypot", "GLIBC_2.2.5")
    return function(x, y);
}

float __wrap_hypotf(float x, float y) {
    OLDER(hypotf_function, hypotf_2_2_5, "hypotf", "GLIBC_2.2.5")
    return function(x, y);
}

// std::condition_variable::wait(std::unique_lock<std::mutex>&): GCC 12 added GLIBCXX_3.4.30 as its
// default version (no longer noexcept, for thread cancellation); GLIBCXX_3.4.11 is the same wait
// on pthread_cond_wait. Neither throws in normal operation, so a C frame in between is fine.
typedef void (*condition_wait_function)(void *condition, void *lock);
static condition_wait_function condition_wait_3_4_11;

void __wrap__ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE(void *condition, void *lock) {
    OLDER(condition_wait_function, condition_wait_3_4_11,
          "_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE", "GLIBCXX_3.4.11")
    function(condition, lock);
}
