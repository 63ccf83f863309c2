#include "supervisor/slots.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "attest/boot/pe.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"

extern char** environ;

namespace appliance::supervisor {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr size_t kChunk = 1 << 20;
constexpr size_t kMaxToolOutput = 1 << 20;
constexpr int kToolTimeoutMs = 30000;
constexpr size_t kMaxUki = 512u << 20;
constexpr size_t kMaxSfdiskJson = kMaxToolOutput;
constexpr size_t kMaxPartitions = 128;  // GPT's usual entry array

// Runs a tool (no shell) and returns its standard output; its standard error names a failure.
absl::StatusOr<std::string> RunTool(const std::vector<std::string>& argv) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return absl::InternalError("pipe failed");
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(err[1]);
  std::string stdout_text, stderr_text;
  if (rc == 0) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kToolTimeoutMs);
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) {
        kill(pid, SIGKILL);
        break;
      }
      if (poll(fds, 2, static_cast<int>(left)) < 0 && errno != EINTR) break;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        char buf[4096];
        const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
        std::string& dst = i == 0 ? stdout_text : stderr_text;
        if (n > 0 && dst.size() < kMaxToolOutput) dst.append(buf, static_cast<size_t>(n));
        if (n <= 0) {
          fds[i].fd = -1;
          --open_fds;
        }
      }
    }
  }
  close(out[0]);
  close(err[0]);
  if (rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run ", argv[0], ": ", std::strerror(rc)));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(argv[0], " ", argv.size() > 1 ? argv[1] : "",
                     " failed: ", absl::StripAsciiWhitespace(stderr_text.substr(0, 2000))));
  }
  return stdout_text;
}

std::string Upper(std::string s) {
  absl::AsciiStrToUpper(&s);
  return s;
}

absl::Status Fsync(const fs::path& path, bool directory) {
  const int fd = open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat(path.string(), ": ", std::strerror(errno)));
  const int rc = fsync(fd);
  close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("fsync ", path.string()));
  return absl::OkStatus();
}

}  // namespace

std::string PartitionUuidOf(const std::string& hex32) {
  return Upper(absl::StrCat(hex32.substr(0, 8), "-", hex32.substr(8, 4), "-", hex32.substr(12, 4),
                            "-", hex32.substr(16, 4), "-", hex32.substr(20, 12)));
}

absl::StatusOr<GptDisk> GptDisk::Open(const fs::path& device, std::string sfdisk) {
  GptDisk d;
  d.device_ = device;
  d.sfdisk_ = std::move(sfdisk);
  RETURN_IF_ERROR(d.Reload());
  return d;
}

