#include "channel.h"

#include <stdlib.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"
#include "attest/tuf/client.h"
#include "attest/tuf/client_revocations.h"
#include "attest/tuf/metadata.h"
#include "keys.h"
#include "log.h"

namespace appliance::release {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
namespace tuf = attest::tuf;

constexpr size_t kMaxMetadata = 16 * 1024 * 1024;
constexpr char kSpecVersion[] = "1.0.31";

absl::Status Check(absl::string_view what) { return absl::FailedPreconditionError(what); }

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

absl::StatusOr<json> ReadJson(const fs::path& p) {
  ASSIGN_OR_RETURN(auto bytes, attest::ReadFileBounded(p, kMaxMetadata));
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(p.string(), ": not a JSON object"));
  }
  return j;
}

absl::StatusOr<std::optional<std::string>> ReadOptional(const fs::path& p) {
  auto bytes = attest::ReadFileBounded(p, kMaxMetadata);
  if (absl::IsNotFound(bytes.status())) return std::optional<std::string>();
  if (!bytes.ok()) return bytes.status();
  return std::optional<std::string>(std::string(bytes->begin(), bytes->end()));
}

json Hashes(const std::vector<uint8_t>& sha256, const std::vector<uint8_t>& sha512) {
  return {{"sha256", attest::HexEncode(sha256)}, {"sha512", attest::HexEncode(sha512)}};
}

json MetaOf(const std::string& bytes, uint64_t version) {
  auto d256 = attest::tpm::Hash(attest::tpm::kAlgSha256, Bytes(bytes));
  auto d512 = attest::tpm::Hash(attest::tpm::kAlgSha512, Bytes(bytes));
  return {{"version", version}, {"length", bytes.size()}, {"hashes", Hashes(*d256, *d512)}};
}

absl::Status ValidRole(const std::string& role) {
  for (const char* r : kRoles)
    if (role == r) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role '", role, "' (root, targets, snapshot, timestamp)"));
}

// The work directory's channel.json and the keys this operator holds.
struct Channel {
  fs::path dir;
  json config;
  std::map<std::string, SigningKey> keys;  // keyid → key (every file that exists and decrypts)

  std::string name() const { return config["name"]; }
  fs::path Path(const std::string& p) const {
    return fs::path(p).is_absolute() ? fs::path(p) : dir / p;
  }
  uint32_t Days(const std::string& role) const { return config["expires_days"][role]; }
};

absl::StatusOr<Channel> OpenChannel(const fs::path& dir) {
  Channel c;
  c.dir = dir;
  ASSIGN_OR_RETURN(c.config, ReadJson(dir / "channel.json"));
  for (const char* field : {"name", "key_type", "expires_days", "keys", "log_key"}) {
    if (!c.config.contains(field)) {
      return absl::InvalidArgumentError(
          absl::StrCat((dir / "channel.json").string(), ": '", field, "' missing"));
    }
  }
  return c;
}

absl::Status LoadKeys(Channel& c, const std::string& passphrase,
                      const std::vector<fs::path>& extra) {
  std::vector<fs::path> files;
  for (const auto& [role, list] : c.config["keys"].items())
    for (const auto& f : list) files.push_back(c.Path(f));
  files.insert(files.end(), extra.begin(), extra.end());
  for (const auto& f : files) {
    if (!fs::exists(f)) continue;  // an offline key held elsewhere
    ASSIGN_OR_RETURN(auto key, SigningKey::Load(f, passphrase));
    c.keys.emplace(key.id(), std::move(key));
  }
  return absl::OkStatus();
}

std::string Envelope(const json& signed_part) {
  return json{{"signed", signed_part}, {"signatures", json::array()}}.dump(1) + "\n";
}

// Adds the signatures of the keys held whose ids are in `ids` (and not yet there).
absl::StatusOr<std::string> AddSignatures(const std::string& envelope, const Channel& c,
                                          const std::set<std::string>& ids) {
  json e = json::parse(envelope);
  ASSIGN_OR_RETURN(auto canonical, tuf::CanonicalJson(e["signed"]));
  std::set<std::string> have;
  for (const auto& s : e["signatures"]) have.insert(s["keyid"].get<std::string>());
  for (const auto& [id, key] : c.keys) {
    if (!ids.count(id) || have.count(id)) continue;
    e["signatures"].push_back({{"keyid", id}, {"sig", key.SignHex(canonical)}});
  }
  return e.dump(1) + "\n";
}

std::set<std::string> RoleKeyIds(const tuf::Root& root, const std::string& role) {
  const auto& ids = root.roles.at(role).keyids;
  return {ids.begin(), ids.end()};
}

