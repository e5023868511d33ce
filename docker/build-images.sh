#!/usr/bin/env bash
# `make docker-images`: builds docker/<service>.Dockerfile for api, consumer, frontend and votectl with a
# Docker engine, every base image pinned by digest.
#
# The tags below are resolved to `name@sha256:<digest>` right before the build (a pull, then the
# RepoDigest the registry served) and passed to the Dockerfiles, which refuse anything not pinned by
# digest. Set BUILDER_IMAGE / RUNTIME_IMAGE to a `…@sha256:` reference to pin by hand instead (no pull).
# The images run as UID:GID 65532:65532, the runAsUser/runAsGroup the manifests render.
set -euo pipefail

cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
BUILDER_TAG=${BUILDER_TAG:-docker.io/library/rust:1.95-bookworm}
RUNTIME_TAG=${RUNTIME_TAG:-gcr.io/distroless/static-debian12:nonroot}
SERVICES=${SERVICES:-api consumer frontend votectl}

pinned() { [[ $1 =~ @sha256:[0-9a-f]{64}$ ]]; }

pin() {
    local ref=$1 digest
    if pinned "$ref"; then
        printf '%s\n' "$ref"
        return
    fi
    "$DOCKER" pull --quiet "$ref" >/dev/null
    digest=$("$DOCKER" image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" | head -n 1)
    if ! pinned "$digest"; then
        echo "cannot resolve $ref to a digest (got '$digest')" >&2
        exit 2
    fi
    printf '%s\n' "$digest"
}

if ! command -v "$DOCKER" >/dev/null; then
    echo "$DOCKER not found: with no Docker engine, use \`votectl images build\`" >&2
    exit 2
fi

builder=$(pin "${BUILDER_IMAGE:-$BUILDER_TAG}")
runtime=$(pin "${RUNTIME_IMAGE:-$RUNTIME_TAG}")
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
tag=git-${revision:0:12}

echo "builder: $builder"
echo "runtime: $runtime"
for service in $SERVICES; do
    DOCKER_BUILDKIT=1 "$DOCKER" build \
        --file "docker/$service.Dockerfile" \
        --build-arg "BUILDER_IMAGE=$builder" \
        --build-arg "RUNTIME_IMAGE=$runtime" \
        --build-arg "REVISION=$revision" \
        --build-arg "CREATED=$created" \
        --build-arg "VERSION=$version" \
        --build-arg "SOURCE_DATE_EPOCH=$epoch" \
        --tag "votectl/$service:$tag" \
        .
    echo "built votectl/$service:$tag"
done
