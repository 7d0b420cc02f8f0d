#!/usr/bin/env bash
# Builds the container image: a statically linked release binary (glibc, crt-static) copied
# into an image FROM scratch. Needs the docker CLI and a daemon.
#   deploy/docker/build.sh [IMAGE]        (default berth:latest)
set -euo pipefail
cd "$(dirname "$0")/../.."
image=${1:-berth:latest}
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" -p berth
target_dir=${CARGO_TARGET_DIR:-target}
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$target_dir/$target/release/berth" "$context/berth"
cp /etc/ssl/certs/ca-certificates.crt "$context/"
# The data directory and its storage/ mount point, owned by the image's user (named volumes
# mounted there start with that ownership).
mkdir -p "$context/data/storage"
cp deploy/docker/Dockerfile "$context/"
docker build -t "$image" "$context"
echo "built $image"
