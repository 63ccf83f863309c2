#include "supervisor/updater.h"

#include <stdlib.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"
#include "attest/tuf/client.h"
#include "attest/tuf/client_revocations.h"
#include "attest/tuf/release.h"
#include "attest/tuf/signed_time.h"
#include "supervisor/release_counter.h"
#include "supervisor/slots.h"
#include "supervisor/tpm.h"

namespace appliance::supervisor {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
namespace tuf = attest::tuf;

struct Running {
  std::string roothash;
  std::optional<uint64_t> version;  // the running slot's label
};

std::string RootUuid(const std::string& roothash) {
  return PartitionUuidOf(roothash.substr(0, 32));
}

absl::StatusOr<std::string> BootedRootHash(const UpdaterOptions& o) {
  ASSIGN_OR_RETURN(auto bytes, attest::ReadFileBounded(o.cmdline, 64 * 1024));
  return RootHashOf(std::string(bytes.begin(), bytes.end()));
}

// "auto": the disk holding the booted root partition (/dev/disk/by-partuuid/<UUID from the booted
// roothash> → its parent block device in sysfs).
absl::StatusOr<GptDisk> OpenDisk(const UpdaterOptions& o) {
  fs::path disk = o.disk;
  if (disk == "auto") {
    ASSIGN_OR_RETURN(std::string hash, BootedRootHash(o));
    std::string uuid = RootUuid(hash);
    for (char& c : uuid) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::error_code ec;
    const fs::path part = fs::canonical(fs::path("/dev/disk/by-partuuid") / uuid, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("disk auto: no partition with UUID ", uuid, " (the booted root)"));
    }
    const fs::path parent =
        fs::canonical(fs::path("/sys/class/block") / part.filename() / "..", ec);
    if (ec) return absl::FailedPreconditionError("disk auto: no parent device in sysfs");
    disk = fs::path("/dev") / parent.filename();
  }
  return GptDisk::Open(disk, o.sfdisk);
}

absl::StatusOr<Running> RunningRelease(const UpdaterOptions& o, const GptDisk& disk) {
  Running r;
  ASSIGN_OR_RETURN(r.roothash, BootedRootHash(o));
  ASSIGN_OR_RETURN(auto slots, ListSlots(disk, o.image_name));
  for (const auto& s : slots) {
    if (s.root.uuid == RootUuid(r.roothash)) r.version = s.version;
  }
  return r;
}

struct Candidate {
  uint64_t version = 0;
  std::string uki, root, verity, roothash;
  bool complete() const {
    return !uki.empty() && !root.empty() && !verity.empty() && roothash.size() == 64;
  }
};

// The newest complete release for this hardware in the trusted targets.
std::optional<Candidate> Newest(const tuf::Targets& targets, const std::string& hardware) {
  std::map<uint64_t, Candidate> releases;
  for (const auto& [name, tf] : targets.targets) {
    const tuf::TargetRelease r = tuf::ReleaseOf(tf);
    if (r.hardware != hardware || r.release_version == 0) continue;
    Candidate& cand = releases[r.release_version];
    cand.version = r.release_version;
    if (r.kind == "uki") cand.uki = name;
    if (r.kind == "verity") cand.verity = name;
    if (r.kind == "root") {
      cand.root = name;
      cand.roothash = r.roothash;
    }
  }
  for (auto it = releases.rbegin(); it != releases.rend(); ++it) {
    if (it->second.complete()) return it->second;
  }
  return std::nullopt;
}

// Runs `body` with a refreshed TUF client over the channel.
template <typename F>
absl::StatusOr<json> WithChannel(const UpdaterOptions& o, F body) {
  if (!fs::exists(o.metadata_dir / "root.json")) {
    if (o.trusted_root.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          o.metadata_dir.string(), " holds no trusted root and none was given (--trusted-root)"));
    }
    ASSIGN_OR_RETURN(auto root, attest::ReadFileBounded(o.trusted_root, 512 * 1024));
    RETURN_IF_ERROR(tuf::Client::Init(o.metadata_dir, root));
  }
  auto fetcher = tuf::MakeHttpFetcher(absl::Seconds(30), o.ca_file);
  tuf::Client client(o.metadata_dir, o.metadata_url, fetcher.get());
  if (!o.signed_time.empty()) {
    ASSIGN_OR_RETURN(auto st, tuf::VerifySignedTimeFiles(o.signed_time, o.tsa_ca));
    client.set_signed_time(st.time, absl::StrCat("a time stamp ", st.tsa));
  }
  RETURN_IF_ERROR(client.Refresh());
  return body(client);
}

json EntriesJson(const UpdaterOptions& o) {
  json entries = json::array();
  for (const auto& e : BootOrder(o.esp, o.image_name)) entries.push_back(e.file);
  return entries;
}

}  // namespace

