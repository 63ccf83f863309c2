// The A/B slot writer (issue 8; supervisor/slots.h) on a real GPT disk image (sfdisk) and an ESP
// directory, with the boot path simulated (tests/testing/ab_disk.h). Covered: update, reboot,
// commit; a broken release falling back once its tries are used up; a power loss before every
// step of the install (and inside the writes) leaving the old release bootable, and a retry
// completing; a second update reusing the older slot; refusals (UKI for another root, image too
// large, no inactive slot, a read-back that differs).
#include "supervisor/slots.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "ab_disk.h"
#include "absl/strings/match.h"
#include "test_support.h"

namespace appliance::supervisor {
namespace {

namespace fs = std::filesystem;
using attest::testing::AbDisk;
using attest::testing::WriteFileOrDie;

constexpr uint64_t kMiB = AbDisk::kMiB;

class SlotsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_.emplace(tmp_.path());
    esp_ = disk_->esp();
    r1_ = disk_->factory();
  }
  attest::testing::TestRelease MakeRelease(uint64_t version, size_t root_size, size_t verity_size,
                                           std::string uki_roothash = "") {
    return disk_->MakeRelease(version, root_size, verity_size, std::move(uki_roothash));
  }
  uint64_t Boot() { return disk_->Boot(); }
  void Bless() { disk_->Bless(); }
  SlotWriter Writer(const std::string& running) {
    return SlotWriter(disk_->gpt(), esp_, "appliance", running);
  }
  absl::StatusOr<std::vector<Slot>> Slots() { return ListSlots(disk_->gpt(), "appliance"); }

  attest::testing::ScopedTempDir tmp_;
  std::optional<AbDisk> disk_;
  fs::path esp_;
  attest::testing::TestRelease r1_;
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
  auto slots = Slots();
  ASSERT_TRUE(slots.ok());
  EXPECT_EQ((*slots)[0].version, 1u);  // the old release stays as the fallback
  EXPECT_EQ((*slots)[1].version, 2u);
  // Release 3 goes into release 1's slot; release 1's entry goes first.
  auto r3 = MakeRelease(3, 2 * kMiB, 50 * 1024);
  st = Writer(r2.roothash).Install(r3.Files());
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_FALSE(fs::exists(esp_ / "EFI/Linux/appliance_1.efi"));
  ASSERT_EQ(Boot(), 3u);
  slots = Slots();
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
    disk_->FactoryReset();
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
      auto slots = Slots();
      disk_->WriteAt((*slots)[1].root.start + 100, {0x42});
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
  auto slots = Slots();
  EXPECT_EQ((*slots)[1].version, 5u);
  EXPECT_EQ(Boot(), 6u);
}

// sfdisk's JSON of a disk the host controls: the real output parses to what GptDisk read; every
// truncation, wrong type and overflowing offset is a clean error naming the field.
TEST_F(SlotsTest, PartitionTableParserIsStrict) {
  auto run =
      attest::testing::RunProcess({"/usr/sbin/sfdisk", "--json", disk_->gpt().device().string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto parts = ParsePartitionTable(run.out);
  ASSERT_TRUE(parts.ok()) << parts.status();
  ASSERT_EQ(parts->size(), disk_->gpt().partitions().size());
  for (size_t i = 0; i < parts->size(); ++i) {
    EXPECT_EQ((*parts)[i].number, disk_->gpt().partitions()[i].number);
    EXPECT_EQ((*parts)[i].start, disk_->gpt().partitions()[i].start);
    EXPECT_EQ((*parts)[i].uuid, disk_->gpt().partitions()[i].uuid);
  }
  for (size_t n = 0; n + 1 < run.out.size(); n += 7) {
    auto r = ParsePartitionTable(run.out.substr(0, n));
    EXPECT_FALSE(r.ok()) << n;
  }
  auto edit = [&](auto f) {
    auto j = nlohmann::json::parse(run.out);
    f(j["partitiontable"]);
    return ParsePartitionTable(j.dump());
  };
  auto first = [](nlohmann::json& t) -> nlohmann::json& { return t["partitions"][0]; };
  struct Case {
    const char* what;
    std::function<void(nlohmann::json&)> f;
    const char* names;
  };
  const std::vector<Case> cases = {
      {"start as text", [&](auto& t) { first(t)["start"] = "2048"; }, "start"},
      {"negative size", [&](auto& t) { first(t)["size"] = -1; }, "size"},
      {"huge start", [&](auto& t) { first(t)["start"] = UINT64_MAX / 2; }, "start"},
      {"end past 2^64",
       [&](auto& t) {
         first(t)["start"] = (UINT64_MAX / 512) - 1;
         first(t)["size"] = 16;
       },
       "2^64"},
      {"uuid as number", [&](auto& t) { first(t)["uuid"] = 1; }, "strings"},
      {"node without number", [&](auto& t) { first(t)["node"] = "disk"; }, "node"},
      {"odd sector size", [&](auto& t) { t["sectorsize"] = 513; }, "sectorsize"},
      {"partitions an object", [&](auto& t) { t["partitions"] = nlohmann::json::object(); },
       "partitions"},
      {"too many partitions",
       [&](auto& t) {
         for (int i = 0; i < 130; ++i) t["partitions"].push_back(first(t));
       },
       "at most 128"},
  };
  for (const auto& c : cases) {
    auto r = edit(c.f);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << c.what << ": " << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), c.names)) << c.what << ": " << r.status();
  }
  auto dos = edit([](auto& t) { t["label"] = "dos"; });
  EXPECT_TRUE(absl::IsFailedPrecondition(dos.status())) << dos.status();
  // Boot entry names and the command line's roothash= (both host-controlled).
  EXPECT_FALSE(ParseBootEntry("appliance_+3.efi", "appliance"));
  EXPECT_FALSE(ParseBootEntry("appliance_2+3-1-1.efi", "appliance"));
  EXPECT_FALSE(ParseBootEntry("appliance_2+99999999999.efi", "appliance"));
  EXPECT_FALSE(ParseBootEntry("appliance_-2.efi", "appliance"));
  EXPECT_TRUE(ParseBootEntry("appliance_2+0-3.efi", "appliance")->bad());
  EXPECT_TRUE(absl::IsNotFound(RootHashOf("console=ttyS0 roothash").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(RootHashOf("roothash=" + std::string(63, 'a')).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(RootHashOf("roothash=" + std::string(64, 'g')).status()));
  EXPECT_EQ(*RootHashOf("x roothash=" + std::string(64, 'A') + " y"), std::string(64, 'a'));
}

}  // namespace
}  // namespace appliance::supervisor
