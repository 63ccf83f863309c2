// appliance-verify connect HOST:PORT --cert CLIENT_PEM --key CLIENT_KEY_PEM --launch-config F
//   --reference REF_JSON [--roots DIR] [--allow-vtpm-only] [--predict JSON_INPUT] [--json]
//
// Issue 5's stable contract. Exit 0: the appliance is attested (and the prediction, if asked, was
// answered); 1: TLS authentication (including the server refusing our certificate), attestation,
// binding or policy failed — stderr names the check and the values compared — or the attested
// appliance refused the prediction; 2: usage error, malformed input, or the host is unreachable.
//
// A separate executable (appliance-verify execs it for `connect`) so that the offline verifier
// stays free of gRPC and its start-up cost.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "appliance/v1/service.grpc.pb.h"
#include "attest/client/attested_channel.h"
#include "attest/client/tls.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/launch_config.h"
#include "attest/status.h"
#include "attest/tuf/client_revocations.h"
#include "attest/tuf/release.h"
#include "nlohmann/json.hpp"
#include "output.h"

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

int Usage(const std::string& message) {
  std::fprintf(stderr, "appliance-verify connect: error: %s\n", message.c_str());
  return 2;
}

absl::StatusOr<std::string> ReadText(const std::string& path, size_t max) {
  ASSIGN_OR_RETURN(auto b, attest::ReadFileBounded(path, max));
  return std::string(b.begin(), b.end());
}

}  // namespace

