# The udders binary in a small runtime image. Build: docker build -t udders .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# librdkafka is built from source by rdkafka-sys (bundled), with the toolchain of this image.
RUN cargo build --release --locked --bin udders && strip target/release/udders

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/udders /usr/local/bin/udders
USER 65534:65534
ENV UDDERS_LOG_FORMAT=json
ENTRYPOINT ["udders"]
