#include "channel_cli.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tuf/client_revocations.h"
#include "channel.h"
#include "keys.h"

namespace appliance::release {
namespace {

namespace tuf = attest::tuf;

struct Args {
  std::string workdir, repo, name, key_type = "ed25519", passphrase_file, file, target_name,
                                   hardware, kind, roothash, reason;
  std::vector<std::string> revoke_certs, revoke_spkis;
  std::vector<std::string> keys, key_counts, thresholds, expires, extra_keys, renew, generate,
      add_keys, remove_keys;
  uint64_t release_version = 0, min_release_version = 0;
  std::vector<uint64_t> revoke;
  bool json = false;
};

int Fail(const std::string& cmd, const absl::Status& st) {
  const bool check = absl::IsFailedPrecondition(st) || absl::IsPermissionDenied(st);
  std::fprintf(stderr, "appliance-release %s: %s: %s\n", cmd.c_str(),
               check ? "check failed" : "error", std::string(st.message()).c_str());
  return check ? 1 : 2;
}

// Prints a command's summary lines (on success).
absl::Status PrintLines(const absl::StatusOr<std::vector<std::string>>& lines) {
  if (!lines.ok()) return lines.status();
  for (const auto& l : *lines) std::printf("%s\n", l.c_str());
  return absl::OkStatus();
}

// "ROLE=VALUE" pairs.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Pairs(
    const std::vector<std::string>& items, const char* option) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      return absl::InvalidArgumentError(absl::StrCat(option, " '", item, "': ROLE=VALUE expected"));
    }
    out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return out;
}

absl::StatusOr<std::map<std::string, uint32_t>> Numbers(const std::vector<std::string>& items,
                                                        const char* option) {
  ASSIGN_OR_RETURN(auto pairs, Pairs(items, option));
  std::map<std::string, uint32_t> out;
  for (const auto& [role, text] : pairs) {
    uint32_t n = 0;
    if (!absl::SimpleAtoi(text, &n)) {
      return absl::InvalidArgumentError(
          absl::StrCat(option, " ", role, "=", text, ": a number expected"));
    }
    out[role] = n;
  }
  return out;
}

}  // namespace

