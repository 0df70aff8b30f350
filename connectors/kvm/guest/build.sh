#!/bin/sh
# Builds the vbus guest program as a flat binary: guest/build.sh OUT_DIR  ->  OUT_DIR/vbus-guest.bin
# The committed copy lives in src/main/resources/dev/jvbus/connector/kvm/vbus-guest.bin, built by
#   guest/build.sh src/main/resources/dev/jvbus/connector/kvm && guest/build.sh --toolchain > guest/vbus-guest.toolchain
# and GuestProgramBuildTest checks it still matches this source wherever the same toolchain is installed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = "--toolchain" ]; then
  # What the committed binary was built with; another compiler version may emit other (equally good) code.
  echo "gcc $(gcc -dumpfullversion)"
  ld --version | head -n 1
  exit 0
fi
out=${1:?usage: build.sh OUT_DIR | --toolchain}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# -ffile-prefix-map and no debug info: nothing of the build directory ends up in the binary.
gcc -std=c11 -O2 -Wall -Wextra -Werror \
    -ffreestanding -nostdlib -mgeneral-regs-only -fno-pic -static -fno-pie -mno-red-zone \
    -fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables -fno-ident \
    -ffile-prefix-map="$here"=. \
    -c "$here/vbus-guest.c" -o "$tmp/vbus-guest.o"
# binutils 2.39+ warns about the one RWX segment a flat image has; older ld has no such warning (nor flag).
quiet=""; ld --help 2>/dev/null | grep -q no-warn-rwx-segments && quiet="--no-warn-rwx-segments"
ld -nostdlib -static --build-id=none $quiet -T "$here/vbus-guest.ld" "$tmp/vbus-guest.o" -o "$tmp/vbus-guest.elf"
objcopy -O binary "$tmp/vbus-guest.elf" "$out/vbus-guest.bin"
chmod 644 "$out/vbus-guest.bin"
