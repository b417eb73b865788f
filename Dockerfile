# An image that holds only the static shim binary, /shim, to be copied into an application image:
#
#     COPY --from=shim /shim /shim
#     ENTRYPOINT ["/shim", "--"]
#
# (Dockerfile.example shows it whole.) The build context is only this file and the binary:
#
#     cargo build --release --target x86_64-unknown-linux-musl
#     tar -c Dockerfile -C target/x86_64-unknown-linux-musl/release shim | docker build -t shim -
#
# (`docker build -t shim -f Dockerfile target/x86_64-unknown-linux-musl/release` works too, but
# sends the whole release folder to the daemon.) The binary is static (musl): the image needs no
# libc, no shell and no other file. Run as it is, it is shim itself: `docker run --rm shim --help`.
FROM scratch
COPY shim /shim
ENTRYPOINT ["/shim"]
