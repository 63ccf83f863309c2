// appliance-verify evidence BUNDLE --nonce HEX --tls-spki FILE --launch-config FILE
//   --reference REF_JSON [--roots DIR] [--ak-ca PEM]... [--allow-vtpm-only] [--now RFC3339]
//   [--json]
// appliance-verify evidence BUNDLE --unbound [--reference REF_JSON] [--roots DIR] [--ak-ca PEM]...
//   [--allow-vtpm-only] [--now RFC3339] [--json]
//
// Issue 11's stable contract: one command for an appliance.v1.Evidence bundle from any platform
// (own host SNP/TDX, Azure's paravisor, Google Cloud with its vTPM AK certificate, AWS with a
// VLEK): it dispatches on the bundle's platform and applies that chain (attest/evidence.h). The
// bundle is the protobuf (as `appliance-verify connect --evidence-out` writes it) or its JSON
// mapping. Exit 0 verified; 1 a check failed (stderr names it and the values compared); 2 usage
// error or malformed input. `--unbound` verifies formats, signatures and chains only (real
// vectors carry no appliance binding) and says that the evidence is bound to no channel.
//
// A separate executable (appliance-verify execs it) so that the other offline commands stay free
// of protobuf and its start-up cost.
#include <google/protobuf/util/json_util.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <memory>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "appliance/v1/evidence.pb.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/verify_options.h"
#include "nlohmann/json.hpp"
#include "output.h"

namespace {

using nlohmann::json;

constexpr char kCommand[] = "evidence";

struct Args {
  std::string bundle, nonce, tls_spki, launch_config, reference, roots, now;
  std::vector<std::string> ak_ca;
  bool unbound = false, allow_vtpm_only = false, as_json = false;
};

// The bundle: protobuf bytes, or the JSON mapping when it starts with '{'.
absl::StatusOr<std::string> ReadBundle(const std::string& path) {
  ASSIGN_OR_RETURN(auto bytes, attest::cli::ReadInput(path, attest::kMaxEvidenceSize));
  std::string text(bytes.begin(), bytes.end());
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || text[first] != '{') return text;
  appliance::v1::Evidence ev;
  auto st = google::protobuf::util::JsonStringToMessage(text, &ev);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an appliance.v1.Evidence in JSON: ", st.message().as_string()));
  }
  return ev.SerializeAsString();
}

// The server key seen in the TLS handshake: a DER SubjectPublicKeyInfo, or PEM (PUBLIC KEY or
// CERTIFICATE), re-encoded as DER SubjectPublicKeyInfo by OpenSSL.
absl::StatusOr<std::vector<uint8_t>> ReadSpki(const std::string& path) {
  ASSIGN_OR_RETURN(auto bytes, attest::cli::ReadInput(path, 64 * 1024));
  const std::string text(bytes.begin(), bytes.end());
  if (text.find("-----BEGIN") == std::string::npos) return bytes;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(nullptr, EVP_PKEY_free);
  if (text.find("-----BEGIN CERTIFICATE") != std::string::npos) {
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
    if (cert) key.reset(X509_get_pubkey(cert.get()));
  } else {
    key.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  }
  if (!key) return absl::InvalidArgumentError(absl::StrCat(path, ": no public key in the PEM"));
  int n = i2d_PUBKEY(key.get(), nullptr);
  std::vector<uint8_t> der(static_cast<size_t>(n > 0 ? n : 0));
  uint8_t* p = der.data();
  if (n <= 0 || i2d_PUBKEY(key.get(), &p) != n) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot encode the public key"));
  }
  return der;
}