int main(int argc, char** argv) {
  std::string target, cert, key, config_path, reference_path, roots_dir, predict;
  bool allow_vtpm_only = false, as_json = false;
  double timeout_s = 15;
  CLI::App app{
      "appliance-verify connect: attest an appliance over TLS 1.3, then (optionally) predict",
      "appliance-verify connect"};
  app.add_option("target", target, "HOST:PORT of the supervisor")->required();
  app.add_option("--cert", cert,
                 "client certificate (PEM), issued by the launch configuration's CA")
      ->required();
  app.add_option("--key", key, "client private key (PEM)")->required();
  app.add_option("--launch-config", config_path, "the launch configuration the appliance must run")
      ->required();
  app.add_option("--reference", reference_path, "reference values (JSON, docs/reference-values.md)")
      ->required();
  app.add_option("--roots", roots_dir,
                 "directory of extra trust anchors (PEM), e.g. snp_ark.pem of a software signer");
  app.add_flag("--allow-vtpm-only", allow_vtpm_only,
               "accept evidence whose only runtime proof is a host vTPM");
  app.add_option("--predict", predict,
                 "after attestation, call Inference.Predict with this JSON (file or inline)");
  app.add_option("--timeout", timeout_s, "seconds for the connection and each call")
      ->check(CLI::Range(0.1, 600.0));
  app.add_flag("--json", as_json, "machine-readable output");
  uint64_t min_release = 0;
  std::string release_metadata;
  auto* min_release_opt =
      app.add_option("--min-release-version", min_release,
                     "refuse an appliance that reports no release or one below this version");
  app.add_option("--release-metadata", release_metadata,
                 "the release channel's trusted metadata directory (kept by appliance-verify "
                 "release): its signed minimum release version, release revocations and "
                 "client-revocation list apply");
  std::string evidence_out;
  app.add_option("--evidence-out", evidence_out,
                 "write the verified evidence bundle (protobuf) here");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  attest::client::ConnectOptions o;
  o.target = target;
  o.allow_vtpm_only = allow_vtpm_only;
  if (min_release_opt->count() > 0) o.min_release_version = min_release;
  if (!release_metadata.empty()) {
    auto bytes = attest::ReadFileBounded(std::filesystem::path(release_metadata) / "targets.json",
                                         64u << 20);
    if (!bytes.ok()) return Usage(std::string(bytes.status().message()));
    auto targets = attest::tuf::ParseTargets(*bytes);
    if (!targets.ok()) return Usage(std::string(targets.status().message()));
    auto policy = attest::tuf::PolicyOf(*targets);
    if (!policy.ok()) return Usage(std::string(policy.status().message()));
    o.min_release_version =
        std::max(o.min_release_version.value_or(0), policy->min_release_version);
    o.revoked_releases = policy->revoked;
    // The channel's client-revocation list, when it publishes one: the appliance must apply it.
    if (auto it = targets->targets.find(attest::tuf::kClientRevocationsTarget);
        it != targets->targets.end() && it->second.hashes.count("sha256") &&
        it->second.hashes.at("sha256").size() == 32) {
      std::array<uint8_t, 32> d{};
      std::copy_n(it->second.hashes.at("sha256").begin(), 32, d.begin());
      o.client_revocations_sha256 = d;
    }
  }
  o.timeout = absl::Milliseconds(timeout_s * 1000);
  auto cert_pem = ReadText(cert, 1 << 20), key_pem = ReadText(key, 1 << 20);
  if (!cert_pem.ok()) return Usage(std::string(cert_pem.status().message()));
  if (!key_pem.ok()) return Usage(std::string(key_pem.status().message()));
  o.client_cert_pem = *cert_pem;
  o.client_key_pem = *key_pem;
  auto config = attest::ReadFileBounded(config_path, attest::kMaxLaunchConfigSize);
  if (!config.ok()) return Usage(std::string(config.status().message()));
  o.launch_config = *config;
  auto ref_bytes = attest::ReadFileBounded(reference_path, attest::kMaxReferenceValuesSize);
  if (!ref_bytes.ok()) return Usage(std::string(ref_bytes.status().message()));
  auto ref = attest::ParseReferenceValues(*ref_bytes);
  if (!ref.ok()) return Usage(std::string(ref.status().message()));
  o.reference = *ref;
  if (!roots_dir.empty()) {
    auto roots = attest::client::LoadRootsDir(roots_dir);
    if (!roots.ok()) return Usage(std::string(roots.status().message()));
    o.extra_snp_roots_der = std::move(roots->snp);
    o.extra_tdx_roots_der = std::move(roots->tdx);
    o.tdx_collateral = std::move(roots->tdx_collateral);
  }
  std::string predict_input;
  if (!predict.empty()) {
    if (predict.front() == '{' || predict.front() == '[') {
      predict_input = predict;
    } else {
      auto p = ReadText(predict, 1 << 20);
      if (!p.ok()) return Usage(std::string(p.status().message()));
      predict_input = *p;
    }
  }

  attest::CheckLog log;
  auto conn = attest::client::ConnectAttested(o, log);
  if (!conn.ok()) {
    if (as_json && attest::IsVerificationFailure(conn.status())) {
      json out = {{"verified", false},
                  {"error", std::string(conn.status().message())},
                  {"checks", attest::cli::ChecksToJson(log)}};
      std::printf("%s\n", out.dump(2).c_str());
    }
    if (absl::IsUnavailable(conn.status())) {
      std::fprintf(stderr, "appliance-verify connect: error: host unreachable: %s\n",
                   std::string(conn.status().message()).c_str());
      return 2;
    }
    return attest::cli::ReportFailure("connect", conn.status());
  }
  if (!evidence_out.empty()) {
    std::ofstream f(evidence_out, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(conn->evidence.data()),
            static_cast<std::streamsize>(conn->evidence.size()));
    if (!f.flush()) return Usage("cannot write " + evidence_out);
  }
  const auto& c = conn->claims;
  json claims = {
      {"platform", c.platform},
      {"snp_signer", c.snp_signer},
      {"measurement", attest::HexEncode(c.measurement)},
      {"launch_config_sha256", attest::HexEncode(c.launch_config_sha256)},
      {"container_digest", absl::StrCat("sha256:", attest::HexEncode(c.container_digest))},
      {"container_restarts", c.container_restarts},
      {"runtime_events", c.events},
      {"runtime_proof", c.runtime_proof},
      {"tpm_trust", c.tpm_trust},
      {"server_spki_sha256", attest::HexEncode(attest::client::PlainSha256(conn->server_spki_der))},
      {"supervisor_version", c.supervisor_version},
      {"release_version", c.release_version ? json(*c.release_version) : json(nullptr)},
      {"release_target_sha256",
       c.release_version ? json(attest::HexEncode(c.release_target_sha256)) : json(nullptr)},
      {"evidence_bytes", conn->evidence_bytes}};
  json out = {{"verified", true}, {"target", target}, {"claims", claims}};

  int rc = 0;
  if (!predict_input.empty()) {
    auto stub = appliance::v1::Inference::NewStub(conn->channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
    appliance::v1::PredictRequest req;
    req.set_input(predict_input);
    req.set_content_type("application/json");
    appliance::v1::PredictResponse resp;
    grpc::Status s = stub->Predict(&ctx, req, &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "appliance-verify connect: predict: %s: %s\n",
                   s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ? "RESOURCE_EXHAUSTED"
                   : s.error_code() == grpc::StatusCode::UNAVAILABLE      ? "UNAVAILABLE"
                                                                          : "failed",
                   s.error_message().c_str());
      out["prediction_error"] = s.error_message();
      rc = 1;
    } else {
      json p = json::parse(resp.output(), nullptr, false);
      out["prediction"] = p.is_discarded() ? json(resp.output()) : p;
    }
  }
  if (as_json) {
    out["checks"] = attest::cli::ChecksToJson(log);
    std::printf("%s\n", out.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    std::printf("attested %s\n", target.c_str());
    for (auto it = claims.begin(); it != claims.end(); ++it) {
      std::printf("  %-22s %s\n", it.key().c_str(),
                  it->is_string() ? it->get<std::string>().c_str() : it->dump().c_str());
    }
    if (out.contains("prediction"))
      std::printf("prediction %s\n", out["prediction"].dump().c_str());
  }
  return rc;
}
