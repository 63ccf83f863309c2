// The A/B slot writer (issue 8; supervisor/slots.h) on a real GPT disk image (sfdisk) and an ESP
// directory, with the boot path simulated as it happens: systemd-boot picks the first entry of
// BootOrder and counts the try in its file name, the UKI's roothash= finds the root and verity
// partitions by UUID, systemd-bless-boot drops the counter after READY. Covered: update, reboot,
// commit; a broken release falling back once its tries are used up; a power loss before every
// step of the install (and inside the writes) leaving the old release bootable, and a retry
// completing; a second update reusing the older slot; refusals (UKI for another root, image too
// large, no inactive slot, a read-back that differs).
#include "supervisor/slots.h"

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attest/boot/pe.h"
#include "attest/encoding.h"
#include "attest/tpm/hash_alg.h"
#include "pe_builder.h"
#include "test_support.h"

namespace appliance::supervisor {
namespace {

namespace fs = std::filesystem;
using attest::testing::ReadFileOrDie;
using attest::testing::RunProcess;
using attest::testing::WriteFileOrDie;

constexpr uint64_t kMiB = 1 << 20;

std::vector<uint8_t> Random(size_t n) {
  std::vector<uint8_t> v(n);
  RAND_bytes(v.data(), static_cast<int>(n));
  return v;
}

std::string UuidOf(const std::string& hex32) {
  std::string u =
      absl::StrCat(hex32.substr(0, 8), "-", hex32.substr(8, 4), "-", hex32.substr(12, 4), "-",
                   hex32.substr(16, 4), "-", hex32.substr(20, 12));
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

struct TestRelease {
  uint64_t version;
  std::vector<uint8_t> root, verity;
  std::string roothash;  // random: the writer takes it as given
  fs::path dir;
  ReleaseFiles Files() const {
    return {version, dir / "uki.efi", dir / "root.raw", dir / "root.verity", roothash};
  }
};

class SlotsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_path_ = tmp_.path() / "disk.img";
    esp_ = tmp_.path() / "esp";
    fs::create_directories(esp_ / "EFI/Linux");
    r1_ = MakeRelease(1, 3 * kMiB + 123, 100 * 1024);
    // The factory image: ESP, slot A with release 1, an empty slot B.
    std::ofstream(disk_path_).close();
    fs::resize_file(disk_path_, 48 * kMiB);
    const std::string layout = absl::StrCat(
        "label: gpt\n", "size=4MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp\n",
        "size=8MiB, type=", kRootPartitionType,
        ", name=appliance_1, uuid=", UuidOf(r1_.roothash.substr(0, 32)), "\n",
        "size=1MiB, type=", kVerityPartitionType,
        ", name=appliance_1, uuid=", UuidOf(r1_.roothash.substr(32)), "\n",
        "size=8MiB, type=", kRootPartitionType, ", name=_empty\n",
        "size=1MiB, type=", kVerityPartitionType, ", name=_empty\n");
    WriteFileOrDie(tmp_.path() / "layout", layout);
    auto r = RunProcess({"/bin/sh", "-c",
                         absl::StrCat("/usr/sbin/sfdisk -q ", disk_path_.string(), " < ",
                                      (tmp_.path() / "layout").string())});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto disk = GptDisk::Open(disk_path_);
    ASSERT_TRUE(disk.ok()) << disk.status();
    disk_.emplace(*std::move(disk));
    auto slots = ListSlots(*disk_, "appliance");
    ASSERT_TRUE(slots.ok()) << slots.status();
    ASSERT_EQ(slots->size(), 2u);
    EXPECT_EQ((*slots)[0].version, 1u);
    EXPECT_FALSE((*slots)[1].version);
    WriteAt((*slots)[0].root.start, r1_.root);
    WriteAt((*slots)[0].verity.start, r1_.verity);
    fs::copy_file(r1_.dir / "uki.efi", esp_ / "EFI/Linux/appliance_1.efi");
  }

  TestRelease MakeRelease(uint64_t version, size_t root_size, size_t verity_size,
                          std::string uki_roothash = "") {
    TestRelease r{version, Random(root_size), Random(verity_size), attest::HexEncode(Random(32)),
                  tmp_.path() / absl::StrCat("r", version)};
    fs::create_directories(r.dir);
    WriteFileOrDie(r.dir / "root.raw", r.root);
    WriteFileOrDie(r.dir / "root.verity", r.verity);
    if (uki_roothash.empty()) uki_roothash = r.roothash;
    WriteFileOrDie(r.dir / "uki.efi",
                   attest::testing::BuildTestUki(
                       absl::StrCat("console=ttyS0 roothash=", uki_roothash, " quiet"), {1, 2}));
    releases_[version] = r;
    return r;
  }