absl::StatusOr<json> UpdaterStatus(const UpdaterOptions& o) {
  ASSIGN_OR_RETURN(auto disk, OpenDisk(o));
  ASSIGN_OR_RETURN(Running running, RunningRelease(o, disk));
  json out = {{"running_roothash", running.roothash},
              {"running_version", running.version ? json(*running.version) : json(nullptr)},
              {"boot_entries", EntriesJson(o)}};
  if (!o.tcti.empty()) {
    ASSIGN_OR_RETURN(auto tpm, Tpm::Open(o.tcti));
    ASSIGN_OR_RETURN(out["committed_version"], ReleaseCounter(*tpm).Committed());
  }
  return WithChannel(o, [&](tuf::Client& client) -> absl::StatusOr<json> {
    ASSIGN_OR_RETURN(auto policy, tuf::PolicyOf(client.targets()));
    out["min_release_version"] = policy.min_release_version;
    auto newest = Newest(client.targets(), o.hardware);
    out["available_version"] = newest ? json(newest->version) : json(nullptr);
    return out;
  });
}

absl::StatusOr<json> UpdaterInstall(const UpdaterOptions& o) {
  ASSIGN_OR_RETURN(auto disk, OpenDisk(o));
  ASSIGN_OR_RETURN(Running running, RunningRelease(o, disk));
  return WithChannel(o, [&](tuf::Client& client) -> absl::StatusOr<json> {
    json out = {{"running_version", running.version ? json(*running.version) : json(nullptr)}};
    auto newest = Newest(client.targets(), o.hardware);
    if (!newest || (running.version && newest->version <= *running.version)) {
      out["installed"] = false;
      out["reason"] = "up to date";
      return out;
    }
    ASSIGN_OR_RETURN(auto policy, tuf::PolicyOf(client.targets()));
    RETURN_IF_ERROR(tuf::CheckRelease(policy, newest->version));
    std::unique_ptr<Tpm> tpm;
    if (!o.tcti.empty()) {
      ASSIGN_OR_RETURN(tpm, Tpm::Open(o.tcti));
      RETURN_IF_ERROR(ReleaseCounter(*tpm).CheckInstallable(newest->version));
    }
    fs::path work = o.work_dir;
    if (work.empty()) {
      std::string tmpl = "/var/tmp/appliance-update-XXXXXX";
      if (mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed");
      work = tmpl;
    }
    const std::string base =
        o.targets_url.empty() ? absl::StrCat(o.metadata_url, "/targets") : o.targets_url;
    for (const std::string* name : {&newest->uki, &newest->root, &newest->verity}) {
      RETURN_IF_ERROR(client.Download(*name, base, work, o.hardware).status());
    }
    SlotWriter writer(disk, o.esp, o.image_name, running.roothash);
    auto st = writer.Install({newest->version, work / newest->uki, work / newest->root,
                              work / newest->verity, newest->roothash},
                             o.tries);
    std::error_code ec;
    if (o.work_dir.empty()) fs::remove_all(work, ec);
    RETURN_IF_ERROR(st);
    out["installed"] = true;
    out["version"] = newest->version;
    out["boot_entries"] = EntriesJson(o);
    return out;
  });
}

absl::StatusOr<json> UpdaterCommit(const UpdaterOptions& o) {
  ASSIGN_OR_RETURN(auto disk, OpenDisk(o));
  ASSIGN_OR_RETURN(Running running, RunningRelease(o, disk));
  if (!running.version) {
    return absl::FailedPreconditionError(
        "commit: the running slot carries no release label (<name>_<version>)");
  }
  const std::string blessed = absl::StrCat(o.image_name, "_", *running.version, ".efi");
  bool found = false;
  for (const auto& e : BootOrder(o.esp, o.image_name)) found = found || e.file == blessed;
  if (!found) {
    return absl::FailedPreconditionError(
        absl::StrCat("commit: release ", *running.version, " is not blessed yet (no ", blessed,
                     "): the boot has not reached boot-complete.target"));
  }
  json out = {{"committed_version", *running.version}};
  if (!o.tcti.empty()) {
    ASSIGN_OR_RETURN(auto tpm, Tpm::Open(o.tcti));
    RETURN_IF_ERROR(ReleaseCounter(*tpm).Commit(*running.version));
  }
  return out;
}

absl::StatusOr<json> UpdaterRevocations(const UpdaterOptions& o) {
  if (o.revocations_file.empty()) {
    return absl::InvalidArgumentError("revocations: no --revocations-file");
  }
  return WithChannel(o, [&](tuf::Client& client) -> absl::StatusOr<json> {
    json out = {{"targets_version", client.targets().envelope.version}};
    std::string bytes = tuf::SerializeClientRevocations({});
    const std::string base =
        o.targets_url.empty() ? absl::StrCat(o.metadata_url, "/targets") : o.targets_url;
    auto got =
        client.ReadTarget(tuf::kClientRevocationsTarget, base, tuf::kMaxClientRevocationsFile);
    if (got.ok()) {
      bytes.assign(got->begin(), got->end());
      out["target"] = tuf::kClientRevocationsTarget;
    } else {
      if (!absl::IsNotFound(got.status())) return got.status();
      out["target"] = nullptr;  // the channel revokes no client
    }
    ASSIGN_OR_RETURN(auto list, tuf::ParseClientRevocations(std::span(
                                    reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
    RETURN_IF_ERROR(attest::WriteFileAtomically(o.revocations_file, bytes));
    out["revoked_clients"] = list.revoked.size();
    out["file"] = o.revocations_file.string();
    out["sha256"] = attest::HexEncode(*attest::tpm::Hash(
        attest::tpm::kAlgSha256,
        std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
    return out;
  });
}

}  // namespace appliance::supervisor
