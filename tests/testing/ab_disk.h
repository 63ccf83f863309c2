// An appliance's boot disk for the updater's tests (issue 8): a GPT disk image made by sfdisk with
// an ESP and two A/B slots (root + verity partitions; slot A holds release 1, slot B is "_empty"),
// an ESP directory with release 1's UKI, and the boot path simulated as it happens: systemd-boot
// takes the first entry of BootOrder and counts the try in its file name, the UKI's roothash=
// finds root and verity by UUID, and the data must be the release's (what dm-verity enforces);
// systemd-bless-boot drops the counter once the boot is complete.
#ifndef TESTS_TESTING_AB_DISK_H_
#define TESTS_TESTING_AB_DISK_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "supervisor/slots.h"

namespace attest::testing {

struct TestRelease {
  uint64_t version = 0;
  std::vector<uint8_t> root, verity;  // random bytes
  std::string roothash;               // random: the writer takes it as given
  std::filesystem::path dir;          // uki.efi, root.raw, root.verity
  appliance::supervisor::ReleaseFiles Files() const;
};

class AbDisk {
 public:
  static constexpr uint64_t kMiB = 1 << 20;
  // Creates dir/disk.img (48 MiB: 4 MiB ESP, two slots of 8 MiB root + 1 MiB verity) and dir/esp.
  explicit AbDisk(const std::filesystem::path& dir);

  // A release with random root and verity data, its UKI's roothash= (the release's unless given).
  TestRelease MakeRelease(uint64_t version, size_t root_size, size_t verity_size,
                          std::string uki_roothash = "");
  const TestRelease& factory() const { return releases_.at(1); }

  // One boot; returns the booted release's version, 0 if nothing boots. Also writes `cmdline`
  // (the booted UKI's command line, as /proc/cmdline shows it).
  uint64_t Boot();
  void Bless();  // the last booted entry: boot complete

  void WriteAt(uint64_t offset, const std::vector<uint8_t>& data);
  std::vector<uint8_t> ReadAt(uint64_t offset, size_t n);
  appliance::supervisor::GptDisk& gpt() { return *gpt_; }
  const std::filesystem::path& disk_path() const { return disk_path_; }
  const std::filesystem::path& esp() const { return esp_; }
  std::filesystem::path cmdline() const { return dir_ / "cmdline"; }
  // Back to the factory state (release 1 only): disk bytes, partition table and ESP.
  void FactoryReset();

 private:
  std::filesystem::path dir_, disk_path_, esp_, current_entry_, factory_image_;
  std::optional<appliance::supervisor::GptDisk> gpt_;
  std::map<uint64_t, TestRelease> releases_;
};

}  // namespace attest::testing

#endif  // TESTS_TESTING_AB_DISK_H_
