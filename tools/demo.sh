#!/usr/bin/env bash
# A walk through the engine's container lifecycle with the real docker CLI.
#
# Starts a private novadocker-engine (root and socket in a temp dir), seeds
# busybox:latest built by tools/mkimage.py, runs one docker command per step
# and prints each before running it; then Nova's compute driver runs the
# instance lifecycle on the same engine and registry (tools/nova_demo.py),
# and Heat creates and deletes one stack on it (tools/heat_demo.py).
# Whatever happens (failure, Ctrl-C), the engine is stopped and everything it
# made is removed.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$REPO/.venv}
ENGINE=${ENGINE:-$VENV/bin/novadocker-engine}
PY=$VENV/bin/python
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
DOCKER=${DOCKER:-/usr/local/bin/docker}
[[ -x $DOCKER ]] || DOCKER=$(command -v docker)

WORK=$(mktemp -d /tmp/nd-demo-XXXXXX)
SOCK=$WORK/engine.sock
export DOCKER_HOST=unix://$SOCK
export DOCKER_CONFIG=$WORK/docker-config
export DOCKER_CLI_HINTS=false
mkdir -p "$DOCKER_CONFIG" && echo '{}' > "$DOCKER_CONFIG/config.json"

NAME=nd-demo-$$
IMAGE=nd-demo-image
ENGINE_PID=
REGISTRY_PID=
CONTAINERS=()
STEP=0
# The Linux bridge the Nova section makes for its instances' ports.
NOVA_BRIDGE=ndnova$$
NOVA_BRIDGE=${NOVA_BRIDGE:0:15}

