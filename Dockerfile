# Dockerfile: bin/activity on Debian 12, for the `activity` service of docker-compose.yml.
# Packages come from scripts/deps.sh (--build: compilers and client libraries only; the
# servers run in their own containers), then the normal `make`.
FROM debian:12

WORKDIR /src
# deps.sh alone first, so the package layer is cached across source changes.
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh --build && rm -rf /var/lib/apt/lists/*

COPY . .
RUN make

ENTRYPOINT ["/src/bin/activity"]
CMD ["run"]
