/*
 * failpoint.c — named crash points (see failpoint.h).
 */
#include "lib/failpoint.h"

#include "lib/log.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POINT_NAME 64

/* Splits the variable var, "name[:tail]" (at the last colon): the name
 * into armed, cut to fit, *tail past the colon (NULL without one).
 * Returns the name's length, or -1 when var is unset or empty. */
static long point_spec(const char *var, char armed[POINT_NAME], const char **tail)
{
    const char *spec = getenv(var);
    if (!spec || !*spec)
        return -1;
    const char *colon = strrchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    size_t keep = len < POINT_NAME ? len : POINT_NAME - 1;
    memcpy(armed, spec, keep);
    armed[keep] = '\0';
    *tail = colon ? colon + 1 : NULL;
    return (long)len;
}

void failpoint(const char *name)
{
    static int state = -1; /* -1 unknown, 0 off, 1 armed */
    static char armed[POINT_NAME];
    static long remaining;
    if (state == 0)
        return;
    if (state < 0) {
        const char *tail;
        state = point_spec("ACTIVITY_FAILPOINT", armed, &tail) >= 0;
        if (!state)
            return;
        remaining = tail ? strtol(tail, NULL, 10) : 1;
    }
    if (strcmp(name, armed) != 0 || --remaining > 0)
        return;
    log_warn("failpoint %s reached: killing this process with SIGKILL", name);
    raise(SIGKILL);
}

void delaypoint(const char *name)
{
    static int state = -1; /* -1 unknown, 0 off, 1 armed */
    static char armed[POINT_NAME];
    static double seconds;
    if (state == 0)
        return;
    if (state < 0) {
        const char *tail;
        long len = point_spec("ACTIVITY_DELAYPOINT", armed, &tail);
        state = len >= 0 && tail && len < POINT_NAME;
        if (!state)
            return;
        seconds = strtod(tail, NULL);
    }
    if (strcmp(name, armed) != 0 || !(seconds > 0))
        return;
    log_debug("delay point %s: sleeping %.3f s", name, seconds);
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}
