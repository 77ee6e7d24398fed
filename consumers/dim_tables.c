/*
 * dim_tables.c — the dimensions' columns and profile paths (see dim_tables.h).
 */
#include "consumers/dim_tables.h"

const dim_table dim_tables[DIM_COUNT] = {
    [DIM_DEVICES] = {"dim_devices",
                     "device_id",
                     "device_sk",
                     "dim_devices_changes",
                     'd',
                     3,
                     {"browser_type", "os_type", "device_type"}},
    [DIM_USERS] = {"dim_users",
                   "user_id",
                   "user_sk",
                   "dim_users_changes",
                   'u',
                   PROFILE_NATTRS,
                   {"first_name", "last_name", "title", "street", "city", "state", "country", "zip",
                    "contact_type", "contact_value"}},
};

const char *const profile_paths[PROFILE_NATTRS][2] = {
    [PROFILE_FIRST_NAME] = {"name", "first"},     [PROFILE_LAST_NAME] = {"name", "last"},
    [PROFILE_TITLE] = {"name", "title"},          [PROFILE_STREET] = {"address", "street"},
    [PROFILE_CITY] = {"address", "city"},         [PROFILE_STATE] = {"address", "state"},
    [PROFILE_COUNTRY] = {"address", "country"},   [PROFILE_ZIP] = {"address", "zip"},
    [PROFILE_CONTACT_TYPE] = {"contact", "type"}, [PROFILE_CONTACT_VALUE] = {"contact", "value"},
};
