# An image that holds only the static shim binary, /shim, to be copied into an application image:
#
#     COPY --from=shim /shim /shim
#     ENTRYPOINT ["/shim", "--"]
#
# (Dockerfile.example shows it whole.) The build context holds the binary of each platform, named
# by Docker's TARGETARCH: scripts/release writes them (dist/shim-<version>-amd64, -arm64, -386),
# and this file picks the one of the platform being built (README "Architectures"):
#
#     scripts/release
#     docker buildx build --platform linux/amd64,linux/arm64,linux/386 -t shim -f Dockerfile dist
#
# BuildKit sets TARGETARCH for each platform. The classic builder sets none: give it
# (`--build-arg TARGETARCH=amd64`), or, without it, the context holds one binary named `shim`:
#
#     cargo build --release
#     tar -c Dockerfile -C target/x86_64-unknown-linux-musl/release shim | docker build -t shim -
#
# The binary is static (musl): the image needs no libc, no shell and no other file. Run as it is,
# it is shim itself: `docker run --rm shim --help`.
FROM scratch
ARG TARGETARCH
# shim-*arm64 is shim-<version>-arm64 (or shim-arm64); with no TARGETARCH, the file is `shim`.
COPY shim${TARGETARCH:+-*}${TARGETARCH} /shim
ENTRYPOINT ["/shim"]
