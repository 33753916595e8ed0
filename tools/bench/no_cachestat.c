/* LD_PRELOAD shim for tools/bench-relay-http.sh --cold "before" runs: syscall(451) (cachestat)
 * fails with ENOSYS, so the relay takes its documented fallback (every range sent with
 * sendfile directly, no read-ins); every other syscall() is forwarded. See BENCHMARKS.md.
 *   gcc -O2 -shared -fPIC -o /tmp/no_cachestat.so tools/bench/no_cachestat.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
long syscall(long nr, ...) {
    static long (*real)(long, ...);
    va_list ap;
    long a[6];
    va_start(ap, nr);
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (nr == 451) { errno = ENOSYS; return -1; }
    if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