void AddChannelCommands(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<Args>();
  auto passphrase_option = [a](CLI::App* cmd) {
    cmd->add_option("--passphrase-file", a->passphrase_file,
                    "passphrase of the keys (else $APPLIANCE_RELEASE_PASSPHRASE)");
  };
  auto workdir_option = [a](CLI::App* cmd) {
    cmd->add_option("--workdir", a->workdir, "the channel's work directory")->required();
  };
  // Runs `body` with the passphrase, mapping a failure to the exit code.
  auto with_passphrase = [a, &exit_code](const std::string& cmd, auto body) {
    auto p = ReadPassphrase(a->passphrase_file);
    if (!p.ok()) {
      exit_code = Fail(cmd, p.status());
      return;
    }
    absl::Status st = body(*p);
    exit_code = st.ok() ? 0 : Fail(cmd, st);
  };

  auto* init = app.add_subcommand("init", "create a release channel: role keys, root, log");
  workdir_option(init);
  init->add_option("--name", a->name, "the channel's name (also the log's)")->required();
  init->add_option("--key-type", a->key_type, "ed25519 (default) or ecdsa (P-256)");
  init->add_option("--key", a->keys, "ROLE=FILE: use this encrypted key instead of generating");
  init->add_option("--keys", a->key_counts, "ROLE=N keys to generate (root 3, others 1)");
  init->add_option("--threshold", a->thresholds, "ROLE=N signatures needed (root 2, others 1)");
  init->add_option("--expires", a->expires,
                   "ROLE=DAYS validity (root 365, targets 90, snapshot 7, timestamp 1)");
  passphrase_option(init);
  init->callback([a, with_passphrase] {
    with_passphrase("init", [&](const std::string& p) -> absl::Status {
      InitOptions o;
      o.workdir = a->workdir;
      o.name = a->name;
      o.key_type = a->key_type;
      auto keys = Pairs(a->keys, "--key");
      if (!keys.ok()) return keys.status();
      for (const auto& [role, f] : *keys) o.key_files.emplace_back(role, f);
      auto counts = Numbers(a->key_counts, "--keys");
      auto thresholds = Numbers(a->thresholds, "--threshold");
      auto days = Numbers(a->expires, "--expires");
      for (const auto* st : {&counts, &thresholds, &days})
        if (!st->ok()) return st->status();
      o.key_counts = *counts;
      o.thresholds = *thresholds;
      o.expires_days = *days;
      RETURN_IF_ERROR(Init(o, p));
      return PrintLines(Sign(a->workdir, p, {}));
    });
  });

  auto* add = app.add_subcommand("add-target", "add (or replace) a file in the next targets");
  workdir_option(add);
  add->add_option("FILE", a->file, "the release file")->required();
  add->add_option("--name", a->target_name, "its target name (default: the file's name)");
  add->add_option("--hardware", a->hardware, "the hardware id it is built for");
  add->add_option("--release-version", a->release_version, "the release it belongs to");
  add->add_option("--kind", a->kind, "uki, root, verity, reference-values, sbom, ...");
  add->add_option("--roothash", a->roothash, "a root image's verity root hash (64 hex digits)");
  add->callback([a, add, &exit_code] {
    TargetOptions o;
    o.name = a->target_name;
    if (add->count("--hardware")) o.hardware = a->hardware;
    if (add->count("--release-version")) o.release_version = a->release_version;
    if (add->count("--kind")) o.kind = a->kind;
    if (add->count("--roothash")) o.roothash = a->roothash;
    auto st = AddTarget(a->workdir, a->file, o);
    exit_code = st.ok() ? 0 : Fail("add-target", st);
  });

  auto* revoke = app.add_subcommand(
      "revoke-client", "add client keys to the channel's client-revocation list (a target)");
  workdir_option(revoke);
  revoke->add_option("--cert", a->revoke_certs, "a client certificate (PEM) whose key to revoke");
  revoke->add_option("--spki-sha256", a->revoke_spkis,
                     "a client identity: SHA-256 of its SubjectPublicKeyInfo (hex)");
  revoke->add_option("--reason", a->reason, "why (kept in the list)");
  revoke->callback([a, &exit_code] {
    std::vector<std::string> ids = a->revoke_spkis;
    for (const auto& file : a->revoke_certs) {
      auto pem = attest::ReadFileBounded(file, 64 * 1024);
      auto id = pem.ok() ? tuf::SpkiSha256OfPemCertificate(std::string_view(
                               reinterpret_cast<const char*>(pem->data()), pem->size()))
                         : absl::StatusOr<std::string>(pem.status());
      if (!id.ok()) {
        exit_code =
            Fail("revoke-client",
                 absl::InvalidArgumentError(absl::StrCat(file, ": ", id.status().message())));
        return;
      }
      ids.push_back(*id);
    }
    auto n = RevokeClients(a->workdir, ids, a->reason);
    if (!n.ok()) {
      exit_code = Fail("revoke-client", n.status());
      return;
    }
    for (const auto& id : ids) std::printf("revoked client %s\n", id.c_str());
    std::printf("%s: %zu revoked clients (draft: sign and publish to ship it)\n",
                tuf::kClientRevocationsTarget, *n);
    exit_code = 0;
  });

  auto* sign = app.add_subcommand("sign", "stage and sign new metadata versions");
  workdir_option(sign);
  sign->add_option("--key", a->extra_keys, "an extra key file (e.g. an offline root key)");
  sign->add_option("--renew", a->renew, "ROLE: a new version even if nothing changed (expiry)");
  sign->add_option("--min-release-version", a->min_release_version,
                   "appliances below this release are refused (only goes up)");
  sign->add_option("--revoke-release", a->revoke, "a release version to revoke");
  passphrase_option(sign);
  sign->callback([a, sign, with_passphrase] {
    with_passphrase("sign", [&](const std::string& p) -> absl::Status {
      SignOptions o;
      for (const auto& k : a->extra_keys) o.extra_keys.emplace_back(k);
      o.renew = a->renew;
      if (sign->count("--min-release-version")) o.min_release_version = a->min_release_version;
      o.revoke_releases = a->revoke;
      return PrintLines(Sign(a->workdir, p, o));
    });
  });

  auto* publish = app.add_subcommand("publish", "check the staged release and publish it");
  workdir_option(publish);
  publish->add_option("--repo", a->repo, "the repository directory (a static file tree)")
      ->required();
  passphrase_option(publish);
  publish->callback([a, with_passphrase] {
    with_passphrase("publish", [&](const std::string& p) -> absl::Status {
      return PrintLines(Publish(a->workdir, a->repo, p));
    });
  });

  auto* rotate = app.add_subcommand("rotate-root", "stage the next root: keys and thresholds");
  workdir_option(rotate);
  rotate->add_option("--generate", a->generate, "ROLE: generate a new key for the role");
  rotate->add_option("--add-key", a->add_keys, "ROLE=FILE: add this encrypted key");
  rotate->add_option("--remove-key", a->remove_keys, "ROLE=KEYID (or a unique prefix)");
  rotate->add_option("--threshold", a->thresholds, "ROLE=N");
  passphrase_option(rotate);
  rotate->callback([a, with_passphrase] {
    with_passphrase("rotate-root", [&](const std::string& p) -> absl::Status {
      RotateOptions o;
      o.generate = a->generate;
      auto add_keys = Pairs(a->add_keys, "--add-key");
      auto remove = Pairs(a->remove_keys, "--remove-key");
      auto thresholds = Numbers(a->thresholds, "--threshold");
      if (!add_keys.ok()) return add_keys.status();
      if (!remove.ok()) return remove.status();
      if (!thresholds.ok()) return thresholds.status();
      for (const auto& [role, f] : *add_keys) o.add_key_files.emplace_back(role, f);
      o.remove_keyids = *remove;
      o.thresholds = *thresholds;
      return PrintLines(RotateRoot(a->workdir, p, o));
    });
  });

  auto* status = app.add_subcommand("status", "versions, expiries, keys, signatures, the log");
  workdir_option(status);
  status->add_flag("--json", a->json, "machine-readable output");
  status->callback([a, &exit_code] {
    auto s = Status(a->workdir, absl::Now());
    if (!s.ok()) {
      exit_code = Fail("status", s.status());
      return;
    }
    exit_code = 0;
    if (a->json) {
      std::printf("%s\n", s->dump(2).c_str());
      return;
    }
    std::printf("channel %s\n", (*s)["channel"].get<std::string>().c_str());
    bool expired = false;
    for (const auto& [role, r] : (*s)["roles"].items()) {
      std::printf("%-9s threshold %u of %zu key(s)", role.c_str(), r["threshold"].get<unsigned>(),
                  r["keyids"].size());
      for (const char* which : {"published", "staged"}) {
        if (!r.contains(which)) continue;
        const auto& v = r[which];
        expired = expired || (std::string(which) == "published" && v["expired"].get<bool>());
        std::printf("; %s v%llu, %zu signature(s), expires %s%s", which,
                    static_cast<unsigned long long>(v["version"].get<uint64_t>()),
                    v["valid_signatures"].get<size_t>(), v["expires"].get<std::string>().c_str(),
                    v["expired"].get<bool>() ? " (EXPIRED)" : "");
      }
      std::printf("\n");
    }
    for (const auto& [name, t] : (*s)["draft"]["targets"].items()) {
      std::printf("target %s: %llu bytes%s%s\n", name.c_str(),
                  static_cast<unsigned long long>(t["length"].get<uint64_t>()),
                  t.contains("custom") ? ", " : "",
                  t.contains("custom") ? t["custom"].dump().c_str() : "");
    }
    std::printf("policy %s\n", (*s)["draft"]["custom"].dump().c_str());
    if (s->contains("log")) {
      std::printf("log %s: %llu entries, root %s\n", (*s)["log"]["log"].get<std::string>().c_str(),
                  static_cast<unsigned long long>((*s)["log"]["size"].get<uint64_t>()),
                  (*s)["log"]["root"].get<std::string>().c_str());
    }
  });
}

}  // namespace appliance::release
