# Dockerfile: bin/activity on Debian 12, for the `activity` service of docker-compose.yml.
# Packages come from scripts/deps.sh (--build: compilers, client libraries and npm; the
# servers run in their own containers), then the normal `make`, which builds the pinned
# librdkafka 2.12 from source first (scripts/librdkafka.sh, into /src/build/librdkafka,
# which bin/activity finds through its rpath).
FROM debian:12

WORKDIR /src
# deps.sh alone first, so the package layer is cached across source changes.
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh --build && rm -rf /var/lib/apt/lists/*

# librdkafka alone next, so its minute-long build is cached across source changes too.
COPY scripts/librdkafka.sh scripts/librdkafka.sh
RUN scripts/librdkafka.sh

COPY . .
RUN make && bin/activity --version

ENTRYPOINT ["/src/bin/activity"]
CMD ["run"]
