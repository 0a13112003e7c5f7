# Multi-stage build: compile in the Rust image, run from a slim Debian with
# only the binary and CA roots, as an unprivileged user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY migrations migrations
COPY src src
# load/ is a workspace member: cargo needs its manifest even though only
# ontab is built here.
COPY load load
RUN cargo build --release --locked --bin ontab

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home ontab
COPY --from=build /src/target/release/ontab /usr/local/bin/ontab
USER ontab
ENV ONTAB_LISTEN=0.0.0.0:8080 \
    ONTAB_LOG_FORMAT=json
EXPOSE 8080
# The slim image has no bash (dash has no /dev/tcp) and no curl: the binary
# asks itself, at ONTAB_LISTEN.
HEALTHCHECK --interval=10s --timeout=3s CMD ["ontab", "health", "--timeout", "2s"]
ENTRYPOINT ["ontab"]
CMD ["serve"]
