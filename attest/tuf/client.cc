#include "attest/tuf/client.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <list>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"

namespace attest::tuf {
namespace {

namespace fs = std::filesystem;

absl::Status Check(absl::string_view name, absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat("tuf.", name, ": ", what));
}

class FileFetcher : public Fetcher {
 public:
  absl::Status FetchTo(const std::string& url, size_t max_bytes, const Sink& sink) override {
    const fs::path path = absl::StartsWith(url, "file://") ? url.substr(7) : url;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return errno == ENOENT ? absl::NotFoundError(absl::StrCat(url, ": not found"))
                             : absl::UnavailableError(absl::StrCat(url, ": ", strerror(errno)));
    }
    std::vector<uint8_t> chunk(1 << 20);
    size_t total = 0;
    absl::Status st;
    while (st.ok()) {
      const ssize_t n = read(fd, chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        st = absl::UnavailableError(absl::StrCat(url, ": ", strerror(errno)));
        break;
      }
      if (n == 0) break;
      total += static_cast<size_t>(n);
      if (total > max_bytes) {
        st = Check("download.size", absl::StrCat(url, " is larger than the limit of ", max_bytes,
                                                 " bytes (endless data)"));
        break;
      }
      st = sink(std::span<const uint8_t>(chunk.data(), static_cast<size_t>(n)));
    }
    close(fd);
    return st;
  }
};

}  // namespace

absl::StatusOr<std::vector<uint8_t>> Fetcher::Fetch(const std::string& url, size_t max_bytes) {
  std::vector<uint8_t> body;
  RETURN_IF_ERROR(FetchTo(url, max_bytes, [&](std::span<const uint8_t> piece) {
    body.insert(body.end(), piece.begin(), piece.end());
    return absl::OkStatus();
  }));
  return body;
}

std::unique_ptr<Fetcher> MakeFileFetcher() { return std::make_unique<FileFetcher>(); }

Client::Client(fs::path metadata_dir, std::string metadata_url, Fetcher* fetcher, absl::Time now,
               Limits limits)
    : dir_(std::move(metadata_dir)),
      url_(std::move(metadata_url)),
      fetcher_(fetcher),
      now_(now),
      limits_(limits) {}

absl::Status Client::Init(const fs::path& metadata_dir, std::span<const uint8_t> trusted_root) {
  ASSIGN_OR_RETURN(Root root, ParseRoot(trusted_root));
  RETURN_IF_ERROR(VerifyRoleSignatures(root.envelope, "root", root.roles.at("root"), root.keys));
  std::error_code ec;
  fs::create_directories(metadata_dir, ec);
  return WriteFileAtomically(metadata_dir / "root.json", trusted_root);
}

std::string Client::Url(const std::string& base, const std::string& name) const {
  if (base.empty()) return name;
  return absl::EndsWith(base, "/") ? base + name : base + "/" + name;
}

void Client::Store(const std::string& name, std::span<const uint8_t> bytes) {
  pending_[name].assign(bytes.begin(), bytes.end());
  pending_removals_.erase(name);
}

absl::Status Client::Commit() {
  for (const auto& [name, bytes] : pending_)
    RETURN_IF_ERROR(WriteFileAtomically(dir_ / name, bytes));
  for (const auto& name : pending_removals_) {
    std::error_code ec;
    fs::remove(dir_ / name, ec);
  }
  pending_.clear();
  pending_removals_.clear();
  return absl::OkStatus();
}

absl::Status Client::Expired(const Envelope& e) const {
  // The clock is the host's: never earlier than the newest signing time already trusted.
  const absl::Time now = std::max({now_, floor_, signed_time_});
  if (e.expires <= now) {
    std::string why;
    if (signed_time_ == now && signed_time_ > now_) {
      why = absl::StrCat(": the clock says ", FormatUtc(now_), ", but a signed time (",
                         signed_time_source_, ") says ", FormatUtc(signed_time_));
    } else if (floor_ > now_) {
      why = absl::StrCat(": the clock says ", FormatUtc(now_), ", but a timestamp issued at ",
                         FormatUtc(floor_), " was trusted");
    }
    return Check(absl::StrCat(e.type, ".expired"),
                 absl::StrCat(e.type, " version ", e.version, " expired at ", FormatUtc(e.expires),
                              " (a frozen or replayed repository); now is ", FormatUtc(now), why));
  }
  return absl::OkStatus();
}

