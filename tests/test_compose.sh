#!/usr/bin/env bash
# tests/test_compose.sh — docker-compose.yml and the Dockerfile are valid and agree with the
# local stack and the code (part of `make test`).
#
# With a Docker client, `docker compose config` must accept the file. Without one (CI, this
# repository's machines) the file must at least be valid YAML. Either way it is checked
# against what scripts/stack.sh runs and the code creates: the Kafka image is
# scripts/kafka/pom.xml's kafka.version, Redis and PostgreSQL the versions the stack runs,
# every image tag pinned, topic partitions equal to stack.sh's num.partitions and to
# KAFKA_DEFAULT_PARTITIONS (the dead-letter topic run creates); two or more activity
# replicas in one group, each serving --metrics-addr with a /readyz healthcheck on that
# port, all scraped by the pinned Prometheus; and the Dockerfile multi-stage, pinned, with
# a non-root runtime user; PostgreSQL (compose and the local stack) with postgresql-hll.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

if docker compose version >/dev/null 2>&1; then
    docker compose -f docker-compose.yml config -q
    echo "test_compose: docker compose config: ok"
else
    echo "test_compose: no docker compose client; checking the YAML with python3"
fi

redis_version=$(redis-server --version 2>/dev/null | sed -n 's/.* v=\([0-9]*\.[0-9]*\).*/\1/p' || true)
python3 - "$redis_version" <<'PY'
import os, re, sys
import yaml

redis_local = sys.argv[1]
problems = []
def check(ok, what):
    if not ok:
        problems.append(what)

doc = yaml.safe_load(open("docker-compose.yml"))
services = doc["services"]
pom = open("scripts/kafka/pom.xml").read()
kafka_version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom).group(1)
stack = open("scripts/stack.sh").read()
stack_partitions = int(re.search(r"^num\.partitions=(\d+)", stack, re.M).group(1))
pg_major = re.search(r"/usr/lib/postgresql/(\d+)/bin", stack).group(1)
code_partitions = int(re.search(r"#define KAFKA_DEFAULT_PARTITIONS (\d+)",
                                open("consumers/kafka_admin.h").read()).group(1))

def tag(image):
    return image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""

for name, svc in services.items():
    image = svc.get("image", "")
    if image and "build" not in svc:
        t = tag(image)
        check(t and re.search(r"\d+\.\d+", t), f"{name}: image {image} is not pinned to a release")

for name in ("kafka", "kafka-init"):
    check(tag(services[name]["image"]) == kafka_version,
          f"{name}: {services[name]['image']}, but the stack runs Kafka {kafka_version} (scripts/kafka/pom.xml)")
if redis_local:
    check(tag(services["redis"]["image"]).startswith(redis_local + "."),
          f"redis: {services['redis']['image']}, but the stack runs Redis {redis_local}")
check(tag(services["postgres"]["image"]).split(".")[0] == pg_major,
      f"postgres: {services['postgres']['image']}, but the stack runs PostgreSQL {pg_major}")

# host_daily_uniques needs the postgresql-hll extension: the postgres service is built
# from a Dockerfile on the pinned image that installs postgresql-<major>-hll.
pg = services["postgres"]
pg_build = pg.get("build")
pg_ctx = pg_build if isinstance(pg_build, str) else (pg_build or {}).get("context")
if not pg_ctx:
    problems.append("postgres: not built with the postgresql-hll extension (no build:)")
else:
    pg_docker = open(os.path.join(pg_ctx, "Dockerfile")).read()
    pg_from = re.findall(r"^FROM\s+(\S+)", pg_docker, re.M)
    check(pg_from and re.search(r":" + pg_major + r"\.\d+", pg_from[-1]),
          f"postgres: {pg_ctx}/Dockerfile is not on a pinned PostgreSQL {pg_major} image: {pg_from}")
    check("postgresql-$PG_MAJOR-hll" in pg_docker or f"postgresql-{pg_major}-hll" in pg_docker,
          f"postgres: {pg_ctx}/Dockerfile does not install postgresql-{pg_major}-hll")
check("postgresql-15-hll" in open("scripts/deps.sh").read(),
      "scripts/deps.sh does not install postgresql-15-hll for the local stack")

init = " ".join(services["kafka-init"]["command"])
created = [int(n) for n in re.findall(r"--partitions (\d+)", init)]
check(created and all(n == stack_partitions for n in created),
      f"kafka-init creates topics with {created} partitions, stack.sh with {stack_partitions}")
check(int(services["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"]) == stack_partitions,
      "KAFKA_NUM_PARTITIONS differs from stack.sh's num.partitions")
check(code_partitions == stack_partitions,
      f"KAFKA_DEFAULT_PARTITIONS is {code_partitions}, stack.sh's num.partitions {stack_partitions}")
for t in ("activity.web_events", "activity.devices", "activity.user_profiles", "activity.dlq"):
    check(t in init, f"kafka-init does not create {t}")

replicas = {n: s for n, s in services.items() if n.startswith("activity")}
check(len(replicas) >= 2, f"{len(replicas)} activity service(s), want two replicas")
groups = {s["environment"].get("ACTIVITY_GROUP") for s in replicas.values()}
check(len(groups) == 1 and None not in groups, f"the replicas are not in one group: {groups}")
targets = []
for name, s in replicas.items():
    addr = s["environment"].get("ACTIVITY_METRICS_ADDR", "")
    check(addr, f"{name}: no ACTIVITY_METRICS_ADDR")
    port = addr.rsplit(":", 1)[-1]
    hc = " ".join(s.get("healthcheck", {}).get("test", []))
    check("/readyz" in hc and port in hc, f"{name}: the healthcheck does not GET /readyz on {port}")
    targets.append(f"{name}:{port}")

prom = services.get("prometheus")
check(prom is not None, "no prometheus service")
if prom:
    conf = next(v.split(":")[0] for v in prom["volumes"] if "prometheus.yml" in v)
    pconf = yaml.safe_load(open(conf))
    scraped = [t for j in pconf["scrape_configs"] for sc in j["static_configs"] for t in sc["targets"]]
    check(sorted(scraped) == sorted(targets), f"Prometheus scrapes {scraped}, the replicas serve {targets}")

docker = open("Dockerfile").read()
froms = re.findall(r"^FROM\s+(\S+)", docker, re.M)
check(len(froms) >= 2, "the Dockerfile is not multi-stage")
check(all(re.search(r":\d+\.\d+", f) for f in froms), f"unpinned base images: {froms}")
last = docker[docker.rindex("\nFROM"):]
user = re.findall(r"^USER\s+(\S+)", last, re.M)
check(user and user[-1] not in ("0", "root"), "the runtime stage does not run as a non-root user")
check(not re.search(r"build-essential|clang|deps\.sh", last), "the runtime stage installs build tools")

if problems:
    print("test_compose: FAIL\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"test_compose: ok ({len(services)} services, Kafka {kafka_version}, "
      f"{stack_partitions} partitions, {len(replicas)} replicas scraped by Prometheus)")
PY