bool RoleChanged(const tuf::Root& a, const tuf::Root& b, const std::string& role) {
  if (RoleKeyIds(a, role) != RoleKeyIds(b, role)) return true;
  return a.roles.at(role).threshold != b.roles.at(role).threshold;
}

// Valid signatures of a role's keys over a staged or published envelope.
size_t ValidSignatures(const tuf::Envelope& e, const tuf::Root& root, const std::string& role) {
  size_t n = 0;
  for (const auto& id : RoleKeyIds(root, role)) {
    tuf::Role one{{id}, 1};
    if (tuf::VerifyRoleSignatures(e, role, one, root.keys).ok()) ++n;
  }
  return n;
}

struct State {
  std::map<std::string, std::string> published, staged;  // role → envelope bytes
  std::optional<std::string> Current(const std::string& role) const {
    if (auto s = staged.find(role); s != staged.end()) return s->second;
    if (auto p = published.find(role); p != published.end()) return p->second;
    return std::nullopt;
  }
};

absl::StatusOr<State> LoadState(const fs::path& dir) {
  State s;
  for (const char* role : kRoles) {
    ASSIGN_OR_RETURN(auto p, ReadOptional(dir / "published" / absl::StrCat(role, ".json")));
    if (p) s.published[role] = *p;
    ASSIGN_OR_RETURN(auto st, ReadOptional(dir / "staged" / absl::StrCat(role, ".json")));
    if (st) s.staged[role] = *st;
  }
  return s;
}

absl::StatusOr<uint64_t> VersionOf(const std::string& envelope, const std::string& role) {
  ASSIGN_OR_RETURN(auto e, tuf::ParseEnvelope(Bytes(envelope), role));
  return e.version;
}

// The part of a targets "signed" object that the draft decides.
json TargetsContent(const json& targets_signed) {
  return {{"targets", targets_signed.value("targets", json::object())},
          {"custom", targets_signed.value("custom", json::object())}};
}

absl::Status Stage(const Channel& c, const std::string& role, const std::string& bytes) {
  return attest::WriteFileAtomically(c.dir / "staged" / (role + ".json"), bytes);
}

void Unstage(const Channel& c, const std::string& role) {
  std::error_code ec;
  fs::remove(c.dir / "staged" / (role + ".json"), ec);
}

absl::Status CheckTargetName(const std::string& name) {
  const fs::path rel(name);
  if (name.empty() || name.size() > 255 || rel.is_absolute() ||
      std::any_of(rel.begin(), rel.end(),
                  [](const fs::path& p) { return p == ".." || p == "."; }) ||
      !std::all_of(name.begin(), name.end(), [](char ch) {
        return absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' ||
               ch == '-' || ch == '/';
      })) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target name '", name, "': a relative path of letters, digits, '.', '_', '-', '/'"));
  }
  return absl::OkStatus();
}

absl::Status CopyFileAtomically(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  const fs::path tmp = to.parent_path() / (".tmp." + to.filename().string());
  fs::remove(tmp, ec);
  if (!fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec)) {
    return absl::InternalError(
        absl::StrCat("copy ", from.string(), " → ", tmp.string(), ": ", ec.message()));
  }
  fs::rename(tmp, to, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename to ", to.string(), ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> LogEntryForTargets(const std::string& channel,
                                               std::span<const uint8_t> targets_metadata) {
  ASSIGN_OR_RETURN(auto t, tuf::ParseTargets(targets_metadata));
  auto digest = attest::tpm::Hash(attest::tpm::kAlgSha256, targets_metadata);
  json files = json::object();
  for (const auto& [name, tf] : t.targets) {
    json f = {{"length", tf.length}};
    if (auto h = tf.hashes.find("sha256"); h != tf.hashes.end()) {
      f["sha256"] = attest::HexEncode(h->second);
    }
    if (!tf.custom.is_null()) f["custom"] = tf.custom;
    files[name] = f;
  }
  json entry = {{"_type", "release-log-entry"},
                {"channel", channel},
                {"targets_version", t.envelope.version},
                {"targets_sha256", attest::HexEncode(*digest)},
                {"targets", files}};
  if (t.custom.is_object()) entry["custom"] = t.custom;
  return tuf::CanonicalJson(entry);
}

