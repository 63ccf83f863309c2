#include "vhd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "attest/tpm/hash_alg.h"

namespace appliance::release {
namespace {

void PutBe(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * (bytes - 1 - i)));
}

// CHS geometry as the specification's appendix computes it from the sector count.
void Geometry(uint64_t disk_size, uint16_t& cylinders, uint8_t& heads, uint8_t& spt) {
  uint64_t total = disk_size / 512;
  if (total > 65535ull * 16 * 255) total = 65535ull * 16 * 255;
  uint64_t cth, h, s;
  if (total >= 65535ull * 16 * 63) {
    s = 255;
    h = 16;
    cth = total / s;
  } else {
    s = 17;
    cth = total / s;
    h = (cth + 1023) / 1024;
    if (h < 4) h = 4;
    if (cth >= h * 1024 || h > 16) {
      s = 31;
      h = 16;
      cth = total / s;
    }
    if (cth >= h * 1024) {
      s = 63;
      h = 16;
      cth = total / s;
    }
  }
  cylinders = static_cast<uint16_t>(cth / h);
  heads = static_cast<uint8_t>(h);
  spt = static_cast<uint8_t>(s);
}

}  // namespace

std::array<uint8_t, kVhdFooterSize> VhdFixedFooter(uint64_t disk_size, uint64_t source_date_epoch) {
  std::array<uint8_t, kVhdFooterSize> f{};
  std::memcpy(f.data(), "conectix", 8);
  PutBe(f.data() + 8, 2, 4);                       // features: reserved bit always set
  PutBe(f.data() + 12, 0x00010000, 4);             // file format version 1.0
  PutBe(f.data() + 16, 0xFFFFFFFFFFFFFFFFull, 8);  // data offset: none (fixed disk)
  const uint64_t ts = source_date_epoch > kVhdEpoch ? source_date_epoch - kVhdEpoch : 0;
  PutBe(f.data() + 24, ts & 0xFFFFFFFFu, 4);
  // Creator "win " (Hyper-V) / "Wi2k", as Azure's own tools write: readers then take the size
  // from the footer's current size, not from the (rounded) CHS geometry (qemu's vpc driver does
  // the latter for creators it does not know).
  std::memcpy(f.data() + 28, "win ", 4);
  PutBe(f.data() + 32, 0x000a0000, 4);  // creator version
  std::memcpy(f.data() + 36, "Wi2k", 4);
  PutBe(f.data() + 40, disk_size, 8);  // original size
  PutBe(f.data() + 48, disk_size, 8);  // current size
  uint16_t c;
  uint8_t h, s;
  Geometry(disk_size, c, h, s);
  PutBe(f.data() + 56, c, 2);
  f[58] = h;
  f[59] = s;
  PutBe(f.data() + 60, 2, 4);  // disk type: fixed
  // Unique id: from the build's time and size (reproducible), version-4 style bits set.
  const std::string seed = absl::StrCat("appliance-vhd-", source_date_epoch, "-", disk_size);
  auto digest =
      attest::tpm::Hash(attest::tpm::kAlgSha256,
                        std::span(reinterpret_cast<const uint8_t*>(seed.data()), seed.size()));
  std::copy(digest->begin(), digest->begin() + 16, f.begin() + 68);
  f[68 + 6] = static_cast<uint8_t>((f[68 + 6] & 0x0F) | 0x40);
  f[68 + 8] = static_cast<uint8_t>((f[68 + 8] & 0x3F) | 0x80);
  uint32_t sum = 0;
  for (size_t i = 0; i < f.size(); ++i) sum += f[i];  // checksum field (64..67) is zero here
  PutBe(f.data() + 64, ~sum, 4);
  return f;
}

absl::Status AppendVhdFooter(const std::filesystem::path& path, uint64_t source_date_epoch) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", strerror(errno)));
  const off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0 || size % (1 << 20) != 0) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(
        path.string(), ": ", size, " bytes is not a whole number of MiB (a raw disk, not a VHD?)"));
  }
  const auto footer = VhdFixedFooter(static_cast<uint64_t>(size), source_date_epoch);
  ssize_t n = pwrite(fd, footer.data(), footer.size(), size);
  int err = errno;
  bool synced = n == static_cast<ssize_t>(footer.size()) && fsync(fd) == 0;
  close(fd);
  if (!synced) {
    return absl::UnavailableError(absl::StrCat(
        path.string(), ": cannot append the footer: ", n < 0 ? strerror(err) : "short write"));
  }
  return absl::OkStatus();
}

}  // namespace appliance::release
