/*
 * failpoint.h — named crash points for the exactly-once tests.
 *
 * With ACTIVITY_FAILPOINT=name:N in the environment, the process kills
 * itself with SIGKILL (exactly like `kill -9`) the Nth time it reaches the
 * failpoint called name (N defaults to 1). Without the variable a failpoint
 * costs one branch. The tests use them to crash at the instants a random
 * kill would rarely hit: between sending a Redis apply and reading its
 * reply, between the PostgreSQL commit and the Redis cleanup of a flush.
 */
#ifndef ACTIVITY_FAILPOINT_H
#define ACTIVITY_FAILPOINT_H

void failpoint(const char *name);

/* With ACTIVITY_DELAYPOINT=name:SECONDS, sleeps that long every time the
 * delay point called name is reached: the tests widen a race window
 * (another instance's eviction between a flush's take and its reads) that
 * timing alone would rarely open. Without the variable: one branch. */
void delaypoint(const char *name);

#endif