absl::Status Init(const InitOptions& o, const std::string& passphrase) {
  if (o.name.empty()) return absl::InvalidArgumentError("--name: the channel needs a name");
  if (passphrase.size() < kMinPassphrase) {
    return absl::InvalidArgumentError(
        absl::StrCat("the passphrase needs ", kMinPassphrase, " characters or more"));
  }
  if (fs::exists(o.workdir / "channel.json")) {
    return absl::AlreadyExistsError(o.workdir.string() + ": a channel exists");
  }
  std::map<std::string, uint32_t> counts = {
      {"root", 3}, {"targets", 1}, {"snapshot", 1}, {"timestamp", 1}};
  std::map<std::string, uint32_t> thresholds = {
      {"root", 2}, {"targets", 1}, {"snapshot", 1}, {"timestamp", 1}};
  json days = {{"root", 365}, {"targets", 90}, {"snapshot", 7}, {"timestamp", 1}};
  for (const auto& [role, n] : o.key_counts) {
    RETURN_IF_ERROR(ValidRole(role));
    if (n == 0 || n > 16) return absl::InvalidArgumentError("--keys: 1 to 16 keys per role");
    counts[role] = n;
  }
  for (const auto& [role, n] : o.thresholds) {
    RETURN_IF_ERROR(ValidRole(role));
    thresholds[role] = n;
  }
  for (const auto& [role, d] : o.expires_days) {
    RETURN_IF_ERROR(ValidRole(role));
    if (d == 0 || d > 3660) return absl::InvalidArgumentError("--expires: 1 to 3660 days");
    days[role] = d;
  }
  json root_keys = json::object(), roles = json::object(), files = json::object();
  std::map<std::string, std::vector<SigningKey>> role_keys;
  for (const auto& [role, path] : o.key_files) {
    RETURN_IF_ERROR(ValidRole(role));
    ASSIGN_OR_RETURN(auto key, SigningKey::Load(path, passphrase));
    role_keys[role].push_back(key);
    files[role].push_back(fs::absolute(path).string());
  }
  for (const char* role : kRoles) {
    if (role_keys.count(role)) continue;
    for (uint32_t i = 1; i <= counts[role]; ++i) {
      ASSIGN_OR_RETURN(auto key, SigningKey::Generate(o.key_type));
      const std::string rel = absl::StrCat("keys/", role, "-", i, ".pem");
      RETURN_IF_ERROR(key.Save(o.workdir / rel, passphrase));
      role_keys[role].push_back(key);
      files[role].push_back(rel);
    }
  }
  for (const char* role : kRoles) {
    const auto& keys = role_keys[role];
    if (thresholds[role] == 0 || thresholds[role] > keys.size()) {
      return absl::InvalidArgumentError(absl::StrCat("--threshold ", role, "=", thresholds[role],
                                                     ": the role has ", keys.size(), " key(s)"));
    }
    json ids = json::array();
    for (const auto& k : keys) {
      root_keys[k.id()] = k.public_json();
      if (std::find(ids.begin(), ids.end(), k.id()) == ids.end()) ids.push_back(k.id());
    }
    roles[role] = {{"keyids", ids}, {"threshold", thresholds[role]}};
  }
  RETURN_IF_ERROR(LogInit(o.workdir / "log", o.name, o.workdir / "keys/log.pem", passphrase));
  json config = {{"name", o.name},
                 {"key_type", o.key_type},
                 {"expires_days", days},
                 {"keys", files},
                 {"log_key", "keys/log.pem"}};
  RETURN_IF_ERROR(attest::WriteFileAtomically(o.workdir / "channel.json", config.dump(2) + "\n"));
  json draft = {{"targets", json::object()}, {"custom", {{"min_release_version", 0}}}};
  RETURN_IF_ERROR(attest::WriteFileAtomically(o.workdir / "draft.json", draft.dump(2) + "\n"));
  json root = {{"_type", "root"},
               {"spec_version", kSpecVersion},
               {"version", 1},
               {"expires", tuf::FormatUtc(absl::Now() + absl::Hours(24 * days["root"].get<int>()))},
               {"consistent_snapshot", true},
               {"keys", root_keys},
               {"roles", roles}};
  for (const char* sub : {"staged", "published", "targets", "log/targets"}) {
    fs::create_directories(o.workdir / sub);
  }
  return attest::WriteFileAtomically(o.workdir / "staged/root.json", Envelope(root));
}

