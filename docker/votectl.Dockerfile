# syntax=docker/dockerfile:1
#
# Image `votectl/votectl`: votectl itself, run in-cluster by `votectl verify --network-policies` probes.
#
# USER: the image runs as UID 65532, GID 65532 (`nonroot` in distroless; vote_contract::deploy::NONROOT_UID
# and NONROOT_GID). The Kubernetes manifests must use runAsUser: 65532, runAsGroup: 65532 and
# fsGroup: 65532 for this container: any other UID is the crash loop the original chart shipped.
#
# Base images are pinned by digest, always: `make docker-images` (docker/build-images.sh) resolves
#   BUILDER_IMAGE  docker.io/library/rust:1.95-bookworm
#   RUNTIME_IMAGE  gcr.io/distroless/static-debian12:nonroot
# to `name@sha256:<digest>` when it runs and passes them as build arguments, and the build stage below
# refuses any base image reference that is not `…@sha256:<64 hex>`. To build by hand:
#   docker build -f docker/votectl.Dockerfile \
#     --build-arg BUILDER_IMAGE=docker.io/library/rust@sha256:<digest> \
#     --build-arg RUNTIME_IMAGE=gcr.io/distroless/static-debian12@sha256:<digest> .
#
# The binary is static (musl), so the final stage is distroless/static: no shell, no package manager,
# CA certificates and /etc/passwd with nonroot 65532 included. Without a Docker engine, use
# `votectl images build`, which assembles an equivalent image from the same release binary.

ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE

FROM ${BUILDER_IMAGE} AS build
ARG BUILDER_IMAGE
ARG RUNTIME_IMAGE
RUN for ref in "${BUILDER_IMAGE}" "${RUNTIME_IMAGE}"; do \
      printf '%s\n' "$ref" | grep -Eq '@sha256:[0-9a-f]{64}$' \
        || { echo "base image '$ref' is not pinned by digest: run make docker-images" >&2; exit 1; }; \
    done
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CC_x86_64_unknown_linux_musl=musl-gcc \
    cargo build --locked --release --target x86_64-unknown-linux-musl -p votectl --bin votectl \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/votectl /out/votectl

FROM ${RUNTIME_IMAGE}
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="votectl votectl" \
      org.opencontainers.image.source="https://example.invalid/votectl" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/votectl /usr/local/bin/votectl
# Numeric on purpose: Kubernetes can only verify runAsNonRoot against a numeric USER.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/votectl"]