absl::Status Client::RaiseFloor(const Envelope& timestamp) {
  auto issued = timestamp.signed_json.find("issued");
  if (issued == timestamp.signed_json.end()) return absl::OkStatus();  // not our publisher's
  ASSIGN_OR_RETURN(absl::Time t, ParseTime(*issued, "timestamp.json.issued"));
  if (t > floor_) {
    floor_ = t;
    const std::string text = nlohmann::json{{"time", FormatUtc(t)}}.dump() + "\n";
    pending_[kFloorFile].assign(text.begin(), text.end());
  }
  return absl::OkStatus();
}

absl::Status Client::LoadTrusted() {
  ASSIGN_OR_RETURN(auto bytes, ReadFileBounded(dir_ / "root.json", limits_.root));
  ASSIGN_OR_RETURN(root_, ParseRoot(bytes));
  floor_ = absl::InfinitePast();
  if (auto f = ReadFileBounded(dir_ / kFloorFile, 1024); f.ok()) {
    auto j = nlohmann::json::parse(f->begin(), f->end(), nullptr, false);
    if (!j.is_object() || !j.contains("time")) {
      return absl::InvalidArgumentError(absl::StrCat(kFloorFile, ": {\"time\"} expected"));
    }
    ASSIGN_OR_RETURN(floor_, ParseTime(j["time"], kFloorFile));
  }
  if (auto t = ReadFileBounded(dir_ / "timestamp.json", limits_.timestamp); t.ok()) {
    auto parsed = ParseTimestamp(*t);
    if (parsed.ok() &&
        VerifyRoleSignatures(parsed->envelope, "timestamp", root_.roles.at("timestamp"), root_.keys)
            .ok()) {
      timestamp_ = *std::move(parsed);
    }
  }
  if (auto s = ReadFileBounded(dir_ / "snapshot.json", limits_.snapshot); s.ok()) {
    auto parsed = ParseSnapshot(*s);
    if (parsed.ok() &&
        VerifyRoleSignatures(parsed->envelope, "snapshot", root_.roles.at("snapshot"), root_.keys)
            .ok()) {
      snapshot_ = *std::move(parsed);
    }
  }
  return absl::OkStatus();
}

absl::Status Client::UpdateRoot() {
  for (uint32_t i = 0; i < limits_.max_root_rotations; ++i) {
    const uint64_t next = root_.envelope.version + 1;
    auto bytes = fetcher_->Fetch(Url(url_, absl::StrCat(next, ".root.json")), limits_.root);
    if (absl::IsNotFound(bytes.status())) break;
    if (!bytes.ok()) return bytes.status();
    ASSIGN_OR_RETURN(Root candidate, ParseRoot(*bytes));
    // Signed by a threshold of the trusted root's root keys, and of its own.
    RETURN_IF_ERROR(
        VerifyRoleSignatures(candidate.envelope, "root", root_.roles.at("root"), root_.keys));
    RETURN_IF_ERROR(VerifyRoleSignatures(candidate.envelope, "root", candidate.roles.at("root"),
                                         candidate.keys));
    if (candidate.envelope.version != next) {
      return Check("root.version",
                   absl::StrCat(next, ".root.json has version ", candidate.envelope.version));
    }
    // Keys of timestamp or snapshot rotated: the trusted copies may be from a compromised key
    // and carry inflated versions (fast-forward attack recovery): drop them.
    auto keyset = [](const Root& r, const char* role) {
      std::vector<std::string> ids = r.roles.at(role).keyids;
      std::sort(ids.begin(), ids.end());
      return ids;
    };
    const bool rotated = keyset(candidate, "timestamp") != keyset(root_, "timestamp") ||
                         keyset(candidate, "snapshot") != keyset(root_, "snapshot");
    Store("root.json", *bytes);
    root_ = std::move(candidate);
    if (rotated) {
      for (const char* name : {"timestamp.json", "snapshot.json"}) {
        pending_.erase(name);
        pending_removals_.insert(name);
      }
      timestamp_.reset();
      snapshot_.reset();
    }
  }
  return Expired(root_.envelope);
}