absl::Status AddTarget(const fs::path& workdir, const fs::path& file, const TargetOptions& o) {
  ASSIGN_OR_RETURN(Channel c, OpenChannel(workdir));
  const std::string name = o.name.empty() ? file.filename().string() : o.name;
  RETURN_IF_ERROR(CheckTargetName(name));
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    return absl::NotFoundError(absl::StrCat(file.string(), ": not a regular file"));
  }
  ASSIGN_OR_RETURN(json draft, ReadJson(workdir / "draft.json"));
  RETURN_IF_ERROR(CopyFileAtomically(file, workdir / "targets" / name));
  ASSIGN_OR_RETURN(auto d,
                   attest::DigestsOfFile(workdir / "targets" / name,
                                         {attest::tpm::kAlgSha256, attest::tpm::kAlgSha512}));
  json entry = {{"length", fs::file_size(workdir / "targets" / name)},
                {"hashes", Hashes(d[0], d[1])}};
  json custom = json::object();
  if (o.hardware) custom["hardware"] = *o.hardware;
  if (o.release_version) custom["release_version"] = *o.release_version;
  if (o.kind) custom["kind"] = *o.kind;
  if (o.roothash) {
    if (o.roothash->size() != 64 || !attest::HexDecode(*o.roothash).ok()) {
      return absl::InvalidArgumentError("--roothash: 64 hex digits expected");
    }
    custom["roothash"] = absl::AsciiStrToLower(*o.roothash);
  }
  if (!custom.empty()) entry["custom"] = custom;
  draft["targets"][name] = entry;
  return attest::WriteFileAtomically(workdir / "draft.json", draft.dump(2) + "\n");
}

absl::StatusOr<size_t> RevokeClients(const fs::path& workdir,
                                     const std::vector<std::string>& spki_sha256,
                                     const std::string& reason) {
  ASSIGN_OR_RETURN(Channel c, OpenChannel(workdir));
  if (spki_sha256.empty()) return absl::InvalidArgumentError("no client identity to revoke");
  if (reason.size() > tuf::kMaxRevocationReason) {
    return absl::InvalidArgumentError(
        absl::StrCat("--reason: at most ", tuf::kMaxRevocationReason, " bytes"));
  }
  const fs::path current = workdir / "targets" / tuf::kClientRevocationsTarget;
  tuf::ClientRevocations list;
  std::error_code ec;
  if (fs::exists(current, ec)) {
    ASSIGN_OR_RETURN(auto bytes, attest::ReadFileBounded(current, tuf::kMaxClientRevocationsFile));
    ASSIGN_OR_RETURN(list, tuf::ParseClientRevocations(bytes));
  }
  for (const auto& spki : spki_sha256) {
    if (spki.size() != 64 || !attest::HexDecode(spki).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("client identity '", spki, "': 64 hex digits (SHA-256 of the SPKI)"));
    }
    list.revoked[absl::AsciiStrToLower(spki)] = reason;
  }
  if (list.revoked.size() > tuf::kMaxClientRevocations) {
    return absl::InvalidArgumentError(
        absl::StrCat("more than ", tuf::kMaxClientRevocations, " revoked clients"));
  }
  const fs::path staged = workdir / "client-revocations.json.new";
  RETURN_IF_ERROR(attest::WriteFileAtomically(staged, tuf::SerializeClientRevocations(list)));
  TargetOptions o;
  o.name = tuf::kClientRevocationsTarget;
  o.kind = tuf::kClientRevocationsKind;
  absl::Status added = AddTarget(workdir, staged, o);
  fs::remove(staged, ec);
  RETURN_IF_ERROR(added);
  return list.revoked.size();
}