bold() { if [[ -t 1 ]]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    echo
    bold "== cleaning up"
    if [[ -n $ENGINE_PID ]] && kill -0 "$ENGINE_PID" 2>/dev/null; then
        for c in "${CONTAINERS[@]}"; do
            timeout 30 "$DOCKER" rm -f "$c" >/dev/null 2>&1 || true
        done
        kill -TERM "$ENGINE_PID" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$ENGINE_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$ENGINE_PID" 2>/dev/null || true
        wait "$ENGINE_PID" 2>/dev/null || true
    fi
    if ip link show "$NOVA_BRIDGE" >/dev/null 2>&1; then
        ip link del "$NOVA_BRIDGE" 2>/dev/null || true
    fi
    if [[ -n ${REGISTRY_PID:-} ]]; then
        kill "$REGISTRY_PID" 2>/dev/null || true
        wait "$REGISTRY_PID" 2>/dev/null || true
    fi
    # Anything the engine left behind: runtime state, monitors, mounts, files;
    # then its bridges, iptables rules and leases on the host.
    (cd "$REPO" && "$PY" -c 'import sys; from tests.daemons import scrub; scrub(sys.argv[1], remove=False)' "$WORK") || true
    [[ -d $WORK/root ]] && timeout 120 "$ENGINE" --root "$WORK/root" purge-networks >/dev/null 2>&1
    (cd "$REPO" && "$PY" -c 'import sys; from tests.daemons import scrub; scrub(sys.argv[1])' "$WORK") \
        || rm -rf "$WORK"
    if [[ $rc -eq 0 ]]; then
        bold "== demo finished: every step passed"
    else
        bold "== demo FAILED (exit $rc)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo interrupted; exit 130' INT TERM

fail() {
    echo "!! $*" >&2
    if [[ -f $WORK/engine.log ]]; then
        echo "!! last lines of the engine log:" >&2
        tail -n 25 "$WORK/engine.log" >&2
    fi
    exit 1
}

# Print arguments the way one would type them: quote those that need it.
show() {
    local out= a
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=" $a"
        else out+=" '${a//\'/\'\\\'\'}'"; fi
    done
    printf '%s\n' "${out# }"
}

# step "what it shows" docker ARGS...  (prints, runs, stops the demo on failure)
step() {
    local what=$1; shift
    STEP=$((STEP + 1))
    echo
    bold "== $STEP. $what"
    echo "\$ docker $(show "$@")"
    "$DOCKER" "$@" || fail "step $STEP failed: docker $*"
}

# Like step, but the command must fail.
step_fails() {
    local what=$1; shift
    STEP=$((STEP + 1))
    echo
    bold "== $STEP. $what"
    echo "\$ docker $(show "$@")"
    if "$DOCKER" "$@"; then fail "step $STEP: docker $* succeeded, it should have failed"; fi
    echo "   (failed, as it should)"
}

# Like step, but shows a shell pipeline built around docker.
shell_step() {
    local what=$1 cmd=$2
    STEP=$((STEP + 1))
    echo
    bold "== $STEP. $what"
    echo "\$ $cmd"
    bash -o pipefail -c "$cmd" || fail "step $STEP failed: $cmd"
}

expect() {  # expect "description" ACTUAL EXPECTED
    [[ $2 == "$3" ]] || fail "$1: expected '$3', got '$2'"
    echo "   ok: $1"
}

[[ -x $ENGINE ]] || fail "$ENGINE not found: run 'make deps' first"

bold "== building busybox:latest from $(command -v busybox || echo /bin/busybox)"
"$PY" "$REPO/tools/mkimage.py" -o "$WORK/busybox.tar" --print-id || fail "mkimage failed"

bold "== starting novadocker-engine (root $WORK/root, socket $SOCK)"
echo "\$ novadocker-engine --root $WORK/root --host $DOCKER_HOST serve"
"$ENGINE" --root "$WORK/root" --host "$DOCKER_HOST" serve >"$WORK/engine.log" 2>&1 &
ENGINE_PID=$!
for _ in $(seq 300); do
    kill -0 "$ENGINE_PID" 2>/dev/null || fail "the engine exited at start"
    if "$PY" -c 'import sys; from tests.daemons import ping; sys.exit(not ping(sys.argv[1]))' "$SOCK" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
"$PY" -c 'import sys; from tests.daemons import ping; sys.exit(not ping(sys.argv[1]))' "$SOCK" \
    || fail "the engine did not answer /_ping within 30 s"
echo "   engine answers /_ping (pid $ENGINE_PID)"

step "Client and engine versions" version
step "Engine-wide information" info
step "Seed busybox:latest (a docker save archive built locally)" load -i "$WORK/busybox.tar"
step "Images" images
step "One history row per layer, with CREATED BY" history busybox:latest

step "A throw-away container" run --rm busybox echo hello from a container
out=$("$DOCKER" run --rm busybox echo hello) || fail "run --rm"
expect "run --rm prints the container's output" "$out" hello

CONTAINERS+=("$NAME")
step "A background container" run -d --name "$NAME" busybox \
    sh -c 'echo started as $(hostname); while true; do sleep 1; done'
step "It is running" ps --filter "name=$NAME"
sleep 0.5
step "Its output, kept by conmon" logs "$NAME"
step "Run a command inside it" exec "$NAME" sh -c 'echo "written by exec" > /greeting; ls /'
step "Freeze it" pause "$NAME"
step "Paused" ps --filter "name=$NAME" --format '{{.Names}}  {{.Status}}'
step "Thaw it" unpause "$NAME"
step "Stop it (SIGTERM, SIGKILL after 1 s)" stop -t 1 "$NAME"
step "Exited" ps -a --filter "name=$NAME" --format '{{.Names}}  {{.Status}}'
step "Start it again" start "$NAME"
step "Restart it" restart -t 1 "$NAME"
state=$("$DOCKER" inspect -f '{{.State.Status}}' "$NAME") || fail inspect
expect "running after restart" "$state" running
step "Commit its changes as a new image with a new CMD" commit \
    --change 'CMD ["cat", "/greeting"]' --change 'ENV DEMO=1' \
    -m "demo commit" "$NAME" "$IMAGE:v1"
step "The commit added exactly one layer" history "$IMAGE:v1"
out=$("$DOCKER" run --rm "$IMAGE:v1") || fail "run $IMAGE:v1"
echo "\$ docker run --rm $IMAGE:v1"; echo "$out"
expect "the committed image runs its new CMD" "$out" "written by exec"
step "Tag it" tag "$IMAGE:v1" "$IMAGE:latest"
step "Images" images
step "Save it" save -o "$WORK/saved.tar" "$IMAGE:v1"
step "Remove it" rmi "$IMAGE:v1" "$IMAGE:latest"
step "Load it back" load -i "$WORK/saved.tar"
out=$("$DOCKER" run --rm "$IMAGE:v1") || fail "run after load"
expect "the loaded image still works" "$out" "written by exec"

bold ""
bold "== a registry: only new layers travel"
REG_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG=127.0.0.1:$REG_PORT
mkdir -p "$WORK/registry"
cat > "$WORK/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: $REG
YML
echo "\$ docker-registry serve $WORK/registry.yml   # Debian's CNCF distribution"
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 100); do
    "$PY" -c 'import sys, urllib.request; urllib.request.urlopen("http://%s/v2/" % sys.argv[1], timeout=1)' "$REG" 2>/dev/null && break
    sleep 0.1
