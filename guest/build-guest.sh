#!/usr/bin/env bash
# Builds the tiny Linux guest the real-client tests boot under QEMU:
#   vmlinux            uncompressed kernel (ELF, PVH entry) taken from Debian's linux-image-<ver>-amd64
#   initramfs.cpio.gz  busybox (busybox-static) + the virtio-net modules + /init (guest/init.sh)
#   guest.env          KERNEL_VERSION=, VMLINUX=, INITRAMFS=, IPERF3=yes|no
# The kernel package is fetched with `apt-get download` and unpacked with `dpkg -x`, never installed.
# Idempotent: a finished build is reused while this script and init.sh are unchanged.
#
#   guest/build-guest.sh [--print-dir]      build (if needed) and print the output directory
# Environment:
#   JVBUS_GUEST_DIR      output root (default ${XDG_CACHE_HOME:-$HOME/.cache}/jvbus-guest)
#   JVBUS_GUEST_KERNEL   kernel ABI to use, e.g. 6.1.0-56-amd64 (default: what linux-image-amd64 depends on)
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
root=${JVBUS_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/jvbus-guest}
log() { echo "build-guest: $*" >&2; }
die() { log "$*"; exit 1; }

# The modules the guest loads, in load order (dependencies first).
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net)

for tool in busybox cpio gzip dpkg apt-get apt-cache; do
  command -v "$tool" >/dev/null || die "missing tool: $tool (run .ci/install-deps as root)"
done
busybox_bin=$(command -v busybox)
# busybox-static puts a static binary at /bin/busybox; a dynamic busybox would not run in the initramfs.
if LC_ALL=C file -L "$busybox_bin" 2>/dev/null | grep -q 'dynamically linked'; then
  die "busybox at $busybox_bin is dynamically linked; install busybox-static"
fi

kver=${JVBUS_GUEST_KERNEL:-}
if [ -z "$kver" ]; then
  kver=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: linux-image-\(.*-amd64\)$/\1/p' | head -1)
  if [ -z "$kver" ]; then
    # No apt lists (no `apt-get update` yet): reuse any finished build.
    kver=$(ls -1 "$root" 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$kver" ] && [ -f "$root/$kver/guest.env" ] || die "apt knows no linux-image-amd64 (run apt-get update) and no cached build in $root"
  fi
fi
out=$root/$kver
stamp=$(cat "$0" "$here/init.sh" | sha256sum | cut -c1-16)
if [ -f "$out/guest.env" ] && grep -qx "STAMP=$stamp" "$out/guest.env"; then
  [ "${1:-}" = --print-dir ] && echo "$out"
  exit 0
fi
mkdir -p "$out"
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. The kernel package, unpacked.
deb=$(ls "$out"/linux-image-"$kver"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  log "downloading linux-image-$kver"
  (cd "$work" && apt-get download -qq "linux-image-$kver" 2>&1 | grep -v -e '^W: Download is performed unsandboxed' >&2) || true
  deb=$(ls "$work"/linux-image-"$kver"_*.deb 2>/dev/null | head -1 || true)
  [ -n "$deb" ] || die "apt-get download linux-image-$kver failed"
  mv "$deb" "$out/" && deb=$out/$(basename "$deb")
fi
dpkg -x "$deb" "$work/pkg"

# 2. An uncompressed vmlinux out of the bzImage: find a compressed payload by its magic and
#    decompress from there (trailing bytes make the decompressor complain; the output is what counts).
vmlinuz=$work/pkg/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || die "no /boot/vmlinuz-$kver in $deb"
is_elf() { [ "$(head -c4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }
extract_vmlinux() {
  local src=$1 dst=$2 magic cmd off
  while read -r magic cmd; do
    command -v "${cmd%% *}" >/dev/null || continue
    for off in $(LC_ALL=C grep -obUaP "$magic" "$src" 2>/dev/null | cut -d: -f1); do
      tail -c +"$((off + 1))" "$src" | $cmd > "$dst" 2>/dev/null || true
      if [ -s "$dst" ] && is_elf "$dst"; then echo "$cmd@$off"; return 0; fi
    done
  done <<'MAGIC'
\xFD7zXZ\x00 xz -dc
\x28\xB5\x2F\xFD zstd -dcq
\x1F\x8B\x08 gzip -dc
\x02\x21\x4C\x18 lz4 -dc
\x5D\x00\x00\x00 unlzma -c
BZh bzip2 -dc
MAGIC
  return 1
}
how=$(extract_vmlinux "$vmlinuz" "$work/vmlinux") || die "could not find an ELF kernel inside $vmlinuz (missing xz-utils/zstd?)"
log "vmlinux extracted ($how), $(stat -c %s "$work/vmlinux") bytes"

# 3. The initramfs.
ird=$work/initramfs
mkdir -p "$ird"/{bin,sbin,dev,proc,sys,tmp,run,etc,lib/modules,usr/bin,usr/sbin}
cp "$busybox_bin" "$ird/bin/busybox"
for applet in $("$busybox_bin" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$ird/bin/$applet"
done
moddir=$work/pkg/lib/modules/$kver
for m in "${MODULES[@]}"; do
  f=$(find "$moddir" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -1)
  [ -n "$f" ] || die "module $m not found in linux-image-$kver"
  case "$f" in
    *.ko.xz)  xz -dc "$f" > "$ird/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -dcq "$f" > "$ird/lib/modules/$m.ko" ;;
    *)        cp "$f" "$ird/lib/modules/$m.ko" ;;
  esac
done
printf '%s\n' "${MODULES[@]}" > "$ird/lib/modules/order"
# iperf3: Debian ships no static build; copy the dynamic one with the libraries ldd names.
iperf=no
if command -v iperf3 >/dev/null; then
  ib=$(command -v iperf3)
  cp "$ib" "$ird/usr/bin/iperf3"
  for lib in $(ldd "$ib" | grep -o '/[^ ]*'); do
    mkdir -p "$ird$(dirname "$lib")"; cp -L "$lib" "$ird$lib"
  done
  iperf=yes
fi
install -m 0755 "$here/init.sh" "$ird/init"
echo "root:x:0:0:root:/:/bin/sh" > "$ird/etc/passwd"
(cd "$ird" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) | gzip -6 > "$work/initramfs.cpio.gz"

mv "$work/vmlinux" "$out/vmlinux"
mv "$work/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
cat > "$out/guest.env" <<ENV
KERNEL_VERSION=$kver
VMLINUX=$out/vmlinux
INITRAMFS=$out/initramfs.cpio.gz
IPERF3=$iperf
STAMP=$stamp
ENV
log "guest ready in $out (kernel $kver, iperf3=$iperf)"
[ "${1:-}" = --print-dir ] && echo "$out"
exit 0
