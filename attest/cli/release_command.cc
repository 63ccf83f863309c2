// appliance-verify release: a coordinator's check of the release channel before it trusts a set
// of reference values (or a release version an appliance reports).
//   appliance-verify release --metadata-dir D --metadata-url U [--trusted-root ROOT.json]
//       [--reference-values F] [--release-version N]
//       [--require-logged --log-key KEY.json [--log-url L (default U/log)]]
//       [--require-sbom [--source-commit C]]
//       [--ca-file F] [--signed-time TSR --tsa-ca PEM] [--json]
// 1. The TUF client workflow from the trusted root in D (--trusted-root starts D): root chain,
//    timestamp, snapshot, targets with signatures, thresholds, versions, hashes and expiry
//    (against max(clock, the time floor kept in D, the --signed-time verified first)).
// 2. --reference-values: the file is a target of the trusted targets (by SHA-256 and length);
//    its release version is the one checked next (and must equal --release-version if given).
// 3. The release is not below the channel's signed minimum release version, nor revoked; with
//    --require-sbom its SBOM target is downloaded and checked (well formed, of this release, its
//    model container accepted by the reference values, built from --source-commit if given).
// 4. --require-logged: the trusted targets version is an entry of the transparency log (the
//    checkpoint signed by the pinned log key, the entry's inclusion proof), and the checkpoint
//    extends the one kept in D from the last run (D/checkpoint.json, then replaced).
// Exit 0 verified, 1 a check failed (stderr names it and the values compared), 2 bad input.
#include "release_command.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"
#include "attest/tuf/client.h"
#include "attest/tuf/release.h"
#include "attest/tuf/signed_time.h"
#include "output.h"

namespace attest::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct ReleaseArgs {
  std::string metadata_dir, metadata_url, trusted_root, reference_values, log_url, log_key, ca_file,
      signed_time, tsa_ca, source_commit;
  uint64_t release_version = 0;
  bool has_release_version = false, require_logged = false, require_sbom = false, json = false;
};

// The TUF client's refusals are failed checks (exit 1) unless the input was malformed.
absl::Status AsCheck(const absl::Status& st) {
  if (st.ok() || absl::IsInvalidArgument(st) || IsVerificationFailure(st)) return st;
  return VerificationFailed("release.tuf", st.message());
}

// The release's SBOM, downloaded through the TUF client (length and hashes as signed): well
// formed, of this release, naming the model the reference values accept and, if the coordinator
// names one, built from its source commit (the commit it rebuilt the image from).
absl::Status CheckSbom(const ReleaseArgs& a, tuf::Client& client, const std::string& target,
                       uint64_t release, json& out) {
  auto bytes = client.ReadTarget(target, absl::StrCat(a.metadata_url, "/targets"), tuf::kMaxSbom);
  if (!bytes.ok()) return AsCheck(bytes.status());
  auto sbom = tuf::ParseSbom(*bytes);
  if (!sbom.ok()) {
    return VerificationFailed("release.sbom", absl::StrCat("target '", target, "' is signed but ",
                                                           sbom.status().message()));
  }
  if (sbom->release_version != release) {
    return VerificationFailed("release.sbom",
                              absl::StrCat("the SBOM describes release ", sbom->release_version,
                                           ", not release ", release));
  }
  const std::string model = absl::StrCat("sha256:", HexEncode(sbom->model_container));
  if (!a.reference_values.empty()) {
    ASSIGN_OR_RETURN(auto rv_bytes, ReadInput(a.reference_values, kMaxReferenceValuesSize));
    ASSIGN_OR_RETURN(auto rv, ParseReferenceValues(rv_bytes));
    if (std::find(rv.container_digests.begin(), rv.container_digests.end(),
                  sbom->model_container) == rv.container_digests.end()) {
      return VerificationFailed("release.sbom.model",
                                absl::StrCat("the SBOM names the model container ", model,
                                             ", which the reference values do not accept"));
    }
    out["checks"].push_back("release.sbom.model");
  }
  if (!a.source_commit.empty() && absl::AsciiStrToLower(a.source_commit) != sbom->source_commit) {
    return VerificationFailed("release.sbom.commit",
                              absl::StrCat("the release was built from commit ",
                                           sbom->source_commit, ", expected ", a.source_commit));
  }
  out["sbom"]["source_commit"] = sbom->source_commit;
  out["sbom"]["source_date_epoch"] = sbom->source_date_epoch;
  out["sbom"]["model_container"] = model;
  out["sbom"]["packages"] = sbom->packages.size();
  out["checks"].push_back("release.sbom");
  return absl::OkStatus();
}