done
step "Tag busybox into the registry's namespace" tag busybox:latest "$REG/demo/busybox:latest"
step "Push it: its layer is new there" push "$REG/demo/busybox:latest"
step "Tag the commit" tag "$IMAGE:v1" "$REG/demo/app:v1"
step "Push the commit: the busybox layer is mounted, only the new layer is uploaded" push "$REG/demo/app:v1"
step "Drop the local copies" rmi "$REG/demo/app:v1" "$IMAGE:v1"
step "Pull it back: busybox's layer already exists, only the new one comes down" pull "$REG/demo/app:v1"
out=$("$DOCKER" run --rm "$REG/demo/app:v1") || fail "run after pull"
expect "the pulled image works" "$out" "written by exec"
step "The registry's catalog" search "$REG/demo"
step "Tag it back" tag "$REG/demo/app:v1" "$IMAGE:v1"
step "Export the container's filesystem" export -o "$WORK/rootfs.tar" "$NAME"
shell_step "The export holds the file exec wrote" "tar tf '$WORK/rootfs.tar' | grep -E '^(\\./)?greeting\$'"
step "Remove the container while it runs" rm -f "$NAME"

bold ""
bold "== building images: the brief's Dockerfile, the layer cache, two stages"
# The classic builder (POST /build), as the brief used it.
export DOCKER_BUILDKIT=0
cat > "$WORK/Dockerfile" <<'DOCKERFILE'
FROM busybox
MAINTAINER Mike BRIGHT

RUN ping -c 1 127.0.0.1 > /ping-at-build.txt

ENTRYPOINT ["ping"]
DOCKERFILE
# build_step "what it shows" FILE ARGS...: docker ARGS < FILE, output kept in $BUILD_OUT.
build_step() {
    local what=$1 file=$2; shift 2
    STEP=$((STEP + 1))
    echo
    bold "== $STEP. $what"
    echo "\$ docker $(show "$@") < $(basename "$file")"
    BUILD_OUT=$("$DOCKER" "$@" < "$file" 2>&1) || { echo "$BUILD_OUT"; fail "step $STEP failed: docker $* < $file"; }
    echo "$BUILD_OUT" | grep -v -e '^DEPRECATED' -e '^ *BuildKit is currently' -e '^ *environment-variable' -e '^$'
}
echo "\$ cat Dockerfile"; cat "$WORK/Dockerfile"
build_step "Build my/ping from the Dockerfile on stdin (DOCKER_BUILDKIT=0)" \
    "$WORK/Dockerfile" build -t my/ping -