absl::Status Client::UpdateTimestamp() {
  ASSIGN_OR_RETURN(auto bytes, fetcher_->Fetch(Url(url_, "timestamp.json"), limits_.timestamp));
  ASSIGN_OR_RETURN(Timestamp t, ParseTimestamp(bytes));
  RETURN_IF_ERROR(
      VerifyRoleSignatures(t.envelope, "timestamp", root_.roles.at("timestamp"), root_.keys));
  if (timestamp_) {
    if (t.envelope.version < timestamp_->envelope.version) {
      return Check("timestamp.rollback", absl::StrCat("version ", t.envelope.version,
                                                      " is older than the trusted version ",
                                                      timestamp_->envelope.version));
    }
    if (t.snapshot.version < timestamp_->snapshot.version) {
      return Check("timestamp.snapshot-rollback",
                   absl::StrCat("it names snapshot version ", t.snapshot.version,
                                ", older than the trusted ", timestamp_->snapshot.version));
    }
    if (t.envelope.version == timestamp_->envelope.version) {
      return Expired(timestamp_->envelope);  // nothing new: keep the trusted one
    }
  }
  RETURN_IF_ERROR(RaiseFloor(t.envelope));
  RETURN_IF_ERROR(Expired(t.envelope));
  Store("timestamp.json", bytes);
  timestamp_ = std::move(t);
  return absl::OkStatus();
}

// A role file as the role above lists it: its (versioned) name, at most its listed length (or the
// role's limit), its listed hashes; then parsed and signed by the role's threshold, with the
// version the role above names (mix-and-match).
template <typename Parsed>
absl::StatusOr<std::pair<Parsed, std::vector<uint8_t>>> Client::FetchListed(
    const std::string& role, const MetaFile& want, size_t limit,
    absl::StatusOr<Parsed> (*parse)(std::span<const uint8_t>), const char* named_by,
    const Role& signers, const std::map<std::string, Key>& keys) {
  const std::string name = root_.consistent_snapshot
                               ? absl::StrCat(want.version, ".", role, ".json")
                               : absl::StrCat(role, ".json");
  ASSIGN_OR_RETURN(auto bytes, fetcher_->Fetch(Url(url_, name), want.length.value_or(limit)));
  RETURN_IF_ERROR(CheckHashes(bytes, want.hashes, want.length, role));
  ASSIGN_OR_RETURN(Parsed parsed, parse(bytes));
  RETURN_IF_ERROR(VerifyRoleSignatures(parsed.envelope, role, signers, keys));
  if (parsed.envelope.version != want.version) {
    return Check(absl::StrCat(role, ".version"),
                 absl::StrCat("version ", parsed.envelope.version, ", the ", named_by, " names ",
                              want.version, " (mix-and-match)"));
  }
  RETURN_IF_ERROR(Expired(parsed.envelope));
  return std::make_pair(std::move(parsed), std::move(bytes));
}

absl::Status Client::UpdateSnapshot() {
  ASSIGN_OR_RETURN(auto got, FetchListed<Snapshot>("snapshot", timestamp_->snapshot,
                                                   limits_.snapshot, &ParseSnapshot, "timestamp",
                                                   root_.roles.at("snapshot"), root_.keys));
  Snapshot& s = got.first;
  if (snapshot_) {
    for (const auto& [file, old] : snapshot_->meta) {
      auto now = s.meta.find(file);
      if (now == s.meta.end()) {
        return Check("snapshot.rollback", absl::StrCat(file, " is no longer listed"));
      }
      if (now->second.version < old.version) {
        return Check("snapshot.rollback", absl::StrCat(file, " version ", now->second.version,
                                                       " is older than the trusted ", old.version));
      }
    }
  }
  Store("snapshot.json", got.second);
  snapshot_ = std::move(s);
  return absl::OkStatus();
}

