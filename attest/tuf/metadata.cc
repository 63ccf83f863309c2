#include "attest/tuf/metadata.h"

#include <fnmatch.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"
#include "attest/verify_options.h"
#include "common/openssl_util.h"
#include "tpm/md_internal.h"

namespace attest::tuf {
namespace {

using json = nlohmann::json;

absl::Status Bad(absl::string_view where, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("tuf: ", where, ": ", why));
}

absl::Status Canonical(const json& v, int depth, std::string& out) {
  if (depth > 32) return Bad("canonical JSON", "nested deeper than 32 levels");
  switch (v.type()) {
    case json::value_t::null:
      out += "null";
      return absl::OkStatus();
    case json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return absl::OkStatus();
    case json::value_t::number_integer:
      out += std::to_string(v.get<int64_t>());
      return absl::OkStatus();
    case json::value_t::number_unsigned:
      out += std::to_string(v.get<uint64_t>());
      return absl::OkStatus();
    case json::value_t::number_float:
      return Bad("canonical JSON", "a floating-point number");
    case json::value_t::string: {
      out += '"';
      for (char c : v.get_ref<const std::string&>()) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
      return absl::OkStatus();
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ',';
        first = false;
        RETURN_IF_ERROR(Canonical(e, depth + 1, out));
      }
      out += ']';
      return absl::OkStatus();
    }
    case json::value_t::object: {  // std::map: keys in byte order
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ',';
        first = false;
        RETURN_IF_ERROR(Canonical(json(it.key()), depth + 1, out));
        out += ':';
        RETURN_IF_ERROR(Canonical(it.value(), depth + 1, out));
      }
      out += '}';
      return absl::OkStatus();
    }
    default:
      return Bad("canonical JSON", "unsupported value");
  }
}

absl::StatusOr<uint64_t> PositiveInt(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_unsigned() || it->get<uint64_t>() == 0) {
    return Bad(absl::StrCat(where, ".", key), "a positive integer expected");
  }
  return it->get<uint64_t>();
}

absl::StatusOr<std::map<std::string, std::vector<uint8_t>>> ParseHashes(const json& v,
                                                                        const std::string& where) {
  if (!v.is_object() || v.empty() || v.size() > 8)
    return Bad(where, "an object of hashes expected");
  std::map<std::string, std::vector<uint8_t>> out;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it->is_string()) return Bad(where, "hex digests expected");
    auto d = HexDecode(it->get<std::string>());
    if (!d.ok() || d->empty() || d->size() > 64) {
      return Bad(absl::StrCat(where, ".", it.key()), "a hex digest expected");
    }
    out[it.key()] = *std::move(d);
  }
  return out;
}

absl::StatusOr<MetaFile> ParseMetaFile(const json& v, const std::string& where) {
  if (!v.is_object()) return Bad(where, "an object expected");
  MetaFile m;
  ASSIGN_OR_RETURN(m.version, PositiveInt(v, "version", where));
  if (auto l = v.find("length"); l != v.end()) {
    if (!l->is_number_unsigned()) return Bad(where + ".length", "an integer expected");
    m.length = l->get<uint64_t>();
  }
  if (auto h = v.find("hashes"); h != v.end()) {
    ASSIGN_OR_RETURN(m.hashes, ParseHashes(*h, where + ".hashes"));
  }
  return m;
}

const EVP_MD* HashByName(const std::string& name) {
  if (name == "sha256") return tpm::TpmAlgMd(tpm::kAlgSha256);
  if (name == "sha512") return tpm::TpmAlgMd(tpm::kAlgSha512);
  return nullptr;
}

}  // namespace

absl::StatusOr<std::string> CanonicalJson(const json& value) {
  std::string out;
  RETURN_IF_ERROR(Canonical(value, 0, out));
  return out;
}

json Key::ToJson() const {
  return {{"keytype", keytype}, {"scheme", scheme}, {"keyval", {{"public", public_value}}}};
}

std::string Key::KeyId() const {
  auto c = CanonicalJson(ToJson());
  auto d =
      tpm::Hash(tpm::kAlgSha256, std::span(reinterpret_cast<const uint8_t*>(c->data()), c->size()));
  return HexEncode(*d);
}

std::string FormatUtc(absl::Time t) { return FormatRfc3339(t); }  // whole seconds, "Z"

