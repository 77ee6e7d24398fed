/*
 * redis_state.h — the processor's state in Redis: the key layout, and the
 * module's three parts: the connection (processors/redis_conn.h), what
 * writes state (processors/state_apply.h) and the flush's reads
 * (processors/state_read.h).
 *
 * Key layout (all keys of a key group share the "{g}" hash tag):
 *   <p>:meta                    layout version and KEY_GROUPS
 *   <p>:{g}:fence               hash "topic/partition" -> next offset to apply
 *   <p>:{g}:h:<YYYYMM>:<host>   hash day -> hits
 *   <p>:{g}:s:<YYYYMMDD>:<host> set of users (exact, while small), members as
 *                               lib/hll.h's hll_redis_member
 *   <p>:{g}:p:<YYYYMMDD>:<host> HyperLogLog of the same members (once large): the
 *                               day's sketch registers
 *   <p>:{g}:u:<YYYYMM>:<bucket> hash user -> "device=mask,..." (day masks;
 *                               the device "null" holds the days of events
 *                               without a device_id)
 *   <p>:{g}:d                   hash device -> encoded attributes
 *   <p>:{g}:w                   set of "device|YYYYMM:user" waiting for a device
 *   <p>:{g}:wm                  hash "topic/partition" -> watermark (epoch ms:
 *                               latest event time minus the allowed lateness)
 *   <p>:{g}:months              set of the months (YYYYMM) the group holds
 *   <p>:{g}:k:<YYYYMM>          set of every key an apply wrote for the month
 *                               (what evict.lua deletes)
 *   <p>:{g}:evicted             set of the months evicted (apply.lua asks
 *                               for an entity's rehydration first)
 *   <p>:{g}:evgen               hash month -> how many times it was evicted
 *                               (fences rehydrate.lua's writes)
 *   <p>:{g}:r:<YYYYMM>          set of the entities ("h<host>", "u<user>") of an
 *                               evicted month that rehydrate.lua brought back
 *   <p>:{g}:dirty, :flushing    sets of entities to (re-)flush
 *   <p>:{g}:flushtoken          token of the flush that took :flushing last
 *   <p>:{g}:dim, :dimflushing   hash "d<device>"/"u<user>" -> buffered dimension
 *                               changes (processors/dims.h); ":flushing" holds
 *                               the member "D" while :dimflushing exists
 *   <p>:flushgen                counter handing out flush tokens
 *   <p>:pgtoken                 newest flush token PostgreSQL committed
 *   <p>:epoch                   changed when every instance must resync
 * This module is the only one that knows key names; hiredis stays inside
 * it (processors/redis_conn_impl.h).
 */
#ifndef ACTIVITY_REDIS_STATE_H
#define ACTIVITY_REDIS_STATE_H

#include "processors/redis_conn.h"
#include "processors/state_apply.h"
#include "processors/state_read.h"

#endif