absl::Status Run(const Args& a, json& out) {
  if (!a.unbound &&
      (a.nonce.empty() || a.tls_spki.empty() || a.launch_config.empty() || a.reference.empty())) {
    return absl::InvalidArgumentError(
        "--nonce, --tls-spki, --launch-config and --reference are required (or --unbound for "
        "evidence bound to no channel)");
  }
  if (a.unbound && (!a.nonce.empty() || !a.tls_spki.empty() || !a.launch_config.empty())) {
    return absl::InvalidArgumentError(
        "--unbound checks no binding: --nonce, --tls-spki and --launch-config do not apply");
  }
  attest::EvidenceExpectations e;
  e.unbound = a.unbound;
  e.allow_vtpm_only = a.allow_vtpm_only;
  if (!a.nonce.empty()) {
    auto nonce = attest::HexDecode(a.nonce);
    if (!nonce.ok())
      return absl::InvalidArgumentError(absl::StrCat("--nonce: ", nonce.status().message()));
    e.nonce = *std::move(nonce);
  }
  if (!a.tls_spki.empty()) {
    ASSIGN_OR_RETURN(e.tls_spki_der, ReadSpki(a.tls_spki));
  }
  if (!a.launch_config.empty()) {
    ASSIGN_OR_RETURN(e.launch_config, attest::cli::ReadInput(a.launch_config, 1 << 20));
  }
  std::optional<attest::ReferenceValues> reference;
  if (!a.reference.empty()) {
    ASSIGN_OR_RETURN(auto bytes,
                     attest::cli::ReadInput(a.reference, attest::kMaxReferenceValuesSize));
    auto parsed = attest::ParseReferenceValues(bytes);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(a.reference, ": ", parsed.status().message()));
    }
    reference = *std::move(parsed);
    e.reference = &*reference;
  }
  if (!a.roots.empty()) {
    auto roots = attest::LoadRootsDir(a.roots);
    if (!roots.ok()) return absl::InvalidArgumentError(std::string(roots.status().message()));
    e.extra_snp_roots_der = roots->snp;
    e.extra_tdx_roots_der = roots->tdx;
    e.tdx_collateral = roots->tdx_collateral;
  }
  for (const auto& path : a.ak_ca) {
    ASSIGN_OR_RETURN(auto bytes, attest::cli::ReadInput(path, 1 << 20));
    auto certs = attest::ParseCertificates(bytes, path);
    if (!certs.ok()) return absl::InvalidArgumentError(std::string(certs.status().message()));
    for (auto& c : *certs) e.tpm_ak_roots_der.push_back(std::move(c));
  }
  if (!a.now.empty()) {
    auto now = attest::ParseRfc3339(a.now);
    if (!now.ok())
      return absl::InvalidArgumentError(absl::StrCat("--now: ", now.status().message()));
    e.now = *now;
  }
  ASSIGN_OR_RETURN(auto bundle, ReadBundle(a.bundle));
  attest::CheckLog log;
  auto v = attest::VerifyEvidence(
      std::span(reinterpret_cast<const uint8_t*>(bundle.data()), bundle.size()), e, log);
  if (!v.ok()) return v.status();
  out["bound"] = v->bound;
  out["platform"] = v->platform;
  out["tpm_trust"] = v->tpm_trust;
  out["runtime_proof"] = v->runtime_proof;
  out["measurement"] = attest::HexEncode(v->measurement);
  if (!v->snp_signer.empty()) out["snp_signer"] = v->snp_signer;
  if (!v->tcb_status.empty()) out["tcb_status"] = v->tcb_status;
  if (!v->ak_source.empty()) out["ak_source"] = v->ak_source;
  if (!v->ak_certificate.empty()) out["ak_certificate"] = v->ak_certificate;
  if (v->bound) {
    out["launch_config_sha256"] = attest::HexEncode(v->launch_config_sha256);
    out["container_digest"] = attest::HexEncode(v->container_digest);
    out["container_restarts"] = v->container_restarts;
    if (v->release_version) out["release_version"] = *v->release_version;
  }
  out["events"] = v->events;
  out["supervisor_version"] = v->supervisor_version;
  for (const auto& c : log.checks()) out["checks"].push_back(c.name);
  out["check_details"] = attest::cli::ChecksToJson(log);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{
      "appliance-verify evidence: verify an appliance.v1.Evidence bundle from any "
      "platform (SNP, TDX, Azure, Google Cloud, AWS)",
      "appliance-verify evidence"};
  app.add_option("BUNDLE", a.bundle, "appliance.v1.Evidence (protobuf, or its JSON mapping)")
      ->required();
  app.add_option("--nonce", a.nonce, "the nonce sent to the appliance, hex");
  app.add_option("--tls-spki", a.tls_spki,
                 "the server key seen in the TLS handshake (DER SubjectPublicKeyInfo, or PEM "
                 "public key or certificate)");
  app.add_option("--launch-config", a.launch_config,
                 "the launch configuration the appliance must run (exact bytes)");
  app.add_option("--reference", a.reference, "reference values (JSON, docs/reference-values.md)");
  app.add_option("--roots", a.roots,
                 "extra trust anchors: *.pem SEV-SNP, tdx_*.pem TDX, tdx-collateral/ (TDX)");
  app.add_option("--ak-ca", a.ak_ca,
                 "vTPM AK certificate CA (PEM, root and intermediates; e.g. Google's EK/AK CA)");
  app.add_flag("--allow-vtpm-only", a.allow_vtpm_only,
               "accept evidence whose only runtime proof is a host vTPM");
  app.add_option("--now", a.now, "verification time, RFC 3339 (default: the real clock)");
  app.add_flag("--unbound", a.unbound,
               "verify formats, signatures and chains only; the evidence is bound to no channel");
  app.add_flag("--json", a.as_json, "print the claims and every check as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  return attest::cli::RunChecked(
      kCommand, a.as_json, [&](json& out) { return Run(a, out); },
      [](const json& out) {
        if (!out["bound"].get<bool>()) {
          std::printf(
              "UNBOUND: formats, signatures and chains verified; this evidence is bound to no "
              "channel (no nonce, TLS key or runtime log was checked)\n");
        }
        std::printf("platform      %s\n", out["platform"].get<std::string>().c_str());
        std::printf("measurement   %s\n", out["measurement"].get<std::string>().c_str());
        if (out.contains("snp_signer")) {
          std::printf("snp signer    %s\n", out["snp_signer"].get<std::string>().c_str());
        }
        std::printf("vTPM          %s%s%s\n", out["tpm_trust"].get<std::string>().c_str(),
                    out.contains("ak_source") ? "; AK: " : "",
                    out.contains("ak_source") ? out["ak_source"].get<std::string>().c_str() : "");
        std::printf("runtime proof %s\n", out["runtime_proof"].get<std::string>().c_str());
        if (out.contains("container_digest")) {
          std::printf("container     sha256:%s\n",
                      out["container_digest"].get<std::string>().c_str());
        }
      });
}