absl::StatusOr<absl::Time> ParseTime(const json& v, const std::string& where) {
  if (!v.is_string()) return Bad(where, "a date string expected");
  const std::string& s = v.get_ref<const std::string&>();
  absl::Time t;
  std::string err;
  if (s.size() != 20 || s.back() != 'Z' || !absl::ParseTime(kTimeFormat, s, &t, &err)) {
    return Bad(where, absl::StrCat("'", s, "' is not YYYY-MM-DDTHH:MM:SSZ"));
  }
  return t;
}

absl::StatusOr<Key> ParseKey(const json& j) {
  if (!j.is_object() || !j.contains("keytype") || !j.contains("scheme") || !j.contains("keyval") ||
      !j["keytype"].is_string() || !j["scheme"].is_string() || !j["keyval"].is_object() ||
      !j["keyval"].contains("public") || !j["keyval"]["public"].is_string()) {
    return Bad("key", "keytype, scheme and keyval.public expected");
  }
  Key k;
  k.keytype = j["keytype"];
  k.scheme = j["scheme"];
  k.public_value = j["keyval"]["public"];
  ossl::EvpPkeyPtr pkey;
  if (k.keytype == "ed25519" && k.scheme == "ed25519") {
    auto raw = HexDecode(k.public_value);
    if (!raw.ok() || raw->size() != 32) return Bad("key", "an Ed25519 key is 32 bytes of hex");
    pkey.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw->data(), raw->size()));
  } else if ((k.keytype == "ecdsa" || k.keytype == "ecdsa-sha2-nistp256") &&
             k.scheme == "ecdsa-sha2-nistp256") {
    if (k.public_value.size() > 4096) return Bad("key", "PEM too long");
    ossl::BioPtr bio(
        BIO_new_mem_buf(k.public_value.data(), static_cast<int>(k.public_value.size())));
    pkey.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (pkey &&
        (EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_EC || EVP_PKEY_get_bits(pkey.get()) != 256)) {
      return Bad("key", "an ecdsa-sha2-nistp256 key must be EC P-256");
    }
  } else {
    return Bad("key",
               absl::StrCat("unsupported keytype/scheme '", k.keytype, "'/'", k.scheme, "'"));
  }
  if (!pkey) return Bad("key", "OpenSSL cannot parse the public key");
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(pkey.get(), &der);
  if (n <= 0) return Bad("key", "cannot encode the public key");
  k.spki_der.assign(der, der + n);
  OPENSSL_free(der);
  return k;
}

absl::Status VerifySignature(const Key& key, std::span<const uint8_t> message,
                             std::span<const uint8_t> signature) {
  const unsigned char* p = key.spki_der.data();
  ossl::EvpPkeyPtr pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(key.spki_der.size())));
  if (!pkey) return absl::InternalError("tuf: key");
  ossl::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  const EVP_MD* md = key.scheme == "ed25519" ? nullptr : tpm::TpmAlgMd(tpm::kAlgSha256);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, pkey.get()) != 1) {
    return absl::InternalError("tuf: verify init");
  }
  const int rc = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                                  message.size());
  ERR_clear_error();
  if (rc != 1) return absl::FailedPreconditionError("signature does not verify");
  return absl::OkStatus();
}

absl::StatusOr<Envelope> ParseEnvelope(std::span<const uint8_t> bytes,
                                       const std::string& expected_type) {
  const std::string where = expected_type + ".json";
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Bad(where, "not a JSON object");
  if (j.size() != 2 || !j.contains("signed") || !j.contains("signatures")) {
    return Bad(where, "exactly \"signed\" and \"signatures\" expected");
  }
  const json& s = j["signed"];
  if (!s.is_object()) return Bad(where + ".signed", "an object expected");
  Envelope e;
  if (!s.contains("_type") || !s["_type"].is_string()) return Bad(where, "signed._type expected");
  e.type = s["_type"];
  if (e.type != expected_type) {
    return Bad(where,
               absl::StrCat("signed._type is '", e.type, "', expected '", expected_type, "'"));
  }
  if (!s.contains("spec_version") || !s["spec_version"].is_string() ||
      !absl::StartsWith(s["spec_version"].get<std::string>(), "1.")) {
    return Bad(where, "spec_version 1.x expected");
  }
  ASSIGN_OR_RETURN(e.version, PositiveInt(s, "version", where));
  if (!s.contains("expires")) return Bad(where, "signed.expires expected");
  ASSIGN_OR_RETURN(e.expires, ParseTime(s["expires"], where + ".expires"));
  ASSIGN_OR_RETURN(e.canonical_signed, CanonicalJson(s));
  const json& sigs = j["signatures"];
  if (!sigs.is_array() || sigs.size() > 64) return Bad(where, "signatures: at most 64 expected");
  for (const auto& sig : sigs) {
    if (!sig.is_object() || !sig.contains("keyid") || !sig["keyid"].is_string() ||
        !sig.contains("sig") || !sig["sig"].is_string()) {
      return Bad(where, "a signature is {keyid, sig}");
    }
    auto raw = HexDecode(sig["sig"].get<std::string>());
    if (!raw.ok() || raw->size() > 512) return Bad(where, "a signature is hex");
    e.signatures.emplace_back(sig["keyid"].get<std::string>(), *std::move(raw));
  }
  e.signed_json = s;
  return e;
}

