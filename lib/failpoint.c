/*
 * failpoint.c — named crash points (see failpoint.h).
 */
#include "lib/failpoint.h"

#include "lib/log.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void failpoint(const char *name)
{
    static int state = -1; /* -1 unknown, 0 off, 1 armed */
    static char armed[64];
    static long remaining;
    if (state == 0)
        return;
    if (state < 0) {
        const char *spec = getenv("ACTIVITY_FAILPOINT");
        state = spec && *spec;
        if (!state)
            return;
        const char *colon = strrchr(spec, ':');
        size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
        if (len >= sizeof armed)
            len = sizeof armed - 1;
        memcpy(armed, spec, len);
        remaining = colon ? strtol(colon + 1, NULL, 10) : 1;
    }
    if (strcmp(name, armed) != 0 || --remaining > 0)
        return;
    log_warn("failpoint %s reached: killing this process with SIGKILL", name);
    raise(SIGKILL);
}

void delaypoint(const char *name)
{
    static int state = -1; /* -1 unknown, 0 off, 1 armed */
    static char armed[64];
    static double seconds;
    if (state == 0)
        return;
    if (state < 0) {
        const char *spec = getenv("ACTIVITY_DELAYPOINT");
        const char *colon = spec ? strrchr(spec, ':') : NULL;
        state = colon && (size_t)(colon - spec) < sizeof armed;
        if (!state)
            return;
        memcpy(armed, spec, (size_t)(colon - spec));
        armed[colon - spec] = '\0';
        seconds = strtod(colon + 1, NULL);
    }
    if (strcmp(name, armed) != 0 || !(seconds > 0))
        return;
    log_debug("delay point %s: sleeping %.3f s", name, seconds);
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}