absl::Status Client::UpdateTargets() {
  ASSIGN_OR_RETURN(auto got, FetchListed<Targets>("targets", snapshot_->meta.at("targets.json"),
                                                  limits_.targets, &ParseTargets, "snapshot",
                                                  root_.roles.at("targets"), root_.keys));
  Store("targets.json", got.second);
  targets_ = std::move(got.first);
  have_targets_ = true;
  return absl::OkStatus();
}

absl::Status Client::Refresh() {
  pending_.clear();
  pending_removals_.clear();
  RETURN_IF_ERROR(LoadTrusted());
  RETURN_IF_ERROR(UpdateRoot());
  RETURN_IF_ERROR(UpdateTimestamp());
  RETURN_IF_ERROR(UpdateSnapshot());
  RETURN_IF_ERROR(UpdateTargets());
  return Commit();
}

absl::StatusOr<Targets> Client::LoadDelegated(const Delegation& d,
                                              const std::map<std::string, Key>& keys) {
  const std::string file = d.name + ".json";
  auto want = snapshot_->meta.find(file);
  if (want == snapshot_->meta.end()) {
    return Check(absl::StrCat(d.name, ".missing"),
                 absl::StrCat("the snapshot does not list ", file, ", a delegated role"));
  }
  // The trusted copy, if it still holds against the delegator as it is now.
  if (auto cached = ReadFileBounded(dir_ / file, limits_.targets); cached.ok()) {
    if (CheckHashes(*cached, want->second.hashes, want->second.length, d.name).ok()) {
      auto parsed = ParseTargets(*cached);
      if (parsed.ok() && parsed->envelope.version == want->second.version &&
          VerifyRoleSignatures(parsed->envelope, d.name, d.role, keys).ok() &&
          Expired(parsed->envelope).ok()) {
        return *std::move(parsed);
      }
    }
  }
  ASSIGN_OR_RETURN(auto got, FetchListed<Targets>(d.name, want->second, limits_.targets,
                                                  &ParseTargets, "snapshot", d.role, keys));
  RETURN_IF_ERROR(WriteFileAtomically(dir_ / file, got.second));
  return std::move(got.first);
}

absl::StatusOr<TargetFile> Client::Lookup(const std::string& target_name) {
  if (auto it = targets_.targets.find(target_name); it != targets_.targets.end()) {
    return it->second;
  }
  struct Frame {
    const Targets* role;
    size_t next = 0;
    bool terminating = false;
  };
  std::list<Targets> loaded;  // stable addresses for the frames
  std::set<std::string> visited;
  std::vector<Frame> stack = {{&targets_}};
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.next >= f.role->delegations.size()) {
      if (f.terminating) break;  // a terminating delegation matched: no backtracking
      stack.pop_back();
      continue;
    }
    const Delegation& d = f.role->delegations[f.next++];
    if (!d.Matches(target_name) || !visited.insert(d.name).second) continue;
    if (visited.size() > limits_.max_delegations) {
      return Check("delegation.limit",
                   absl::StrCat("more than ", limits_.max_delegations,
                                " delegated roles visited for '", target_name, "'"));
    }
    ASSIGN_OR_RETURN(Targets role, LoadDelegated(d, f.role->delegation_keys));
    loaded.push_back(std::move(role));
    if (auto it = loaded.back().targets.find(target_name); it != loaded.back().targets.end()) {
      return it->second;
    }
    stack.push_back({&loaded.back(), 0, d.terminating});
  }
  return absl::NotFoundError(absl::StrCat(
      "tuf.target: '", target_name, "' is not in the trusted targets metadata or its delegations"));
}

