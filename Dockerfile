# Dockerfile: bin/activity for the `activity` services of docker-compose.yml, in two stages.
#
#   build    Debian 12 with the compilers and -dev packages of scripts/deps.sh --build, the
#            pinned librdkafka 2.12 built from source (scripts/librdkafka.sh, its own cached
#            layer), then the normal `make`; then the binary and exactly the shared libraries
#            it loads (ldd, transitively; not the C library's; librdkafka's included) are
#            gathered under /runtime.
#   runtime  Debian 12 slim plus /runtime and the CA certificates: no compiler, no headers,
#            no check, no clang. Runs as the unprivileged user `activity` (uid 10001).
#
# Both stages use the same pinned base release, so the C library the binary was linked
# against is the one it runs with.

# ---- build -----------------------------------------------------------------------------
FROM debian:12.8-slim AS build

WORKDIR /src
# deps.sh alone first, so the package layer is cached across source changes.
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh --build && rm -rf /var/lib/apt/lists/*

# librdkafka alone next, so its minute-long build is cached across source changes too.
COPY scripts/librdkafka.sh scripts/librdkafka.sh
RUN scripts/librdkafka.sh

COPY . .
RUN make && bin/activity --version

# The binary and every shared library it loads except the C library's own (the runtime
# base has the same ones), in a directory of their own that ld.so.conf.d names: copying
# them to /lib would write through Debian's merged-/usr symlinks.
RUN mkdir -p /runtime/usr/local/bin /runtime/usr/local/lib/activity /runtime/etc/ld.so.conf.d \
    && cp bin/activity /runtime/usr/local/bin/activity \
    && ldd bin/activity | awk '/=> \// {print $3}' \
       | grep -Ev '/(libc|libm|libdl|librt|libpthread|libresolv)\.so' \
       | xargs -r -I{} cp -L {} /runtime/usr/local/lib/activity/ \
    && echo /usr/local/lib/activity >/runtime/etc/ld.so.conf.d/activity.conf

# ---- runtime ---------------------------------------------------------------------------
FROM debian:12.8-slim AS runtime

COPY --from=build /runtime/ /
# libcurl verifies a schema registry's TLS certificate against these.
COPY --from=build /etc/ssl/certs/ /etc/ssl/certs/
RUN ldconfig \
    && /usr/local/bin/activity --version \
    && if ldd /usr/local/bin/activity | grep 'not found'; then exit 1; fi \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin activity

USER 10001
# --metrics-addr is off by default; docker-compose.yml turns it on (ACTIVITY_METRICS_ADDR).
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/activity"]
CMD ["run"]
