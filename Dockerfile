# syntax=docker/dockerfile:1
# The udders binary in a small runtime image. Build: docker build -t udders .
# (BuildKit, the default builder of Docker 23 and later and of Compose v2).
#
# Dependencies are cached between builds in BuildKit cache mounts: the cargo
# registry and the target directory survive from one build to the next, so a
# change to one crate recompiles that crate and the ones that depend on it,
# not librdkafka, Tansu and SQLite. The first build compiles everything (about
# 26 minutes on 2 cores, as `cargo build --release --locked --bin udders` does
# outside Docker: measured on 2026-12-07). The release profile optimises the
# whole program at the link (ADR 0026), so any change costs that last step
# again: 15 minutes after a change to the messaging crate.
# `docker builder prune` empties the caches.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# librdkafka is built from source by rdkafka-sys (bundled), with the toolchain
# of this image. The binary is copied out of the cached target directory
# (a cache mount is not part of the image) and stripped of its line tables.
RUN --mount=type=cache,id=udders-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=udders-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=udders-target,target=/src/target,sharing=locked \
    cargo build --release --locked --bin udders \
    && cp target/release/udders /usr/local/bin/udders \
    && strip /usr/local/bin/udders

# The same Debian release as the build stage (glibc 2.36). Not measured here
# (no Docker engine on the machine that wrote this): expect about 75 MB of
# debian slim plus the stripped binary.
FROM debian:12.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/udders /usr/local/bin/udders
USER 65534:65534
ENV UDDERS_LOG_FORMAT=json
ENTRYPOINT ["udders"]