absl::StatusOr<std::vector<std::string>> Sign(const fs::path& workdir,
                                              const std::string& passphrase, const SignOptions& o) {
  ASSIGN_OR_RETURN(Channel c, OpenChannel(workdir));
  RETURN_IF_ERROR(LoadKeys(c, passphrase, o.extra_keys));
  for (const auto& r : o.renew) RETURN_IF_ERROR(ValidRole(r));
  auto renew = [&](const std::string& role) {
    return std::find(o.renew.begin(), o.renew.end(), role) != o.renew.end();
  };
  ASSIGN_OR_RETURN(State s, LoadState(workdir));
  std::vector<std::string> summary;

  // Root: the staged root (init or rotate-root) gets the signatures of the new and old root keys.
  std::optional<tuf::Root> published_root;
  if (s.published.count("root")) {
    ASSIGN_OR_RETURN(published_root, tuf::ParseRoot(Bytes(s.published["root"])));
  }
  if (renew("root") && !s.staged.count("root")) {
    if (!published_root) return Check("nothing to renew: the root was never published");
    json signed_part = published_root->envelope.signed_json;
    signed_part["version"] = published_root->envelope.version + 1;
    signed_part["expires"] = tuf::FormatUtc(o.now + absl::Hours(24 * c.Days("root")));
    s.staged["root"] = Envelope(signed_part);
  }
  if (!s.staged.count("root") && !published_root) {
    return Check("no root: the work directory has neither a staged nor a published root");
  }
  if (s.staged.count("root")) {
    ASSIGN_OR_RETURN(auto staged_root, tuf::ParseRoot(Bytes(s.staged["root"])));
    auto ids = RoleKeyIds(staged_root, "root");
    if (published_root) {
      auto old = RoleKeyIds(*published_root, "root");
      ids.insert(old.begin(), old.end());
    }
    ASSIGN_OR_RETURN(s.staged["root"], AddSignatures(s.staged["root"], c, ids));
    RETURN_IF_ERROR(Stage(c, "root", s.staged["root"]));
  }
  ASSIGN_OR_RETURN(tuf::Root root, tuf::ParseRoot(Bytes(*s.Current("root"))));
  auto keys_changed = [&](const std::string& role) {
    return published_root && RoleChanged(*published_root, root, role);
  };

  // Targets: from the draft, when it differs from what was published (or on renewal / new keys).
  ASSIGN_OR_RETURN(json draft, ReadJson(workdir / "draft.json"));
  std::optional<tuf::Targets> published_targets;
  if (s.published.count("targets")) {
    ASSIGN_OR_RETURN(published_targets, tuf::ParseTargets(Bytes(s.published["targets"])));
  }
  const uint64_t published_min =
      published_targets && published_targets->custom.is_object()
          ? published_targets->custom.value("min_release_version", uint64_t{0})
          : 0;
  if (o.min_release_version) {
    if (*o.min_release_version < published_min) {
      return Check(absl::StrCat("policy: the minimum release version only goes up (published ",
                                published_min, ", asked ", *o.min_release_version, ")"));
    }
    draft["custom"]["min_release_version"] = *o.min_release_version;
  }
  for (uint64_t v : o.revoke_releases) {
    json& list = draft["custom"]["revoked_releases"];
    if (!list.is_array()) list = json::array();
    if (std::find(list.begin(), list.end(), v) == list.end()) list.push_back(v);
  }
  if (o.min_release_version || !o.revoke_releases.empty()) {
    RETURN_IF_ERROR(attest::WriteFileAtomically(workdir / "draft.json", draft.dump(2) + "\n"));
  }
  const json content = TargetsContent(draft);
  if (s.staged.count("targets")) {
    ASSIGN_OR_RETURN(auto staged, tuf::ParseEnvelope(Bytes(s.staged["targets"]), "targets"));
    if (TargetsContent(staged.signed_json) != content) {  // the draft changed since
      s.staged.erase("targets");
      Unstage(c, "targets");
    }
  }
  const bool new_targets = !published_targets ||
                           TargetsContent(published_targets->envelope.signed_json) != content ||
                           renew("targets") || keys_changed("targets");
  if (new_targets && !s.staged.count("targets")) {
    json signed_part = {
        {"_type", "targets"},
        {"spec_version", kSpecVersion},
        {"version", published_targets ? published_targets->envelope.version + 1 : 1},
        {"expires", tuf::FormatUtc(o.now + absl::Hours(24 * c.Days("targets")))},
        {"targets", content["targets"]},
        {"custom", content["custom"]}};
    s.staged["targets"] = Envelope(signed_part);
  }
  if (s.staged.count("targets")) {
    ASSIGN_OR_RETURN(s.staged["targets"],
                     AddSignatures(s.staged["targets"], c, RoleKeyIds(root, "targets")));
    RETURN_IF_ERROR(Stage(c, "targets", s.staged["targets"]));
  }

  // Snapshot and timestamp: remade unless the staged one names exactly the current file below.
  struct Lower {
    const char* role;
    const char* below;
    const char* listed_as;
  };
  for (const Lower& l : {Lower{"snapshot", "targets", "targets.json"},
                         Lower{"timestamp", "snapshot", "snapshot.json"}}) {
    const std::string role = l.role;
    if (!s.Current(l.below)) return Check(absl::StrCat("no ", l.below, " to list"));
    const std::string below = *s.Current(l.below);
    ASSIGN_OR_RETURN(uint64_t below_version, VersionOf(below, l.below));
    const json want = MetaOf(below, below_version);
    if (s.staged.count(role)) {
      ASSIGN_OR_RETURN(auto staged, tuf::ParseEnvelope(Bytes(s.staged[role]), role));
      if (staged.signed_json["meta"][l.listed_as] != want) {
        s.staged.erase(role);
        Unstage(c, role);
      }
    }
    const bool needed = !s.published.count(role) || s.staged.count(l.below) ||
                        (role == "timestamp" && s.staged.count("root")) || renew(role) ||
                        keys_changed(role);
    if (needed && !s.staged.count(role)) {
      uint64_t version = 1;
      if (s.published.count(role)) {
        ASSIGN_OR_RETURN(version, VersionOf(s.published[role], role));
        ++version;
      }
      json signed_part = {{"_type", role},
                          {"spec_version", kSpecVersion},
                          {"version", version},
                          {"expires", tuf::FormatUtc(o.now + absl::Hours(24 * c.Days(role)))},
                          {"meta", {{l.listed_as, want}}}};
      // The signing time: clients keep the newest one they trusted as a floor for their clock.
      if (role == "timestamp") signed_part["issued"] = tuf::FormatUtc(o.now);
      s.staged[role] = Envelope(signed_part);
    }
    if (s.staged.count(role)) {
      ASSIGN_OR_RETURN(s.staged[role], AddSignatures(s.staged[role], c, RoleKeyIds(root, role)));
      RETURN_IF_ERROR(Stage(c, role, s.staged[role]));
    }
  }
  for (const char* role : kRoles) {
    if (!s.staged.count(role)) continue;
    ASSIGN_OR_RETURN(auto e, tuf::ParseEnvelope(Bytes(s.staged[role]), role));
    summary.push_back(absl::StrCat("staged ", role, " version ", e.version, ": ",
                                   ValidSignatures(e, root, role), " signature(s), ",
                                   root.roles.at(role).threshold, " needed"));
  }
  if (summary.empty()) summary.push_back("nothing changed: nothing staged");
  return summary;
}