absl::Status Run(const ReleaseArgs& a, json& out) {
  const fs::path dir(a.metadata_dir);
  if (!a.trusted_root.empty() && !fs::exists(dir / "root.json")) {
    ASSIGN_OR_RETURN(auto root, ReadInput(a.trusted_root, 512 * 1024));
    RETURN_IF_ERROR(tuf::Client::Init(dir, root));
  }
  if (!fs::exists(dir / "root.json")) {
    return absl::InvalidArgumentError(
        absl::StrCat(a.metadata_dir, " holds no trusted root: give --trusted-root"));
  }
  auto fetcher = tuf::MakeHttpFetcher(absl::Seconds(30), a.ca_file);
  tuf::Client client(dir, a.metadata_url, fetcher.get());
  if (!a.signed_time.empty()) {
    ASSIGN_OR_RETURN(auto st, tuf::VerifySignedTimeFiles(a.signed_time, a.tsa_ca));
    client.set_signed_time(st.time, absl::StrCat("a time stamp ", st.tsa));
    out["signed_time"] = {{"time", tuf::FormatUtc(st.time)}, {"tsa", st.tsa}};
    out["checks"].push_back("time.signed");
  }
  RETURN_IF_ERROR(AsCheck(client.Refresh()));
  const tuf::Targets& targets = client.targets();
  out["targets_version"] = targets.envelope.version;
  out["checks"].push_back("release.tuf");
  ASSIGN_OR_RETURN(auto policy, tuf::PolicyOf(targets));
  out["min_release_version"] = policy.min_release_version;

  std::optional<uint64_t> release;
  if (a.has_release_version) release = a.release_version;
  if (!a.reference_values.empty()) {
    ASSIGN_OR_RETURN(auto digests, DigestsOfFile(a.reference_values, {tpm::kAlgSha256}));
    std::error_code ec;
    const uint64_t size = fs::file_size(a.reference_values, ec);
    if (ec) return absl::InvalidArgumentError(a.reference_values + ": cannot read");
    ASSIGN_OR_RETURN(auto found, tuf::FindTarget(targets, digests[0], size));
    if (found.kind != "reference-values") {
      return VerificationFailed(
          "release.target",
          absl::StrCat("'", found.name, "' is a '", found.kind, "' target, not reference-values"));
    }
    if (release && *release != found.release_version) {
      return VerificationFailed("release.version",
                                absl::StrCat("the reference values are of release ",
                                             found.release_version, ", expected ", *release));
    }
    release = found.release_version;
    out["reference_values"] = {{"target", found.name}, {"sha256", HexEncode(digests[0])}};
    out["checks"].push_back("release.target");
  }
  if (release) {
    // The release's SBOM (a target of kind "sbom" of the same release), if it carries one.
    for (const auto& [name, tf] : targets.targets) {
      const tuf::TargetRelease r = tuf::ReleaseOf(tf);
      if (r.kind == "sbom" && r.release_version == *release && tf.hashes.count("sha256")) {
        out["sbom"] = {{"target", name}, {"sha256", HexEncode(tf.hashes.at("sha256"))}};
      }
    }
    if ((a.require_sbom || !a.source_commit.empty()) && !out.contains("sbom")) {
      return VerificationFailed("release.sbom",
                                absl::StrCat("release ", *release, " carries no SBOM target"));
    }
    if (a.require_sbom || !a.source_commit.empty()) {
      RETURN_IF_ERROR(
          CheckSbom(a, client, out["sbom"]["target"].get<std::string>(), *release, out));
    }
    RETURN_IF_ERROR(tuf::CheckRelease(policy, *release));
    out["release_version"] = *release;
    out["checks"].push_back("release.policy");
  }
  if (a.require_logged) {
    ASSIGN_OR_RETURN(auto key, ReadLogKey(a.log_key));
    ASSIGN_OR_RETURN(auto targets_bytes, ReadInput((dir / "targets.json").string(), 64u << 20));
    std::optional<tlog::Checkpoint> trusted;
    if (fs::exists(dir / "checkpoint.json")) {
      ASSIGN_OR_RETURN(auto kept,
                       ReadInput((dir / "checkpoint.json").string(), tlog::kMaxCheckpointSize));
      ASSIGN_OR_RETURN(trusted, tlog::VerifyCheckpoint(kept, key));
    }
    const std::string log_url =
        a.log_url.empty() ? absl::StrCat(a.metadata_url, "/log") : a.log_url;
    ASSIGN_OR_RETURN(auto logged, tuf::VerifyTargetsLogged(*fetcher, log_url, key, targets_bytes,
                                                           targets.envelope.version, trusted));
    out["log"] = {{"log", logged.checkpoint.log},
                  {"size", logged.checkpoint.size},
                  {"root", HexEncode(logged.checkpoint.root)},
                  {"index", logged.index}};
    if (logged.extends_size) out["log"]["extends_size"] = *logged.extends_size;
    out["checks"].push_back("tlog.inclusion");
    if (trusted) out["checks"].push_back("tlog.consistency");
    // Keep the newest checkpoint: the next run must see a log that extends it.
    RETURN_IF_ERROR(WriteFileAtomically(dir / "checkpoint.json", logged.checkpoint_bytes));
  }
  return absl::OkStatus();
}

}  // namespace

void AddReleaseCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<ReleaseArgs>();
  auto* cmd = app.add_subcommand(
      "release", "Verify the release channel: TUF metadata, release policy, transparency log");
  cmd->add_option("--metadata-dir", a->metadata_dir, "trusted metadata directory")->required();
  cmd->add_option("--metadata-url", a->metadata_url, "repository URL or directory")->required();
  cmd->add_option("--trusted-root", a->trusted_root, "root.json to start trusting (first run)");
  cmd->add_option("--reference-values", a->reference_values,
                  "reference-values.json the coordinator will use: must be a release target");
  auto* rv = cmd->add_option("--release-version", a->release_version,
                             "a release version (e.g. from evidence) to check against policy");
  auto* logged = cmd->add_flag("--require-logged", a->require_logged,
                               "the targets version must be in the transparency log");
  auto* key = cmd->add_option("--log-key", a->log_key,
                              "the log's public key (TUF key JSON or "
                              "log.json), pinned by the coordinator");
  cmd->add_option("--log-url", a->log_url, "the log's URL or directory (default: URL/log)");
  cmd->add_option("--ca-file", a->ca_file, "HTTPS: trust these CA certificates (PEM)");
  cmd->add_option("--source-commit", a->source_commit,
                  "the source commit the release's SBOM must name (implies --require-sbom)");
  auto* signed_time =
      cmd->add_option("--signed-time", a->signed_time,
                      "an RFC 3161 time-stamp response (DER): expiry is checked against it too");
  auto* tsa_ca = cmd->add_option("--tsa-ca", a->tsa_ca,
                                 "the TSA certificates trusted for --signed-time (PEM)");
  signed_time->needs(tsa_ca);
  tsa_ca->needs(signed_time);
  cmd->add_flag("--require-sbom", a->require_sbom,
                "the release must carry an SBOM target (kind sbom, same release version)");
  logged->needs(key);
  key->needs(logged);
  cmd->add_flag("--json", a->json, "machine-readable output");
  cmd->callback([a, rv, exit_code] {
    a->has_release_version = rv->count() > 0;
    *exit_code = RunChecked(
        "release", a->json, [&](json& out) { return Run(*a, out); },
        [](const json& out) {
          std::printf("verified: targets version %s",
                      std::to_string(out["targets_version"].get<uint64_t>()).c_str());
          if (out.contains("release_version")) {
            std::printf(", release %s (minimum %s)",
                        std::to_string(out["release_version"].get<uint64_t>()).c_str(),
                        std::to_string(out["min_release_version"].get<uint64_t>()).c_str());
          }
          if (out.contains("log")) {
            std::printf(", log entry %s of %s",
                        std::to_string(out["log"]["index"].get<uint64_t>()).c_str(),
                        std::to_string(out["log"]["size"].get<uint64_t>()).c_str());
          }
          std::printf("\n");
        });
  });
}

}  // namespace attest::cli
