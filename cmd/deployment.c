/*
 * deployment.c — the start-up ownership checks (see deployment.h).
 */
#include "cmd/deployment.h"

#include "consumers/kafka_admin.h"
#include "lib/grow.h"

#include <string.h>

/* The prefix a member's client.id names, or NULL if it is not run's
 * consumer (another client in the group, or -X client.id=…). */
static const char *member_prefix(const char *client_id)
{
    size_t n = strlen(DEPLOYMENT_CLIENT_ID);
    return strncmp(client_id, DEPLOYMENT_CLIENT_ID, n) == 0 ? client_id + n : NULL;
}

/* Refuses if a live member of our own group serves another prefix. */
static int check_own_group(rd_kafka_t *rk, const char *group, const char *prefix, errbuf *err)
{
    char **ids;
    int n = kafka_group_members(rk, group, &ids, NULL, err);
    if (n < 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *p = member_prefix(ids[i]);
        if (!p)
            log_warn("consumer group %s has a member with client.id '%s': not one this check "
                     "can read its --redis-prefix from",
                     group, ids[i]);
        else if (strcmp(p, prefix) != 0) {
            err_set(err,
                    "refusing to start: consumer group %s has a live member serving "
                    "--redis-prefix '%s', and this one is '%s'; one group must serve one prefix, "
                    "or each would hold part of the partitions and overwrite the other's rows. "
                    "Use the same --redis-prefix, or another --group (a member killed moments "
                    "ago stays listed until its session times out, 45 s by default)",
                    group, p, prefix);
            rc = 1;
        }
    }
    strings_free(ids);
    return rc;
}

/* Refuses if another group registered for our prefix still has live
 * members serving it; forgets the ones that do not. */
static int check_other_groups(rd_kafka_t *rk, pg_sink *pg, const char *group, const char *prefix,
                              errbuf *err)
{
    char **groups;
    int n = pg_sink_prefix_groups(pg, prefix, group, &groups, err);
    if (n < 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char **ids;
        errbuf why = {{0}};
        int members = kafka_group_members(rk, groups[i], &ids, NULL, &why);
        if (members < 0) {
            /* Not allowed to describe it, say: it cannot be checked,
             * which is no reason to refuse (nor to forget it). */
            log_warn("cannot tell whether consumer group %s, registered for --redis-prefix '%s', "
                     "is live (%s); not checked",
                     groups[i], prefix, why.msg);
            continue;
        }
        int live = 0;
        for (int m = 0; m < members; m++) {
            const char *p = member_prefix(ids[m]);
            live += !p || strcmp(p, prefix) == 0;
        }
        strings_free(ids);
        if (live) {
            err_set(err,
                    "refusing to start: --redis-prefix '%s' is being consumed by consumer group "
                    "%s (%d live member(s)); one prefix is consumed by one group at a time, or "
                    "two processors apply the same records to one state. Run with --group %s, "
                    "or stop that group first",
                    prefix, groups[i], live, groups[i]);
            rc = 1;
        } else {
            log_info("consumer group %s, which consumed --redis-prefix '%s' before, has no live "
                     "members: group %s takes over",
                     groups[i], prefix, group);
            rc = pg_sink_register_group(pg, prefix, groups[i], false, err);
        }
    }
    strings_free(groups);
    return rc;
}

int deployment_claim(rd_kafka_t *rk, pg_sink *pg, const char *group, const char *prefix,
                     errbuf *err)
{
    int r = check_own_group(rk, group, prefix, err);
    if (r == 0)
        r = check_other_groups(rk, pg, group, prefix, err);
    return r ? r : pg_sink_register_group(pg, prefix, group, true, err);
}

int deployment_check_idle(rd_kafka_t *rk, const char *group, errbuf *err)
{
    char **ids;
    int n = kafka_group_members(rk, group, &ids, NULL, err);
    strings_free(ids);
    if (n > 0)
        err_set(err,
                "refusing to reset: consumer group %s has %d live member(s), which would go on "
                "applying records to the state being deleted; stop them first (a member killed "
                "moments ago stays listed until its session times out, 45 s by default)",
                group, n);
    return n == 0 ? 0 : -1;
}

void deployment_release(rd_kafka_t *rk, pg_sink *pg, const char *group, const char *prefix)
{
    char **ids = NULL, **members = NULL;
    char *me = rd_kafka_memberid(rk);
    errbuf err = {{0}};
    int n = me ? kafka_group_members(rk, group, &ids, &members, &err) : -1;
    bool alone = n >= 0;
    for (int i = 0; i < n; i++)
        alone &= strcmp(members[i], me) == 0;
    if (alone && pg_sink_register_group(pg, prefix, group, false, &err) == 0)
        log_debug("last member of group %s: --redis-prefix '%s' is free for another group", group,
                  prefix);
    else if (err.msg[0])
        log_debug("keeping the registration of group %s: %s", group, err.msg);
    strings_free(ids);
    strings_free(members);
    if (me)
        rd_kafka_mem_free(rk, me);
}