absl::StatusOr<std::vector<std::string>> Publish(const fs::path& workdir, const fs::path& repo,
                                                 const std::string& passphrase, absl::Time now) {
  ASSIGN_OR_RETURN(Channel c, OpenChannel(workdir));
  ASSIGN_OR_RETURN(State s, LoadState(workdir));
  if (s.staged.empty()) return Check("nothing staged: run appliance-release sign first");
  for (const char* role : kRoles) {
    if (!s.Current(role)) return Check(absl::StrCat("no ", role, " metadata: run sign first"));
  }
  // The repository as it would be, checked by our own client from the published root.
  char tmpl[] = "/tmp/appliance-publish-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  const fs::path tmp(tmpl);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{tmp};
  fs::create_directories(tmp / "repo");
  fs::create_directories(tmp / "client");
  std::map<std::string, std::string> names;  // role → versioned name in the repository
  for (const char* role : kRoles) {
    const std::string bytes = *s.Current(role);
    ASSIGN_OR_RETURN(uint64_t v, VersionOf(bytes, role));
    names[role] =
        std::string(role) == "timestamp" ? "timestamp.json" : absl::StrCat(v, ".", role, ".json");
    RETURN_IF_ERROR(attest::WriteFileAtomically(tmp / "repo" / names[role], bytes));
  }
  const std::string trusted = s.published.count("root") ? s.published["root"] : s.staged["root"];
  RETURN_IF_ERROR(tuf::Client::Init(tmp / "client", Bytes(trusted)));
  for (const char* role : {"timestamp", "snapshot"}) {  // rollback checks against the last publish
    if (s.published.count(role)) {
      RETURN_IF_ERROR(attest::WriteFileAtomically(tmp / "client" / absl::StrCat(role, ".json"),
                                                  s.published[role]));
    }
  }
  auto fetcher = tuf::MakeFileFetcher();
  tuf::Client client(tmp / "client", (tmp / "repo").string(), fetcher.get(), now);
  if (auto st = client.Refresh(); !st.ok()) {
    return Check(absl::StrCat("a client would refuse this release: ", st.message()));
  }
  if (s.staged.count("root")) {
    ASSIGN_OR_RETURN(uint64_t v, VersionOf(s.staged["root"], "root"));
    const uint64_t was =
        s.published.count("root") ? *VersionOf(s.published["root"], "root") : uint64_t{0};
    if (v != was + 1) return Check(absl::StrCat("root version ", v, " does not follow ", was));
  }
  // Every target file as listed.
  for (const auto& [name, tf] : client.targets().targets) {
    ASSIGN_OR_RETURN(auto sha256, attest::Sha256OfFile(workdir / "targets" / name));
    std::error_code ec;
    const uint64_t size = fs::file_size(workdir / "targets" / name, ec);
    if (ec || size != tf.length || sha256 != tf.hashes.at("sha256")) {
      return Check(absl::StrCat("target ", name, ": the file in ", workdir.string(),
                                "/targets differs from its metadata"));
    }
  }
  std::vector<std::string> summary;
  // The transparency log: the new targets version is logged before anyone can fetch it.
  if (s.staged.count("targets")) {
    ASSIGN_OR_RETURN(uint64_t v, VersionOf(s.staged["targets"], "targets"));
    ASSIGN_OR_RETURN(auto entry, LogEntryForTargets(c.name(), Bytes(s.staged["targets"])));
    const fs::path index_file = workdir / "log/targets" / absl::StrCat(v, ".json");
    ASSIGN_OR_RETURN(auto logged, ReadOptional(index_file));
    if (logged) {
      json idx = json::parse(*logged, nullptr, false);
      ASSIGN_OR_RETURN(auto earlier,
                       ReadOptional(workdir / "log/entries" /
                                    absl::StrCat(idx.value("index", uint64_t{0}), ".json")));
      if (!earlier || *earlier != entry) {
        return Check(
            absl::StrCat("targets version ", v, " is already in the log with other contents"));
      }
    } else {
      // A publish that stopped after appending (before the index was written) left the entry
      // last in the log: reuse it rather than log the version twice.
      uint64_t size = 0;
      while (fs::exists(workdir / "log/entries" / absl::StrCat(size, ".json"))) ++size;
      std::optional<std::string> last;
      if (size > 0) {
        ASSIGN_OR_RETURN(last,
                         ReadOptional(workdir / "log/entries" / absl::StrCat(size - 1, ".json")));
      }
      uint64_t index = size - 1;
      if (!last || *last != entry) {
        ASSIGN_OR_RETURN(auto log_key, SigningKey::Load(c.Path(c.config["log_key"]), passphrase));
        ASSIGN_OR_RETURN(index, LogAppend(workdir / "log", log_key, Bytes(entry)));
      }
      RETURN_IF_ERROR(
          attest::WriteFileAtomically(index_file, json{{"index", index}}.dump() + "\n"));
      summary.push_back(absl::StrCat("log: targets version ", v, " is entry ", index));
    }
  }
  // The repository, in an order that keeps it consistent for readers: target files, the log,
  // root, targets, snapshot, timestamp last.
  for (const auto& [name, tf] : client.targets().targets) {
    const fs::path rel(name);
    const std::string hashed =
        absl::StrCat(rel.has_parent_path() ? rel.parent_path().string() + "/" : "",
                     attest::HexEncode(tf.hashes.at("sha256")), ".", rel.filename().string());
    std::error_code ec;
    if (!fs::exists(repo / "targets" / hashed, ec)) {
      RETURN_IF_ERROR(CopyFileAtomically(workdir / "targets" / name, repo / "targets" / hashed));
    }
    RETURN_IF_ERROR(CopyFileAtomically(workdir / "targets" / name, repo / "targets" / name));
  }
  for (const char* sub : {"entries", "proofs", "targets"}) {
    std::error_code ec;
    if (!fs::exists(workdir / "log" / sub, ec)) continue;
    for (const auto& f : fs::directory_iterator(workdir / "log" / sub)) {
      RETURN_IF_ERROR(CopyFileAtomically(f.path(), repo / "log" / sub / f.path().filename()));
    }
  }
  RETURN_IF_ERROR(CopyFileAtomically(workdir / "log/log.json", repo / "log/log.json"));
  if (fs::exists(workdir / "log/checkpoint.json")) {
    RETURN_IF_ERROR(
        CopyFileAtomically(workdir / "log/checkpoint.json", repo / "log/checkpoint.json"));
  }
  for (const char* role : kRoles) {
    if (!s.staged.count(role)) continue;
    const std::string& bytes = s.staged[role];
    RETURN_IF_ERROR(attest::WriteFileAtomically(repo / names[role], bytes));
    if (std::string(role) != "timestamp") {
      RETURN_IF_ERROR(attest::WriteFileAtomically(repo / absl::StrCat(role, ".json"), bytes));
    }
    RETURN_IF_ERROR(
        attest::WriteFileAtomically(workdir / "published" / absl::StrCat(role, ".json"), bytes));
    Unstage(c, role);
    ASSIGN_OR_RETURN(uint64_t v, VersionOf(bytes, role));
    summary.push_back(absl::StrCat("published ", role, " version ", v));
  }
  return summary;
}