absl::StatusOr<std::pair<TargetFile, std::string>> Client::Locate(
    const std::string& target_name, const std::string& target_base_url,
    const std::optional<std::string>& hardware_id) {
  if (!have_targets_) RETURN_IF_ERROR(Refresh());
  ASSIGN_OR_RETURN(const TargetFile tf, Lookup(target_name));
  if (hardware_id) {
    const auto hw = tf.custom.is_object() ? tf.custom.find("hardware") : tf.custom.end();
    if (hw == tf.custom.end() || !hw->is_string() || hw->get<std::string>() != *hardware_id) {
      return Check("target.hardware",
                   absl::StrCat("'", target_name, "' is for hardware '",
                                hw == tf.custom.end() || !hw->is_string() ? "(none)"
                                                                          : hw->get<std::string>(),
                                "', this appliance is '", *hardware_id, "' (wrong software)"));
    }
  }
  const fs::path rel(target_name);
  if (rel.is_absolute() || target_name.empty() ||
      std::any_of(rel.begin(), rel.end(), [](const fs::path& p) { return p == ".."; })) {
    return Check("target.name", absl::StrCat("'", target_name, "' is not a relative path"));
  }
  std::string remote = target_name;
  if (root_.consistent_snapshot) {
    auto h = tf.hashes.count("sha256") ? tf.hashes.find("sha256") : tf.hashes.begin();
    const auto slash = target_name.rfind('/');
    remote = absl::StrCat(slash == std::string::npos ? "" : target_name.substr(0, slash + 1),
                          HexEncode(h->second), ".",
                          slash == std::string::npos ? target_name : target_name.substr(slash + 1));
  }
  return std::make_pair(tf, Url(target_base_url, remote));
}

namespace {
// A failed check of a target's bytes names the target.
absl::Status NamingTarget(const absl::Status& st, const std::string& target_name) {
  if (absl::IsFailedPrecondition(st) || IsVerificationFailure(st)) {
    return absl::Status(st.code(), absl::StrCat(st.message(), " (target '", target_name, "')"));
  }
  return st;
}
}  // namespace

absl::StatusOr<std::vector<uint8_t>> Client::ReadTarget(const std::string& target_name,
                                                        const std::string& target_base_url,
                                                        size_t max_bytes) {
  ASSIGN_OR_RETURN(auto located, Locate(target_name, target_base_url, std::nullopt));
  const TargetFile& tf = located.first;
  if (tf.length > max_bytes) {
    return Check("download.size", absl::StrCat("'", target_name, "' is listed with ", tf.length,
                                               " bytes, more than the limit of ", max_bytes));
  }
  auto bytes = fetcher_->Fetch(located.second, tf.length);
  if (!bytes.ok()) return NamingTarget(bytes.status(), target_name);
  RETURN_IF_ERROR(NamingTarget(CheckHashes(*bytes, tf.hashes, tf.length, "target"), target_name));
  return bytes;
}

absl::StatusOr<TargetFile> Client::Download(const std::string& target_name,
                                            const std::string& target_base_url,
                                            const fs::path& target_dir,
                                            const std::optional<std::string>& hardware_id) {
  ASSIGN_OR_RETURN(auto located, Locate(target_name, target_base_url, hardware_id));
  const TargetFile& tf = located.first;
  const fs::path rel(target_name);
  std::error_code ec;
  const fs::path final_path = target_dir / rel;
  fs::create_directories(final_path.parent_path(), ec);
  const fs::path part = final_path.string() + ".part";
  const int fd = open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(part.string(), ": ", strerror(errno)));
  }
  StreamingHashes hashes(tf.hashes);
  absl::Status st = fetcher_->FetchTo(
      located.second, tf.length, [&](std::span<const uint8_t> piece) -> absl::Status {
        hashes.Update(piece);
        for (size_t done = 0; done < piece.size();) {
          const ssize_t n = write(fd, piece.data() + done, piece.size() - done);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0)
            return absl::UnavailableError(absl::StrCat(part.string(), ": ", strerror(errno)));
          done += static_cast<size_t>(n);
        }
        return absl::OkStatus();
      });
  if (st.ok()) st = hashes.Finish(tf.length, "target");
  if (st.ok() && fsync(fd) != 0) {
    st = absl::UnavailableError(absl::StrCat(part.string(), ": fsync: ", strerror(errno)));
  }
  close(fd);
  if (st.ok() && rename(part.c_str(), final_path.c_str()) != 0) {
    st = absl::UnavailableError(absl::StrCat(final_path.string(), ": rename: ", strerror(errno)));
  }
  if (!st.ok()) {
    fs::remove(part, ec);
    return NamingTarget(st, target_name);
  }
  return tf;
}

}  // namespace attest::tuf
