#!/usr/bin/env bash
# Checks that Linux 6.1 (Debian's cloud kernel, the cargo-cast guest kernel) reads
# images written by cast-rootfs exactly as the host kernel does: it writes feature
# images (plain and LZ4; plus imports of any SRC_DIR given), boots the 6.1 kernel
# under QEMU (TCG) with the images as virtio disks, dumps every entry's metadata,
# xattrs and content hash in the guest, and diffs that with the same dump taken
# through a read-only loop mount on the host.
#
# Needs root (loop mounts) and: qemu-system-x86 erofs-utils busybox-static cpio;
# downloads the kernel package with `apt-get download` (not a test: run by hand).
# Usage: cast-rootfs/scripts/check-linux61.sh [SRC_DIR...]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${CAST_CHECK_DIR:-$(mktemp -d)}
mkdir -p "$work/imgs" "$work/ir/bin" "$work/ir/lib" "$work/mnt"
echo "work dir: $work"

cd "$repo"
cargo build --quiet --release -p cast-rootfs --example feature_images
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release -p cast-rootfs \
  --example tree_dump --target x86_64-unknown-linux-gnu --target-dir "$work/static-target"
dump="$work/static-target/x86_64-unknown-linux-gnu/release/examples/tree_dump"
"$repo/target/release/examples/feature_images" "$work/imgs" "$@"

cd "$work"
pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
[ -d kernel ] || { apt-get download "$pkg" && dpkg -x "$pkg"_*.deb kernel; }
vmlinuz=$(ls kernel/boot/vmlinuz-*)
for m in virtio_ring virtio virtio_mmio virtio_blk libcrc32c erofs; do
  cp "$(find kernel/lib/modules -name "$m.ko" | head -1)" ir/lib/
done
cp /bin/busybox "$dump" ir/bin/
mkdir -p ir/proc ir/sys ir/dev ir/mnt
images=(imgs/*.img)
cat > ir/init <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_mmio virtio_blk libcrc32c erofs; do insmod /lib/\$m.ko; done
echo "KERNEL \$(uname -r)"
i=0
for d in \$(cd /sys/block && ls -d vd* | sort); do
  if mount -t erofs -o ro /dev/\$d /mnt; then
    echo "BEGIN \$d"; /bin/tree_dump /mnt; echo "END \$d"; umount /mnt
  else echo "MOUNTFAIL \$d"; fi
done
dmesg | grep -i erofs
poweroff -f
INIT
chmod +x ir/init
(cd ir && find . | cpio -o -H newc --quiet) > init.cpio
drives=()
for i in "${!images[@]}"; do
  drives+=(-drive "file=${images[$i]},format=raw,if=none,readonly=on,id=d$i"
           -device "virtio-blk-device,drive=d$i")
done
timeout 900 qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot \
  -serial stdio -m 1024 -smp 1 -accel tcg -cpu max -M microvm,x-option-roms=off \
  -kernel "$vmlinuz" -initrd init.cpio "${drives[@]}" \
  -append "console=ttyS0 quiet panic=-1 tsc_early_khz=2596000 tsc=reliable no_timer_check \
i8042.noaux i8042.nokbd i8042.nopnp mitigations=off nokaslr audit=0 8250.nr_uarts=1" \
  | tr -d '\r' > guest.log
grep -E '^KERNEL|MOUNTFAIL|erofs:' guest.log || true
status=0
letters=(a b c d e f g h i j k l m n o p)
for i in "${!images[@]}"; do
  img=${images[$i]}; dev=vd${letters[$i]}
  sed -n "/^BEGIN $dev\$/,/^END $dev\$/p" guest.log | sed '1d;$d' > "guest-$i.txt"
  mount -t erofs -o loop,ro "$img" mnt
  "$dump" mnt > "host-$i.txt"
  umount mnt
  if [ -s "host-$i.txt" ] && cmp -s "guest-$i.txt" "host-$i.txt"; then
    echo "same: $img ($(wc -l < "host-$i.txt") entries)"
  else
    echo "DIFFERENT: $img (see $work/guest-$i.txt vs host-$i.txt)"; status=1
  fi
done
exit $status