absl::StatusOr<std::vector<std::string>> RotateRoot(const fs::path& workdir,
                                                    const std::string& passphrase,
                                                    const RotateOptions& o) {
  ASSIGN_OR_RETURN(Channel c, OpenChannel(workdir));
  ASSIGN_OR_RETURN(State s, LoadState(workdir));
  if (s.staged.count("root")) return Check("a root is staged already: sign and publish it first");
  if (!s.published.count("root")) return Check("the first root is not published yet");
  ASSIGN_OR_RETURN(tuf::Root old, tuf::ParseRoot(Bytes(s.published["root"])));
  json signed_part = old.envelope.signed_json;
  json& keys = signed_part["keys"];
  json& roles = signed_part["roles"];
  auto add = [&](const std::string& role, const SigningKey& key, const std::string& file) {
    keys[key.id()] = key.public_json();
    json& ids = roles[role]["keyids"];
    if (std::find(ids.begin(), ids.end(), key.id()) == ids.end()) ids.push_back(key.id());
    c.config["keys"][role].push_back(file);
  };
  for (const auto& role : o.generate) {
    RETURN_IF_ERROR(ValidRole(role));
    ASSIGN_OR_RETURN(auto key, SigningKey::Generate(c.config["key_type"]));
    std::string rel;
    for (int i = 1; i < 1000; ++i) {
      rel = absl::StrCat("keys/", role, "-", i, ".pem");
      if (!fs::exists(workdir / rel)) break;
    }
    RETURN_IF_ERROR(key.Save(workdir / rel, passphrase));
    add(role, key, rel);
  }
  for (const auto& [role, file] : o.add_key_files) {
    RETURN_IF_ERROR(ValidRole(role));
    ASSIGN_OR_RETURN(auto key, SigningKey::Load(file, passphrase));
    add(role, key, fs::absolute(file).string());
  }
  for (const auto& [role, prefix] : o.remove_keyids) {
    RETURN_IF_ERROR(ValidRole(role));
    json& ids = roles[role]["keyids"];
    std::vector<std::string> match;
    for (const auto& id : ids)
      if (absl::StartsWith(id.get<std::string>(), prefix) && !prefix.empty()) match.push_back(id);
    if (match.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat("--remove-key ", role, "=", prefix, ": ",
                                                     match.size(), " of the role's keys match"));
    }
    ids.erase(std::find(ids.begin(), ids.end(), match[0]));
  }
  for (const auto& [role, t] : o.thresholds) {
    RETURN_IF_ERROR(ValidRole(role));
    roles[role]["threshold"] = t;
  }
  // Keys no role uses any more leave the root.
  std::set<std::string> used;
  for (const char* role : kRoles)
    for (const auto& id : roles[role]["keyids"]) used.insert(id);
  for (auto it = keys.begin(); it != keys.end();) {
    it = used.count(it.key()) ? std::next(it) : keys.erase(it);
  }
  for (const char* role : kRoles) {
    const uint32_t t = roles[role]["threshold"];
    if (t == 0 || t > roles[role]["keyids"].size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(role, ": threshold ", t, " with ", roles[role]["keyids"].size(), " key(s)"));
    }
  }
  signed_part["version"] = old.envelope.version + 1;
  signed_part["expires"] = tuf::FormatUtc(o.now + absl::Hours(24 * c.Days("root")));
  RETURN_IF_ERROR(attest::WriteFileAtomically(workdir / "channel.json", c.config.dump(2) + "\n"));
  RETURN_IF_ERROR(Stage(c, "root", Envelope(signed_part)));
  SignOptions so;
  so.now = o.now;
  return Sign(workdir, passphrase, so);
}

