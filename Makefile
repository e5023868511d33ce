# votectl — the two commands a newcomer needs are `make up` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup build up test reliability reliability-ci bench images docker-images e2e docs-check security-doc fmt lint

## Install missing system packages (as root), toolchain targets and test tools.
setup:
	./scripts/install-deps

# `make up PROFILE=dev` builds faster and runs slower; votectl finds the services next to itself.
PROFILE ?= release
TARGET_DIR := target/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))

## Build votectl and the three services.
build:
	$(CARGO) build --profile $(PROFILE) -p votectl -p vote-api -p vote-consumer -p vote-frontend

## Set up, build and run the whole app on this machine (no cluster); Ctrl-C stops it, data is kept.
up: setup build
	./$(TARGET_DIR)/votectl up --local

## Every test: unit, real Redis/PostgreSQL, headless Chromium, podman. Cluster tests are `make e2e`.
test:
	$(CARGO) test --workspace --no-fail-fast

## Benchmarks, each next to its raw limit in the same run; writes docs/benchmarks.md.
bench: setup
	$(CARGO) build --release -p votectl
	$(CARGO) run --release -p vote-bench -- --out docs/benchmarks.md

## OCI + docker-save image archives without a container engine (target/images/).
images:
	$(CARGO) run -q -p votectl -- images build

## The same images with Docker, base images pinned by digest (needs a Docker engine).
docker-images:
	bash docker/build-images.sh

## Faults, fuzzing and SSE load against the local runtime, audited for loss and double counts.
reliability: setup
	$(CARGO) build --release -p votectl -p vote-api -p vote-consumer -p vote-frontend -p vote-reliability
	./target/release/vote-reliability --size full --out docs/reliability.md

## The same scenarios at CI size (a few minutes on 2 cores).
reliability-ci:
	$(CARGO) build -p votectl -p vote-api -p vote-consumer -p vote-frontend -p vote-reliability
	./target/debug/vote-reliability --size ci

## Cluster tests (marked ignored) against the cluster of the current KUBECONFIG.
e2e:
	$(CARGO) test --workspace -- --ignored

## Run every command the docs show; compare their generated parts with the manifests.
docs-check:
	$(CARGO) test -p votectl --test docs

## Regenerate docs/security.md from the checklist's catalogue (a test compares them).
security-doc:
	$(CARGO) run -q -p votectl -- check --catalogue -o markdown > docs/security.md

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