absl::StatusOr<Root> ParseRoot(std::span<const uint8_t> bytes) {
  Root r;
  ASSIGN_OR_RETURN(r.envelope, ParseEnvelope(bytes, "root"));
  const json& s = r.envelope.signed_json;
  if (auto c = s.find("consistent_snapshot"); c != s.end()) {
    if (!c->is_boolean()) return Bad("root.json.consistent_snapshot", "a boolean expected");
    r.consistent_snapshot = c->get<bool>();
  }
  if (!s.contains("keys") || !s["keys"].is_object() || s["keys"].size() > 256) {
    return Bad("root.json.keys", "an object of at most 256 keys expected");
  }
  for (auto it = s["keys"].begin(); it != s["keys"].end(); ++it) {
    auto key = ParseKey(it.value());
    if (!key.ok()) return Bad(absl::StrCat("root.json.keys.", it.key()), key.status().message());
    r.keys[it.key()] = *std::move(key);
  }
  if (!s.contains("roles") || !s["roles"].is_object()) return Bad("root.json.roles", "expected");
  for (const char* name : {"root", "timestamp", "snapshot", "targets"}) {
    const std::string where = absl::StrCat("root.json.roles.", name);
    if (!s["roles"].contains(name) || !s["roles"][name].is_object()) return Bad(where, "expected");
    const json& role = s["roles"][name];
    Role out;
    ASSIGN_OR_RETURN(uint64_t threshold, PositiveInt(role, "threshold", where));
    if (threshold > 64) return Bad(where, "threshold above 64");
    out.threshold = static_cast<uint32_t>(threshold);
    if (!role.contains("keyids") || !role["keyids"].is_array() || role["keyids"].size() > 64) {
      return Bad(where + ".keyids", "a list expected");
    }
    for (const auto& id : role["keyids"]) {
      if (!id.is_string()) return Bad(where + ".keyids", "strings expected");
      out.keyids.push_back(id);
    }
    r.roles[name] = out;
  }
  return r;
}

absl::StatusOr<Timestamp> ParseTimestamp(std::span<const uint8_t> bytes) {
  Timestamp t;
  ASSIGN_OR_RETURN(t.envelope, ParseEnvelope(bytes, "timestamp"));
  const json& s = t.envelope.signed_json;
  if (!s.contains("meta") || !s["meta"].is_object() || !s["meta"].contains("snapshot.json")) {
    return Bad("timestamp.json.meta", "snapshot.json expected");
  }
  ASSIGN_OR_RETURN(t.snapshot,
                   ParseMetaFile(s["meta"]["snapshot.json"], "timestamp.json.meta.snapshot.json"));
  return t;
}

absl::StatusOr<Snapshot> ParseSnapshot(std::span<const uint8_t> bytes) {
  Snapshot sn;
  ASSIGN_OR_RETURN(sn.envelope, ParseEnvelope(bytes, "snapshot"));
  const json& s = sn.envelope.signed_json;
  if (!s.contains("meta") || !s["meta"].is_object() || s["meta"].size() > 10000) {
    return Bad("snapshot.json.meta", "an object expected");
  }
  for (auto it = s["meta"].begin(); it != s["meta"].end(); ++it) {
    ASSIGN_OR_RETURN(sn.meta[it.key()],
                     ParseMetaFile(it.value(), "snapshot.json.meta." + it.key()));
  }
  if (!sn.meta.count("targets.json")) return Bad("snapshot.json.meta", "targets.json expected");
  return sn;
}