absl::StatusOr<std::vector<Partition>> ParsePartitionTable(std::string_view sfdisk_json) {
  if (sfdisk_json.size() > kMaxSfdiskJson) {
    return absl::InvalidArgumentError(
        absl::StrCat("sfdisk: ", sfdisk_json.size(), " bytes of output, at most ", kMaxSfdiskJson));
  }
  const json j = json::parse(sfdisk_json, nullptr, false);
  if (!j.is_object() || !j.contains("partitiontable") || !j["partitiontable"].is_object()) {
    return absl::InvalidArgumentError("sfdisk: no partitiontable object");
  }
  const json& t = j["partitiontable"];
  auto text = [](const json& o, const char* key) -> std::optional<std::string> {
    auto it = o.find(key);
    if (it == o.end()) return std::string();
    if (!it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto label = text(t, "label");
  if (!label) return absl::InvalidArgumentError("sfdisk: label is not a string");
  if (*label != "gpt") {
    return absl::FailedPreconditionError(absl::StrCat("not a GPT disk (label '", *label, "')"));
  }
  uint64_t sector = 512;
  if (auto it = t.find("sectorsize"); it != t.end()) {
    if (!it->is_number_unsigned() || (*it != 512 && *it != 4096)) {
      return absl::InvalidArgumentError("sfdisk: sectorsize must be 512 or 4096");
    }
    sector = it->get<uint64_t>();
  }
  std::vector<Partition> out;
  auto parts = t.find("partitions");
  if (parts == t.end()) return out;
  if (!parts->is_array() || parts->size() > kMaxPartitions) {
    return absl::InvalidArgumentError(
        absl::StrCat("sfdisk: partitions must be a list of at most ", kMaxPartitions));
  }
  for (const auto& p : *parts) {
    if (!p.is_object()) return absl::InvalidArgumentError("sfdisk: a partition is not an object");
    Partition part;
    auto node = text(p, "node"), type = text(p, "type"), uuid = text(p, "uuid"),
         name = text(p, "name");
    if (!node || !type || !uuid || !name) {
      return absl::InvalidArgumentError("sfdisk: node, type, uuid and name must be strings");
    }
    size_t digits = node->size();
    while (digits > 0 && absl::ascii_isdigit(static_cast<unsigned char>((*node)[digits - 1])))
      --digits;
    if (!absl::SimpleAtoi(node->substr(digits), &part.number) || part.number <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("sfdisk: partition node '", *node, "'"));
    }
    for (const auto& [key, field] : {std::pair{"start", &part.start}, {"size", &part.size}}) {
      auto it = p.find(key);
      if (it == p.end() || !it->is_number_unsigned() ||
          it->get<uint64_t>() > std::numeric_limits<uint64_t>::max() / sector) {
        return absl::InvalidArgumentError(
            absl::StrCat("sfdisk: partition ", part.number, " ", key, " must be a sector count"));
      }
      *field = it->get<uint64_t>() * sector;
    }
    if (part.start > std::numeric_limits<uint64_t>::max() - part.size) {
      return absl::InvalidArgumentError(
          absl::StrCat("sfdisk: partition ", part.number, " ends beyond 2^64 bytes"));
    }
    part.type = Upper(*type);
    part.uuid = Upper(*uuid);
    part.label = *name;
    out.push_back(std::move(part));
  }
  return out;
}

absl::Status GptDisk::Reload() {
  ASSIGN_OR_RETURN(std::string text, RunTool({sfdisk_, "--json", device_.string()}));
  auto parts = ParsePartitionTable(text);
  if (!parts.ok()) {
    return absl::Status(parts.status().code(),
                        absl::StrCat(device_.string(), ": ", parts.status().message()));
  }
  partitions_ = *std::move(parts);
  return absl::OkStatus();
}

absl::Status GptDisk::SetLabel(int number, const std::string& label) {
  RETURN_IF_ERROR(RunTool({sfdisk_, "--no-reread", "--no-tell-kernel", "--part-label",
                           device_.string(), std::to_string(number), label})
                      .status());
  return Reload();
}

absl::Status GptDisk::SetUuid(int number, const std::string& uuid) {
  RETURN_IF_ERROR(RunTool({sfdisk_, "--no-reread", "--no-tell-kernel", "--part-uuid",
                           device_.string(), std::to_string(number), uuid})
                      .status());
  return Reload();
}

absl::StatusOr<std::vector<Slot>> ListSlots(const GptDisk& disk, const std::string& image_name) {
  std::vector<Partition> roots, verities;
  for (const auto& p : disk.partitions()) {
    if (p.type == kRootPartitionType) roots.push_back(p);
    if (p.type == kVerityPartitionType) verities.push_back(p);
  }
  if (roots.size() != verities.size()) {
    return absl::InvalidArgumentError(absl::StrCat(disk.device().string(), ": ", roots.size(),
                                                   " root and ", verities.size(),
                                                   " verity partitions"));
  }
  std::vector<Slot> slots;
  for (size_t i = 0; i < roots.size(); ++i) {
    Slot s{roots[i], verities[i], std::nullopt};
    const std::string prefix = image_name + "_";
    uint64_t v = 0;
    if (absl::StartsWith(s.root.label, prefix) &&
        absl::SimpleAtoi(s.root.label.substr(prefix.size()), &v) &&
        s.verity.label == s.root.label) {
      s.version = v;
    }
    slots.push_back(std::move(s));
  }
  return slots;
}

std::optional<BootEntry> ParseBootEntry(const std::string& file, const std::string& image_name) {
  const std::string prefix = image_name + "_";
  if (!absl::StartsWith(file, prefix) || !absl::EndsWith(file, ".efi")) return std::nullopt;
  std::string rest = file.substr(prefix.size(), file.size() - prefix.size() - 4);
  BootEntry e;
  e.file = file;
  std::string counter;
  if (auto plus = rest.find('+'); plus != std::string::npos) {
    counter = rest.substr(plus + 1);
    rest.resize(plus);
    std::vector<std::string> parts = absl::StrSplit(counter, '-');
    uint32_t left = 0, done = 0;
    if (parts.empty() || parts.size() > 2 || !absl::SimpleAtoi(parts[0], &left) ||
        (parts.size() == 2 && !absl::SimpleAtoi(parts[1], &done))) {
      return std::nullopt;
    }
    e.tries_left = left;
    if (parts.size() == 2) e.tries_done = done;
  }
  if (rest.empty() || !absl::SimpleAtoi(rest, &e.version)) return std::nullopt;
  return e;
}

std::vector<BootEntry> BootOrder(const fs::path& esp, const std::string& image_name) {
  std::vector<BootEntry> out;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(esp / "EFI/Linux", ec)) {
    if (auto e = ParseBootEntry(f.path().filename().string(), image_name)) out.push_back(*e);
  }
  std::stable_sort(out.begin(), out.end(), [](const BootEntry& a, const BootEntry& b) {
    if (a.bad() != b.bad()) return !a.bad();
    return a.version > b.version;
  });
  return out;
}