absl::StatusOr<json> Status(const fs::path& workdir, absl::Time now) {
  ASSIGN_OR_RETURN(Channel c, OpenChannel(workdir));
  ASSIGN_OR_RETURN(State s, LoadState(workdir));
  ASSIGN_OR_RETURN(tuf::Root root, tuf::ParseRoot(Bytes(*s.Current("root"))));
  json out = {{"channel", c.name()}, {"roles", json::object()}};
  for (const char* role : kRoles) {
    json r = {{"threshold", root.roles.at(role).threshold}, {"keyids", root.roles.at(role).keyids}};
    for (const auto& [which, files] :
         {std::pair{"published", &s.published}, std::pair{"staged", &s.staged}}) {
      auto it = files->find(role);
      if (it == files->end()) continue;
      ASSIGN_OR_RETURN(auto e, tuf::ParseEnvelope(Bytes(it->second), role));
      r[which] = {{"version", e.version},
                  {"expires", tuf::FormatUtc(e.expires)},
                  {"expired", e.expires <= now},
                  {"valid_signatures", ValidSignatures(e, root, role)}};
    }
    out["roles"][role] = r;
  }
  ASSIGN_OR_RETURN(json draft, ReadJson(workdir / "draft.json"));
  out["draft"] = draft;
  ASSIGN_OR_RETURN(auto checkpoint, ReadOptional(workdir / "log/checkpoint.json"));
  if (checkpoint) out["log"] = json::parse(*checkpoint)["signed"];
  return out;
}

}  // namespace appliance::release