step "Run it: the ENTRYPOINT gets the arguments" run --rm my/ping -c 1 127.0.0.1
out=$("$DOCKER" run --rm my/ping -c 1 127.0.0.1) || fail "run my/ping"
[[ $out == *"1 packets received"* ]] || fail "ping in my/ping: $out"
echo "   ok: ping answered inside the container"
step "One history row per step; metadata steps have no layer (0B)" history my/ping
expect "the MAINTAINER is the image's author" "$("$DOCKER" inspect -f '{{.Author}}' my/ping)" "Mike BRIGHT"
build_step "Build it again: every step comes from the cache" "$WORK/Dockerfile" build -t my/ping -
expect "steps from the cache" "$(grep -c 'Using cache' <<<"$BUILD_OUT")" 3
cat > "$WORK/Dockerfile.stages" <<'DOCKERFILE'
FROM busybox AS build
RUN echo "made in the build stage" > /artifact
FROM scratch
COPY --from=build /artifact /artifact
COPY --from=busybox /bin/busybox /bin/cat
ENTRYPOINT ["/bin/cat"]
CMD ["/artifact"]
DOCKERFILE
echo; echo "\$ cat Dockerfile.stages"; cat "$WORK/Dockerfile.stages"
build_step "A two-stage build: the final image, from scratch, holds only what it copied" \
    "$WORK/Dockerfile.stages" build -t "$IMAGE:stages" -
out=$("$DOCKER" run --rm "$IMAGE:stages") || fail "run $IMAGE:stages"
expect "the final stage runs" "$out" "made in the build stage"
step "Its history: two COPY layers and two metadata rows, nothing of the build stage" history "$IMAGE:stages"
step "Remove the built images (their untagged step images go with them)" rmi my/ping "$IMAGE:stages"
step "Prune the build stage's image, left dangling as Docker leaves it" image prune -f
unset DOCKER_BUILDKIT

bold ""
bold "== containers, completely: limits, security, volumes, restart policies, logs"
LIMITED=$NAME-limited
CONTAINERS+=("$LIMITED")
# The container's own cgroup files, on a cgroup v1 (or hybrid) or v2 host.
CG='for f in memory/memory.limit_in_bytes memory.max cpu/cpu.cfs_quota_us cpu.max pids/pids.max pids.max; do [ -f /sys/fs/cgroup/$f ] && echo "$f: $(cat /sys/fs/cgroup/$f)"; done; true'
step "Limits: 64 MiB of memory, half a CPU, 50 processes, read from inside" run --rm \
    --memory 64m --cpus 0.5 --pids-limit 50 busybox sh -c "$CG"
step "A container with limits, running" run -d --name "$LIMITED" --memory 64m busybox \
    sh -c 'mkdir /srv && date > /srv/started && exec sleep 300'
step "Raise its memory limit while it runs" update --memory 128m --memory-swap 256m "$LIMITED"
step "Seen from inside" exec "$LIMITED" sh -c "$CG"
step "Its CPU, memory and pids" stats --no-stream "$LIMITED"
step "Its processes" top "$LIMITED"
HOG=$NAME-hog
CONTAINERS+=("$HOG")
step_fails "A memory hog with a 16 MiB limit is OOM-killed" run --name "$HOG" --memory 16m \
    busybox sh -c 'x=$(head -c 100m /dev/zero | tr "\0" a)'
step "Inspect says so" inspect -f 'OOMKilled={{.State.OOMKilled}} ExitCode={{.State.ExitCode}}' "$HOG"
expect "OOMKilled" "$("$DOCKER" inspect -f '{{.State.OOMKilled}}' "$HOG")" true
step "The default security profile, from inside" run --rm busybox \
    grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status
step_fails "A mount is refused inside a default container" run --rm busybox mount -t tmpfs none /tmp
step "But allowed with --privileged" run --rm --privileged busybox mount -t tmpfs none /tmp
VOLUME=$NAME-data
step "A named volume" volume create "$VOLUME"
step "One container writes to it" run --rm -v "$VOLUME:/data" busybox sh -c 'echo kept > /data/file'
step "Another reads it, read-only" run --rm -v "$VOLUME:/data:ro" busybox cat /data/file
step "Volumes" volume ls
step "Remove it" volume rm "$VOLUME"
FLAKY=$NAME-flaky
CONTAINERS+=("$FLAKY")
step "A container that fails, restarted twice (on-failure:2)" run -d --name "$FLAKY" \
    --restart on-failure:2 --log-opt max-size=10k --log-opt max-file=2 \
    busybox sh -c 'echo "run at $(date +%T)"; exit 3'
for _ in $(seq 100); do  # three runs with 100 ms and 200 ms between them
    [[ $("$DOCKER" inspect -f '{{.State.Status}} {{.RestartCount}}' "$FLAKY") == 'exited 2' ]] && break
    sleep 0.1