absl::StatusOr<std::string> RootHashOf(const std::string& cmdline) {
  for (absl::string_view word :
       absl::StrSplit(cmdline, absl::ByAnyChar(" \t\n"), absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&word, "roothash=")) {
      std::string hex(word);
      absl::AsciiStrToLower(&hex);
      while (!hex.empty() && hex.back() == '\0') hex.pop_back();
      if (hex.size() != 64 || !attest::HexDecode(hex).ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("roothash= has ", hex.size(), " characters, 64 hex digits expected"));
      }
      return hex;
    }
  }
  return absl::NotFoundError("no roothash= on the command line");
}

absl::Status SlotWriter::Step(const std::string& name) {
  return before_step ? before_step(name) : absl::OkStatus();
}

absl::Status SlotWriter::WriteVerified(const Partition& p, const fs::path& source,
                                       const std::string& what) {
  std::error_code ec;
  const uint64_t size = fs::file_size(source, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(source.string(), ": cannot read"));
  if (size > p.size) {
    return absl::FailedPreconditionError(absl::StrCat("slot.size: the ", what, " image has ", size,
                                                      " bytes, partition ", p.number, " ", p.size));
  }
  RETURN_IF_ERROR(Step("write-" + what));
  const int in = open(source.c_str(), O_RDONLY | O_CLOEXEC);
  const int out = open(disk_.device().c_str(), O_WRONLY | O_CLOEXEC);
  if (in < 0 || out < 0) {
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    return absl::InternalError(
        absl::StrCat("open for the ", what, " slot: ", std::strerror(errno)));
  }
  // What was written is hashed as it goes; the read-back below must hash the same.
  using Sha256 = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
  Sha256 written(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(written.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(kChunk);
  absl::Status st;
  for (uint64_t done = 0; done < size && st.ok();) {
    st = Step(absl::StrCat("write-", what, "@", done));
    if (!st.ok()) break;
    const ssize_t n =
        pread(in, buf.data(), std::min<uint64_t>(kChunk, size - done), static_cast<off_t>(done));
    if (n <= 0) {
      st = absl::DataLossError(absl::StrCat(source.string(), ": short read"));
      break;
    }
    EVP_DigestUpdate(written.get(), buf.data(), static_cast<size_t>(n));
    for (ssize_t w = 0; w < n;) {
      const ssize_t m = pwrite(out, buf.data() + w, static_cast<size_t>(n - w),
                               static_cast<off_t>(p.start + done + static_cast<uint64_t>(w)));
      if (m <= 0) {
        st = absl::InternalError(
            absl::StrCat("write to partition ", p.number, ": ", std::strerror(errno)));
        break;
      }
      w += m;
    }
    done += static_cast<uint64_t>(n);
  }
  if (st.ok() && fsync(out) != 0) st = absl::InternalError("fsync of the slot failed");
  if (st.ok()) {  // what the device holds, not the page cache
    posix_fadvise(out, static_cast<off_t>(p.start), static_cast<off_t>(size), POSIX_FADV_DONTNEED);
  }
  close(in);
  close(out);
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(Step("verify-" + what));
  const int back = open(disk_.device().c_str(), O_RDONLY | O_CLOEXEC);
  if (back < 0) return absl::InternalError("cannot reopen the disk");
  Sha256 read(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(read.get(), EVP_sha256(), nullptr);
  uint64_t done = 0;
  while (done < size) {
    const ssize_t n = pread(back, buf.data(), std::min<uint64_t>(kChunk, size - done),
                            static_cast<off_t>(p.start + done));
    if (n <= 0) break;
    EVP_DigestUpdate(read.get(), buf.data(), static_cast<size_t>(n));
    done += static_cast<uint64_t>(n);
  }
  close(back);
  std::vector<uint8_t> got(32), want(32);
  EVP_DigestFinal_ex(read.get(), got.data(), nullptr);
  EVP_DigestFinal_ex(written.get(), want.data(), nullptr);
  if (done != size) return absl::DataLossError(absl::StrCat("read-back of the ", what, " slot"));
  if (got != want) {
    return absl::DataLossError(absl::StrCat("slot.verify: partition ", p.number, " holds ",
                                            attest::HexEncode(got), ", written ",
                                            attest::HexEncode(want), " (", what, ")"));
  }
  return absl::OkStatus();
}

absl::Status SlotWriter::Install(const ReleaseFiles& r, uint32_t tries) {
  if (r.roothash.size() != 64 || !attest::HexDecode(r.roothash).ok()) {
    return absl::InvalidArgumentError("roothash: 64 hex digits expected");
  }
  const std::string roothash = absl::AsciiStrToLower(r.roothash);
  // The UKI must boot the slot we write: its roothash= is the release's.
  ASSIGN_OR_RETURN(auto uki, attest::ReadFileBounded(r.uki, kMaxUki));
  ASSIGN_OR_RETURN(auto pe, attest::boot::ParsePe(uki));
  ASSIGN_OR_RETURN(auto cmdline, attest::boot::PeSectionData(uki, pe, ".cmdline"));
  if (!cmdline) return absl::FailedPreconditionError("slot.uki: the UKI has no .cmdline");
  auto uki_hash = RootHashOf(std::string(cmdline->begin(), cmdline->end()));
  if (!uki_hash.ok() || *uki_hash != roothash) {
    return absl::FailedPreconditionError(absl::StrCat("slot.uki: the UKI's roothash is ",
                                                      uki_hash.ok() ? *uki_hash : "(none)",
                                                      ", the root image's ", roothash));
  }
  ASSIGN_OR_RETURN(auto slots, ListSlots(disk_, name_));
  const std::string root_uuid = PartitionUuidOf(roothash.substr(0, 32));
  const std::string verity_uuid = PartitionUuidOf(roothash.substr(32));
  const std::string running_uuid =
      running_.size() == 64 ? PartitionUuidOf(running_.substr(0, 32)) : "";
  const Slot* target = nullptr;
  for (const auto& s : slots) {
    if (s.root.uuid == running_uuid) continue;  // the running release
    if (target == nullptr || !s.version || (target->version && *s.version < *target->version)) {
      target = &s;  // prefer an empty slot, else the oldest release
    }
  }
  if (target == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("slot.none: no inactive slot (", slots.size(), " slot(s), the running one is ",
                     running_uuid.empty() ? "unknown" : running_uuid, ")"));
  }
  const Slot slot = *target;
  // 1. Nothing may boot the slot while it changes: its release's entries go first, then its label.
  RETURN_IF_ERROR(Step("remove-entries"));
  std::error_code ec;
  for (const auto& e : BootOrder(esp_, name_)) {
    if (slot.version && e.version == *slot.version) {
      fs::remove(esp_ / "EFI/Linux" / e.file, ec);
      if (ec) return absl::InternalError(absl::StrCat("remove ", e.file, ": ", ec.message()));
    }
  }
  RETURN_IF_ERROR(Fsync(esp_ / "EFI/Linux", true));
  RETURN_IF_ERROR(Step("mark-empty"));
  RETURN_IF_ERROR(disk_.SetLabel(slot.root.number, kEmptyLabel));
  RETURN_IF_ERROR(disk_.SetLabel(slot.verity.number, kEmptyLabel));
  // 2. The data, read back and verified.
  RETURN_IF_ERROR(WriteVerified(slot.root, r.root, "root"));
  RETURN_IF_ERROR(WriteVerified(slot.verity, r.verity, "verity"));
  // 3. Found by the UKI's roothash=, named as sysupdate names it.
  RETURN_IF_ERROR(Step("set-uuids"));
  RETURN_IF_ERROR(disk_.SetUuid(slot.root.number, root_uuid));
  RETURN_IF_ERROR(disk_.SetUuid(slot.verity.number, verity_uuid));
  RETURN_IF_ERROR(Step("set-labels"));
  const std::string label = absl::StrCat(name_, "_", r.version);
  RETURN_IF_ERROR(disk_.SetLabel(slot.root.number, label));
  RETURN_IF_ERROR(disk_.SetLabel(slot.verity.number, label));
  // 4. The boot entry, last, atomically: before the rename systemd-boot sees no new entry.
  RETURN_IF_ERROR(Step("write-uki"));
  fs::create_directories(esp_ / "EFI/Linux", ec);
  const fs::path tmp = esp_ / "EFI/Linux" / absl::StrCat(".", name_, "_", r.version, ".tmp");
  RETURN_IF_ERROR(attest::WriteFileAtomically(tmp, uki));  // written and synced
  ASSIGN_OR_RETURN(auto back, attest::ReadFileBounded(tmp, kMaxUki));
  if (back != uki) return absl::DataLossError("slot.verify: the UKI read back differs");
  RETURN_IF_ERROR(Step("rename-uki"));
  const fs::path entry =
      esp_ / "EFI/Linux" / absl::StrCat(name_, "_", r.version, "+", tries, ".efi");
  fs::rename(tmp, entry, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("rename to ", entry.string(), ": ", ec.message()));
  return Fsync(esp_ / "EFI/Linux", true);
}

}  // namespace appliance::supervisor
