# Shared by the mount/umount shims: the mtools address of a loop partition's FAT file system
# (backing file @@ byte offset; mtools cannot ask a loop partition for its geometry).
fat_image() {
  local part parent
  part=$(basename "$1")
  parent=$(basename "$(dirname "$(readlink -f "/sys/class/block/$part")")")
  echo "$(cat "/sys/block/$parent/loop/backing_file")@@$(($(cat "/sys/class/block/$part/start") * 512))"
}