absl::StatusOr<Targets> ParseTargets(std::span<const uint8_t> bytes) {
  Targets t;
  ASSIGN_OR_RETURN(t.envelope, ParseEnvelope(bytes, "targets"));
  const json& s = t.envelope.signed_json;
  if (!s.contains("targets") || !s["targets"].is_object() || s["targets"].size() > 100000) {
    return Bad("targets.json.targets", "an object expected");
  }
  for (auto it = s["targets"].begin(); it != s["targets"].end(); ++it) {
    const std::string where = "targets.json.targets." + it.key();
    const json& f = it.value();
    if (!f.is_object() || !f.contains("length") || !f["length"].is_number_unsigned() ||
        !f.contains("hashes")) {
      return Bad(where, "length and hashes expected");
    }
    TargetFile tf;
    tf.length = f["length"];
    ASSIGN_OR_RETURN(tf.hashes, ParseHashes(f["hashes"], where + ".hashes"));
    if (auto c = f.find("custom"); c != f.end()) tf.custom = *c;
    t.targets[it.key()] = std::move(tf);
  }
  if (auto c = s.find("custom"); c != s.end()) t.custom = *c;
  if (auto d = s.find("delegations"); d != s.end()) {
    const std::string where = "targets.json.delegations";
    if (!d->is_object() || !d->contains("keys") || !(*d)["keys"].is_object() ||
        (*d)["keys"].size() > 256 || !d->contains("roles") || !(*d)["roles"].is_array() ||
        (*d)["roles"].size() > 256) {
      return Bad(where, "keys (at most 256) and roles (at most 256) expected");
    }
    for (auto it = (*d)["keys"].begin(); it != (*d)["keys"].end(); ++it) {
      auto key = ParseKey(it.value());
      if (!key.ok()) return Bad(absl::StrCat(where, ".keys.", it.key()), key.status().message());
      t.delegation_keys[it.key()] = *std::move(key);
    }
    for (const auto& r : (*d)["roles"]) {
      Delegation del;
      if (!r.is_object() || !r.contains("name") || !r["name"].is_string()) {
        return Bad(where + ".roles", "a role needs a name");
      }
      del.name = r["name"];
      const std::string rw = absl::StrCat(where, ".roles.", del.name);
      if (del.name.empty() || del.name.size() > 64 || del.name == "root" || del.name == "targets" ||
          del.name == "snapshot" || del.name == "timestamp" ||
          !std::all_of(del.name.begin(), del.name.end(),
                       [](char c) {
                         return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                                c == '_' || c == '-';
                       }) ||
          del.name.front() == '.') {
        return Bad(rw, "a role name of letters, digits, '.', '_', '-' (not a top-level role)");
      }
      ASSIGN_OR_RETURN(uint64_t threshold, PositiveInt(r, "threshold", rw));
      if (threshold > 64) return Bad(rw, "threshold above 64");
      del.role.threshold = static_cast<uint32_t>(threshold);
      if (!r.contains("keyids") || !r["keyids"].is_array() || r["keyids"].size() > 64) {
        return Bad(rw + ".keyids", "a list expected");
      }
      for (const auto& id : r["keyids"]) {
        if (!id.is_string()) return Bad(rw + ".keyids", "strings expected");
        del.role.keyids.push_back(id);
      }
      if (auto term = r.find("terminating"); term != r.end()) {
        if (!term->is_boolean()) return Bad(rw + ".terminating", "a boolean expected");
        del.terminating = *term;
      }
      const bool has_paths = r.contains("paths"), has_prefixes = r.contains("path_hash_prefixes");
      if (has_paths == has_prefixes) {
        return Bad(rw, "exactly one of paths and path_hash_prefixes expected");
      }
      const json& list = has_paths ? r["paths"] : r["path_hash_prefixes"];
      if (!list.is_array() || list.size() > 1024) return Bad(rw, "a list of patterns expected");
      for (const auto& p : list) {
        if (!p.is_string() || p.get_ref<const std::string&>().size() > 1024) {
          return Bad(rw, "patterns are strings");
        }
        (has_paths ? del.paths : del.path_hash_prefixes).push_back(p);
      }
      if (std::any_of(t.delegations.begin(), t.delegations.end(),
                      [&](const Delegation& o) { return o.name == del.name; })) {
        return Bad(rw, "delegated twice");
      }
      t.delegations.push_back(std::move(del));
    }
  }
  return t;
}