done
step "It ran three times and gave up" inspect -f 'Status={{.State.Status}} RestartCount={{.RestartCount}} ExitCode={{.State.ExitCode}}' "$FLAKY"
expect "restart count" "$("$DOCKER" inspect -f '{{.RestartCount}}' "$FLAKY")" 2
step "Its log has one line per run" logs "$FLAKY"
step "What the limited container changed in its filesystem" diff "$LIMITED"
step "Remove it" rm -f "$LIMITED"
step "Disk use" system df
step "Remove the stopped containers" container prune -f
step "Remove the image" rmi "$IMAGE:v1"
step "Containers left" ps -a
step "Images left" images

bold ""
bold "== networking: a user network, names, a published port"
NET=$NAME-net
WEB=$NAME-web
PUB=$NAME-pub
CONTAINERS+=("$WEB" "$PUB")
HTTPD='mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www'
step "A user-defined network with its own bridge and subnet" network create "$NET"
step "Its subnet and gateway" network inspect -f '{{range .IPAM.Config}}{{.Subnet}} via {{.Gateway}}{{end}}' "$NET"
step "A web server on it, with an alias" run -d --name "$WEB" --network "$NET" --network-alias www busybox sh -c "$HTTPD"
WGET='for i in $(seq 40); do wget -q -O- http://'
step "Another container fetches the page by the server's name" run --rm --network "$NET" busybox \
    sh -c "${WGET}$WEB/ && exit 0; sleep 0.25; done; exit 1"
step "And by its alias" run --rm --network "$NET" busybox sh -c "${WGET}www/ && exit 0; sleep 0.25; done; exit 1"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
step "A web server published on 127.0.0.1:$PORT" run -d --name "$PUB" -p "127.0.0.1:$PORT:80" busybox sh -c "$HTTPD"
shell_step "Fetched from the host (Python, no curl)" \
    "'$PY' -c 'import sys, time, urllib.request
for _ in range(40):
    try:
        sys.stdout.write(urllib.request.urlopen(\"http://127.0.0.1:$PORT/\", timeout=5).read().decode()); break
    except OSError:
        time.sleep(0.25)
else:
    sys.exit(\"no answer on 127.0.0.1:$PORT\")'"
step "docker port" port "$PUB"
expect "the mapping" "$("$DOCKER" port "$PUB" 80/tcp)" "127.0.0.1:$PORT"
step "docker ps shows it too" ps --filter "name=$PUB" --format '{{.Names}}  {{.Ports}}'
step "Remove the containers" rm -f "$WEB" "$PUB"
step "Remove the network: its bridge goes with it" network rm "$NET"
step "Networks left: the three predefined ones" network ls

# Nova's compute driver on this engine and this registry: the instance
# lifecycle (boot from a registry image in Glance, a port on a Linux bridge,
# reboots, stop/start, pause, suspend, console, snapshot to the registry, a
# second boot from it, delete), each step read back from the engine.
echo
echo "\$ $(basename "$PY") tools/nova_demo.py   # real Nova objects, in-process"
"$PY" "$REPO/tools/nova_demo.py" --engine-url "$DOCKER_HOST" --registry "$REG" \
    --bridge "$NOVA_BRIDGE" --state-dir "$WORK/nova-instances" --docker "$DOCKER" \
    --first-step $((STEP + 1)) || fail "the Nova section failed"

# Heat on this engine: heat-engine's plugin loader reads the plugin from
# plugin_dirs (etc/heat/plugins), and one stack from
# etc/heat/templates/app-network.yaml (a network, two containers, a published
# port) is created, read back from the engine and over the port, and deleted
# through Heat's EngineService; nothing of it is left. Its image is the
# busybox pushed to the registry above, which the plugin pulls when missing.
echo
echo "\$ $(basename "$PY") tools/heat_demo.py   # real Heat, in-process"
"$PY" "$REPO/tools/heat_demo.py" --engine-url "$DOCKER_HOST" --image "$REG/demo/busybox:latest" \
    --first-step 1 \
    || fail "the Heat section failed"
