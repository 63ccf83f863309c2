// The A/B slot writer of the updater (issue 8 item 4; docs/release-channel.md "A/B slots"), with
// systemd-sysupdate's naming and layout (Debian 12's systemd ships no sysupdate):
//   - a slot is a root partition (GPT type root-x86-64) and its dm-verity hash partition (type
//     root-x86-64-verity), paired in partition-table order; a slot holding release V is labelled
//     "<name>_<V>" (both partitions), a free or half-written one "_empty";
//   - the partitions' UUIDs are the two halves of the verity root hash, which is how the UKI's
//     `roothash=` finds its root (systemd-veritysetup-generator, as mkosi lays the image out);
//   - the UKI of release V is EFI/Linux/<name>_<V>+<tries>.efi in the ESP: systemd-boot boots the
//     newest version with tries left, counting each try in the file name (+2-1, ...), and
//     systemd-bless-boot drops the counter once the boot reached boot-complete.target (the
//     supervisor's READY), which commits it. A release that never gets there runs out of tries
//     and sorts after every good entry: the old release boots again (fallback).
// The install order keeps a bootable system after a power loss at any point: the old release's
// entry and slot are never touched; the inactive slot's entries are removed and it is labelled
// "_empty" before its bytes change; the new entry appears (atomic rename) only after both
// partitions were written, read back and verified and carry their UUIDs and labels.
#ifndef SUPERVISOR_SLOTS_H_
#define SUPERVISOR_SLOTS_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace appliance::supervisor {

inline constexpr char kRootPartitionType[] = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";
inline constexpr char kVerityPartitionType[] = "2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5";
inline constexpr char kEmptyLabel[] = "_empty";

struct Partition {
  int number = 0;
  uint64_t start = 0, size = 0;   // bytes
  std::string type, uuid, label;  // type and uuid upper-case as sfdisk prints them
};

// `sfdisk --json` of a GPT disk (the table is outside input: whoever controls the disk wrote it):
// at most 128 partitions, every field type-checked, offsets in bytes without overflow.
// InvalidArgument names the field; FailedPrecondition if the label is not "gpt".
absl::StatusOr<std::vector<Partition>> ParsePartitionTable(std::string_view sfdisk_json);

// A GPT disk (a block device, or a disk image file in tests) read and relabelled through sfdisk
// (util-linux): no GPT code of our own.
class GptDisk {
 public:
  static absl::StatusOr<GptDisk> Open(const std::filesystem::path& device,
                                      std::string sfdisk = "/usr/sbin/sfdisk");
  const std::vector<Partition>& partitions() const { return partitions_; }
  const std::filesystem::path& device() const { return device_; }
  absl::Status SetLabel(int number, const std::string& label);
  absl::Status SetUuid(int number, const std::string& uuid);
  absl::Status Reload();

 private:
  std::filesystem::path device_;
  std::string sfdisk_;
  std::vector<Partition> partitions_;
};

struct Slot {
  Partition root, verity;
  std::optional<uint64_t> version;  // from the label "<name>_<V>"; none for "_empty"
};
// The root + verity pairs in table order; InvalidArgument if the counts differ.
absl::StatusOr<std::vector<Slot>> ListSlots(const GptDisk& disk, const std::string& image_name);

// "<name>_<V>.efi" (committed) or "<name>_<V>+<left>[-<done>].efi" (being tried).
struct BootEntry {
  std::string file;
  uint64_t version = 0;
  std::optional<uint32_t> tries_left, tries_done;
  bool bad() const { return tries_left && *tries_left == 0; }
};
std::optional<BootEntry> ParseBootEntry(const std::string& file, const std::string& image_name);
// The entries of ESP/EFI/Linux in systemd-boot's order: entries with tries left (or committed)
// before used-up ones, newest version first. The first is what boots.
std::vector<BootEntry> BootOrder(const std::filesystem::path& esp, const std::string& image_name);

// The partition UUID ("8-4-4-4-12", upper case as sfdisk prints it) made of 32 hex digits: half a
// verity root hash (root partition: the first half, verity partition: the second).
std::string PartitionUuidOf(const std::string& hex32);

// The `roothash=` of a kernel command line, lower-case hex; NotFound if absent.
absl::StatusOr<std::string> RootHashOf(const std::string& cmdline);

struct ReleaseFiles {
  uint64_t version = 0;
  std::filesystem::path uki, root, verity;  // downloaded and checked against the channel
  std::string roothash;                     // 64 hex digits: the verity root hash
};

class SlotWriter {
 public:
  // `running_roothash`: the booted release's (from /proc/cmdline); its slot is never written.
  SlotWriter(GptDisk& disk, std::filesystem::path esp, std::string image_name,
             std::string running_roothash)
      : disk_(disk),
        esp_(std::move(esp)),
        name_(std::move(image_name)),
        running_(std::move(running_roothash)) {}

  // Called before each step with its name ("remove-entries", "mark-empty", "write-root",
  // "write-root@<offset>" per MiB, "verify-root", the same for verity, "set-uuids",
  // "set-labels", "write-uki", "rename-uki"); an error stops the install there, as a power loss
  // would (tests).
  std::function<absl::Status(const std::string& step)> before_step;

  // Writes the release into the inactive slot and adds its boot entry with `tries` tries.
  // FailedPrecondition names what does not fit ("slot.uki", "slot.size", "slot.none", ...);
  // DataLoss if a read-back differs from what was written.
  absl::Status Install(const ReleaseFiles& release, uint32_t tries = 3);

 private:
  absl::Status Step(const std::string& name);
  absl::Status WriteVerified(const Partition& p, const std::filesystem::path& source,
                             const std::string& what);

  GptDisk& disk_;
  std::filesystem::path esp_;
  std::string name_, running_;
};

}  // namespace appliance::supervisor

#endif  // SUPERVISOR_SLOTS_H_