  void WriteAt(uint64_t offset, const std::vector<uint8_t>& data) {
    std::fstream f(disk_path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  }
  std::vector<uint8_t> ReadAt(uint64_t offset, size_t n) {
    std::ifstream f(disk_path_, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    std::vector<uint8_t> out(n);
    f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
    return out;
  }

  // One boot: systemd-boot takes the first entry (counting the try), the initrd finds root and
  // verity by the UUIDs of the UKI's roothash=, and the data must be that release's. Returns the
  // booted version, or 0 if nothing bootable.
  uint64_t Boot() {
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
    auto pe = attest::boot::ParsePe(uki);
    if (!pe.ok()) return 0;
    auto cmdline = attest::boot::PeSectionData(uki, *pe, ".cmdline");
    if (!cmdline.ok() || !*cmdline) return 0;
    auto hash = RootHashOf(std::string((*cmdline)->begin(), (*cmdline)->end()));
    if (!hash.ok()) return 0;
    EXPECT_TRUE(disk_->Reload().ok());
    std::optional<Partition> root, verity;
    for (const auto& p : disk_->partitions()) {
      if (p.type == kRootPartitionType && p.uuid == UuidOf(hash->substr(0, 32))) root = p;
      if (p.type == kVerityPartitionType && p.uuid == UuidOf(hash->substr(32))) verity = p;
    }
    if (!root || !verity) return 0;
    for (const auto& [v, r] : releases_) {
      if (r.roothash != *hash) continue;
      if (ReadAt(root->start, r.root.size()) != r.root) return 0;  // dm-verity would fail
      if (ReadAt(verity->start, r.verity.size()) != r.verity) return 0;
      return v;
    }
    return 0;
  }
  // systemd-bless-boot after boot-complete.target (the supervisor's READY).
  void Bless() {
    auto e = ParseBootEntry(current_entry_.filename().string(), "appliance");
    ASSERT_TRUE(e);
    fs::rename(current_entry_, esp_ / "EFI/Linux" / absl::StrCat("appliance_", e->version, ".efi"));
  }
  SlotWriter Writer(const std::string& running) {
    return SlotWriter(*disk_, esp_, "appliance", running);
  }

  attest::testing::ScopedTempDir tmp_;
  fs::path disk_path_, esp_, current_entry_;
  std::optional<GptDisk> disk_;
  TestRelease r1_;
  std::map<uint64_t, TestRelease> releases_;
};

TEST_F(SlotsTest, NamingAndBootOrderFollowSysupdateAndSystemdBoot) {
  EXPECT_FALSE(ParseBootEntry("other_3.efi", "appliance"));
  EXPECT_FALSE(ParseBootEntry("appliance_x.efi", "appliance"));
  EXPECT_FALSE(ParseBootEntry("appliance_3+a.efi", "appliance"));
  auto e = ParseBootEntry("appliance_12+1-2.efi", "appliance");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->version, 12u);
  EXPECT_EQ(e->tries_left, 1u);
  EXPECT_EQ(e->tries_done, 2u);
  EXPECT_TRUE(ParseBootEntry("appliance_12+0-3.efi", "appliance")->bad());
  for (const char* f : {"appliance_9.efi", "appliance_12+0-3.efi", "appliance_10+2-1.efi"}) {
    WriteFileOrDie(esp_ / "EFI/Linux" / f, "x");
  }
  std::vector<std::string> order;
  for (const auto& b : BootOrder(esp_, "appliance")) order.push_back(b.file);
  EXPECT_EQ(order, (std::vector<std::string>{"appliance_10+2-1.efi", "appliance_9.efi",
                                             "appliance_1.efi", "appliance_12+0-3.efi"}));
  EXPECT_EQ(*RootHashOf(std::string("a roothash=") + std::string(64, 'A') + " b"),
            std::string(64, 'a'));
  EXPECT_FALSE(RootHashOf("roothash=abc").ok());
}

TEST_F(SlotsTest, UpdateRebootCommitThenTheNextUpdateReusesTheOlderSlot) {
  ASSERT_EQ(Boot(), 1u);
  auto r2 = MakeRelease(2, 5 * kMiB, 200 * 1024);
  auto st = Writer(r1_.roothash).Install(r2.Files());
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(fs::exists(esp_ / "EFI/Linux/appliance_2+3.efi"));
  ASSERT_EQ(Boot(), 2u);
  Bless();  // READY: committed
  EXPECT_TRUE(fs::exists(esp_ / "EFI/Linux/appliance_2.efi"));
  ASSERT_EQ(Boot(), 2u);
  auto slots = ListSlots(*disk_, "appliance");
  ASSERT_TRUE(slots.ok());
  EXPECT_EQ((*slots)[0].version, 1u);  // the old release stays as the fallback
  EXPECT_EQ((*slots)[1].version, 2u);
  // Release 3 goes into release 1's slot; release 1's entry goes first.
  auto r3 = MakeRelease(3, 2 * kMiB, 50 * 1024);
  st = Writer(r2.roothash).Install(r3.Files());
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_FALSE(fs::exists(esp_ / "EFI/Linux/appliance_1.efi"));
  ASSERT_EQ(Boot(), 3u);
  slots = ListSlots(*disk_, "appliance");
  EXPECT_EQ((*slots)[0].version, 3u);
  EXPECT_EQ((*slots)[1].version, 2u);
}

TEST_F(SlotsTest, ABrokenReleaseFallsBackOnceItsTriesAreUsedUp) {
  auto r2 = MakeRelease(2, 1 * kMiB, 10 * 1024);
  ASSERT_TRUE(Writer(r1_.roothash).Install(r2.Files()).ok());
  // Release 2 never reaches READY (never blessed): three tries, then release 1 again.
  EXPECT_EQ(Boot(), 2u);
  EXPECT_EQ(Boot(), 2u);
  EXPECT_EQ(Boot(), 2u);
  EXPECT_EQ(Boot(), 1u);
  EXPECT_TRUE(fs::exists(esp_ / "EFI/Linux/appliance_2+0-3.efi"));
  EXPECT_EQ(Boot(), 1u);
}

TEST_F(SlotsTest, PowerLossAtEveryStepLeavesTheOldReleaseBootable) {
  auto r2 = MakeRelease(2, 2 * kMiB + 7, 64 * 1024);
  // The steps of a whole install, recorded once.
  std::vector<std::string> steps;
  const fs::path pristine = tmp_.path() / "pristine.img";
  fs::copy_file(disk_path_, pristine);
  {
    SlotWriter w = Writer(r1_.roothash);
    w.before_step = [&](const std::string& s) {
      steps.push_back(s);
      return absl::OkStatus();
    };
    ASSERT_TRUE(w.Install(r2.Files()).ok());
  }
  ASSERT_GE(steps.size(), 12u);
  for (size_t k = 0; k < steps.size(); ++k) {
    SCOPED_TRACE("power loss before " + steps[k]);
    fs::copy_file(pristine, disk_path_, fs::copy_options::overwrite_existing);
    fs::remove_all(esp_ / "EFI/Linux");
    fs::create_directories(esp_ / "EFI/Linux");
    fs::copy_file(r1_.dir / "uki.efi", esp_ / "EFI/Linux/appliance_1.efi");
    ASSERT_TRUE(disk_->Reload().ok());
    size_t n = 0;
    SlotWriter w = Writer(r1_.roothash);
    w.before_step = [&](const std::string&) {
      return n++ == k ? absl::UnavailableError("power loss") : absl::OkStatus();
    };
    EXPECT_FALSE(w.Install(r2.Files()).ok());
    EXPECT_EQ(Boot(), 1u);
    // After the reboot the updater tries again and completes.
    ASSERT_TRUE(Writer(r1_.roothash).Install(r2.Files()).ok());
    EXPECT_EQ(Boot(), 2u);
  }
}

TEST_F(SlotsTest, RefusesWhatWouldNotBootAndDetectsABadReadBack) {
  // A UKI that boots another root.
  auto wrong = MakeRelease(2, kMiB, 1024, std::string(64, 'c'));
  auto st = Writer(r1_.roothash).Install(wrong.Files());
  EXPECT_TRUE(absl::StrContains(st.message(), "slot.uki: the UKI's roothash is cccc")) << st;
  // An image larger than the slot.
  auto big = MakeRelease(3, 9 * kMiB, 1024);
  st = Writer(r1_.roothash).Install(big.Files());
  EXPECT_TRUE(absl::StrContains(st.message(), "slot.size")) << st;
  EXPECT_EQ(Boot(), 1u);
  // The device returns other bytes than were written.
  auto r4 = MakeRelease(4, kMiB, 1024);
  SlotWriter w = Writer(r1_.roothash);
  w.before_step = [&](const std::string& s) {
    if (s == "verify-root") {
      auto slots = ListSlots(*disk_, "appliance");
      WriteAt((*slots)[1].root.start + 100, {0x42});
    }
    return absl::OkStatus();
  };
  st = w.Install(r4.Files());
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(st.message(), "slot.verify")) << st;
  EXPECT_EQ(Boot(), 1u);
  // Both slots in use by releases that run: the running one is never written.
  auto r5 = MakeRelease(5, kMiB, 1024);
  ASSERT_TRUE(Writer(r1_.roothash).Install(r5.Files()).ok());
  auto r6 = MakeRelease(6, kMiB, 1024);
  st = Writer(r5.roothash).Install(r6.Files());  // goes to release 1's slot, not 5's
  ASSERT_TRUE(st.ok()) << st;
  auto slots = ListSlots(*disk_, "appliance");
  EXPECT_EQ((*slots)[1].version, 5u);
  EXPECT_EQ(Boot(), 6u);
}

}  // namespace
}  // namespace appliance::supervisor