bool Delegation::Matches(const std::string& target_path) const {
  for (const auto& pattern : paths) {
    if (fnmatch(pattern.c_str(), target_path.c_str(), FNM_PATHNAME) == 0) return true;
  }
  if (path_hash_prefixes.empty()) return false;
  const auto digest = tpm::Hash(
      tpm::kAlgSha256,
      std::span(reinterpret_cast<const uint8_t*>(target_path.data()), target_path.size()));
  const std::string hex = HexEncode(*digest);
  for (const auto& prefix : path_hash_prefixes) {
    if (absl::StartsWith(hex, absl::AsciiStrToLower(prefix))) return true;
  }
  return false;
}

absl::Status VerifyRoleSignatures(const Envelope& e, const std::string& role_name, const Role& role,
                                  const std::map<std::string, Key>& keys) {
  // Distinct keys, by their SubjectPublicKeyInfo (as strings: gcc 12 at -O3 reports a false
  // -Wstringop-overread in the comparison of a std::set of byte vectors).
  std::set<std::string> signers;
  const std::span<const uint8_t> message(
      reinterpret_cast<const uint8_t*>(e.canonical_signed.data()), e.canonical_signed.size());
  for (const auto& [keyid, sig] : e.signatures) {
    if (std::find(role.keyids.begin(), role.keyids.end(), keyid) == role.keyids.end()) continue;
    auto key = keys.find(keyid);
    if (key == keys.end()) continue;
    if (VerifySignature(key->second, message, sig).ok()) {
      signers.emplace(key->second.spki_der.begin(), key->second.spki_der.end());
    }
  }
  if (signers.size() < role.threshold) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tuf.", role_name, ".threshold: ", e.type, " version ", e.version, " has ", signers.size(),
        " valid signature(s) of the ", role_name, " role's keys, ", role.threshold, " needed"));
  }
  return absl::OkStatus();
}

struct StreamingHashes::Digest {
  std::string name;
  const std::vector<uint8_t>* expected = nullptr;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
};

StreamingHashes::StreamingHashes(const std::map<std::string, std::vector<uint8_t>>& expected)
    : expected_(expected) {
  for (const auto& [name, digest] : expected) {
    const EVP_MD* md = HashByName(name);
    if (md == nullptr) continue;
    auto d = std::make_unique<Digest>();
    d->name = name;
    d->expected = &digest;
    EVP_DigestInit_ex(d->ctx.get(), md, nullptr);
    digests_.push_back(std::move(d));
  }
}

StreamingHashes::~StreamingHashes() = default;

void StreamingHashes::Update(std::span<const uint8_t> bytes) {
  size_ += bytes.size();
  for (auto& d : digests_) EVP_DigestUpdate(d->ctx.get(), bytes.data(), bytes.size());
}

absl::Status StreamingHashes::Finish(std::optional<uint64_t> length, const std::string& what) {
  if (length && size_ != *length) {
    return absl::FailedPreconditionError(
        absl::StrCat("tuf.", what, ".length: ", size_, " bytes, expected ", *length));
  }
  for (auto& d : digests_) {
    std::vector<uint8_t> got(EVP_MAX_MD_SIZE);
    unsigned int n = 0;
    EVP_DigestFinal_ex(d->ctx.get(), got.data(), &n);
    got.resize(n);
    if (got != *d->expected) {
      return absl::FailedPreconditionError(absl::StrCat("tuf.", what, ".hash: ", d->name, " ",
                                                        HexEncode(got), ", expected ",
                                                        HexEncode(*d->expected)));
    }
  }
  if (!expected_.empty() && digests_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("tuf.", what, ".hash: no sha256/sha512 listed"));
  }
  return absl::OkStatus();
}

absl::Status CheckHashes(std::span<const uint8_t> bytes,
                         const std::map<std::string, std::vector<uint8_t>>& expected,
                         std::optional<uint64_t> length, const std::string& what) {
  if (length && bytes.size() != *length) {  // before hashing what is already the wrong size
    return absl::FailedPreconditionError(
        absl::StrCat("tuf.", what, ".length: ", bytes.size(), " bytes, expected ", *length));
  }
  StreamingHashes h(expected);
  h.Update(bytes);
  return h.Finish(length, what);
}

}  // namespace attest::tuf
