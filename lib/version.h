/*
 * version.h — our release, in one place: `activity --version`, run's
 * start-up line and the activity_build_info metric all print it. The build
 * may override it (-DACTIVITY_VERSION=...).
 */
#ifndef ACTIVITY_VERSION_H
#define ACTIVITY_VERSION_H

#ifndef ACTIVITY_VERSION
#define ACTIVITY_VERSION "0.1.0"
#endif

#endif
