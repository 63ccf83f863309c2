#include "ab_disk.h"

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "attest/boot/pe.h"
#include "attest/encoding.h"
#include "pe_builder.h"
#include "test_support.h"

namespace attest::testing {
namespace {

namespace fs = std::filesystem;
using appliance::supervisor::BootEntry;
using appliance::supervisor::BootOrder;
using appliance::supervisor::kRootPartitionType;
using appliance::supervisor::kVerityPartitionType;
using appliance::supervisor::Partition;

std::vector<uint8_t> Random(size_t n) {
  std::vector<uint8_t> v(n);
  RAND_bytes(v.data(), static_cast<int>(n));
  return v;
}

}  // namespace

appliance::supervisor::ReleaseFiles TestRelease::Files() const {
  return {version, dir / "uki.efi", dir / "root.raw", dir / "root.verity", roothash};
}

AbDisk::AbDisk(const fs::path& dir)
    : dir_(dir),
      disk_path_(dir / "disk.img"),
      esp_(dir / "esp"),
      factory_image_(dir / "factory.img") {
  fs::create_directories(esp_ / "EFI/Linux");
  const TestRelease r1 = MakeRelease(1, 3 * kMiB + 123, 100 * 1024);
  std::ofstream(disk_path_).close();
  fs::resize_file(disk_path_, 48 * kMiB);
  const std::string layout = absl::StrCat(
      "label: gpt\n", "size=4MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp\n",
      "size=8MiB, type=", kRootPartitionType, ", name=appliance_1, uuid=",
      appliance::supervisor::PartitionUuidOf(r1.roothash.substr(0, 32)), "\n",
      "size=1MiB, type=", kVerityPartitionType,
      ", name=appliance_1, uuid=", appliance::supervisor::PartitionUuidOf(r1.roothash.substr(32)),
      "\n", "size=8MiB, type=", kRootPartitionType, ", name=_empty\n",
      "size=1MiB, type=", kVerityPartitionType, ", name=_empty\n");
  WriteFileOrDie(dir_ / "layout", layout);
  auto r = RunProcess({"/bin/sh", "-c",
                       absl::StrCat("/usr/sbin/sfdisk -q ", disk_path_.string(), " < ",
                                    (dir_ / "layout").string())});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto gpt = appliance::supervisor::GptDisk::Open(disk_path_);
  EXPECT_TRUE(gpt.ok()) << gpt.status();
  gpt_.emplace(*std::move(gpt));
  auto slots = appliance::supervisor::ListSlots(*gpt_, "appliance");
  EXPECT_TRUE(slots.ok() && slots->size() == 2) << slots.status();
  WriteAt((*slots)[0].root.start, r1.root);
  WriteAt((*slots)[0].verity.start, r1.verity);
  fs::copy_file(disk_path_, factory_image_);
  FactoryReset();
}

void AbDisk::FactoryReset() {
  fs::copy_file(factory_image_, disk_path_, fs::copy_options::overwrite_existing);
  fs::remove_all(esp_ / "EFI/Linux");
  fs::create_directories(esp_ / "EFI/Linux");
  fs::copy_file(factory().dir / "uki.efi", esp_ / "EFI/Linux/appliance_1.efi");
  EXPECT_TRUE(gpt_->Reload().ok());
  WriteFileOrDie(cmdline(), absl::StrCat("console=ttyS0 roothash=", factory().roothash, "\n"));
}

TestRelease AbDisk::MakeRelease(uint64_t version, size_t root_size, size_t verity_size,
                                std::string uki_roothash) {
  TestRelease r{version, Random(root_size), Random(verity_size), HexEncode(Random(32)),
                dir_ / absl::StrCat("r", version)};
  fs::create_directories(r.dir);
  WriteFileOrDie(r.dir / "root.raw", r.root);
  WriteFileOrDie(r.dir / "root.verity", r.verity);
  if (uki_roothash.empty()) uki_roothash = r.roothash;
  WriteFileOrDie(
      r.dir / "uki.efi",
      BuildTestUki(absl::StrCat("console=ttyS0 roothash=", uki_roothash, " quiet"), {1, 2}));
  releases_[version] = r;
  return r;
}

void AbDisk::WriteAt(uint64_t offset, const std::vector<uint8_t>& data) {
  std::fstream f(disk_path_, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

std::vector<uint8_t> AbDisk::ReadAt(uint64_t offset, size_t n) {
  std::ifstream f(disk_path_, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  std::vector<uint8_t> out(n);
  f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
  return out;
}

uint64_t AbDisk::Boot() {
  auto order = BootOrder(esp_, "appliance");
  if (order.empty()) return 0;
  const BootEntry e = order[0];
  fs::path file = esp_ / "EFI/Linux" / e.file;
  if (e.tries_left && *e.tries_left > 0) {
    const fs::path counted = esp_ / "EFI/Linux" /
                             absl::StrCat("appliance_", e.version, "+", *e.tries_left - 1, "-",
                                          e.tries_done.value_or(0) + 1, ".efi");
    fs::rename(file, counted);
    file = counted;
  }
  current_entry_ = file;
  auto uki = ReadFileOrDie(file);
  auto pe = boot::ParsePe(uki);
  if (!pe.ok()) return 0;
  auto section = boot::PeSectionData(uki, *pe, ".cmdline");
  if (!section.ok() || !*section) return 0;
  const std::string text((*section)->begin(), (*section)->end());
  auto hash = appliance::supervisor::RootHashOf(text);
  if (!hash.ok()) return 0;
  EXPECT_TRUE(gpt_->Reload().ok());
  std::optional<Partition> root, verity;
  for (const auto& p : gpt_->partitions()) {
    if (p.type == kRootPartitionType &&
        p.uuid == appliance::supervisor::PartitionUuidOf(hash->substr(0, 32)))
      root = p;
    if (p.type == kVerityPartitionType &&
        p.uuid == appliance::supervisor::PartitionUuidOf(hash->substr(32)))
      verity = p;
  }
  if (!root || !verity) return 0;
  for (const auto& [v, r] : releases_) {
    if (r.roothash != *hash) continue;
    if (ReadAt(root->start, r.root.size()) != r.root) return 0;  // dm-verity would fail
    if (ReadAt(verity->start, r.verity.size()) != r.verity) return 0;
    WriteFileOrDie(cmdline(), text);
    return v;
  }
  return 0;
}

void AbDisk::Bless() {
  auto e = appliance::supervisor::ParseBootEntry(current_entry_.filename().string(), "appliance");
  ASSERT_TRUE(e);
  fs::rename(current_entry_, esp_ / "EFI/Linux" / absl::StrCat("appliance_", e->version, ".efi"));
}

}  // namespace attest::testing
