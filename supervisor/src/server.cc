// The daemon: startup order of DESIGN §6 (platform and vTPM, launch configuration, TLS key,
// container measurement and start, gRPC, readiness), the Attestation and Inference services,
// per-client limits, the audit log, and the container monitor (restart, re-measure, GOAWAY).
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-login.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "appliance/v1/service.grpc.pb.h"
#include "attest/azure/azure.h"
#include "attest/binding.h"
#include "attest/client/tls.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/files.h"
#include "attest/launch_config.h"
#include "attest/seal/sealed_image.h"
#include "attest/status.h"
#include "attest/tpm/eventlog.h"
#include "attest/tpm/hash_alg.h"
#include "attest/tuf/client_revocations.h"
#include "key_fetch.h"
#include "logging.h"
#include "nlohmann/json.hpp"
#include "supervisor.h"
#include "supervisor/azure_imds.h"
#include "supervisor/oci.h"
#include "supervisor/platform.h"
#include "supervisor/release_counter.h"
#include "supervisor/runner.h"
#include "supervisor/runtime_log.h"
#include "supervisor/systemd_runner.h"
#include "supervisor/tpm.h"

#ifndef APPLIANCE_VERSION
#define APPLIANCE_VERSION "0.0.0"
#endif

namespace appliance::supervisor {
namespace {

namespace fs = std::filesystem;
using appliance::v1::Evidence;
using appliance::v1::GetEvidenceRequest;
using appliance::v1::PredictRequest;
using appliance::v1::PredictResponse;
using Clock = std::chrono::steady_clock;

constexpr auto kModelReadyTimeout = std::chrono::seconds(20);
constexpr auto kMaxUpstreamDeadline = std::chrono::seconds(60);
constexpr size_t kNonceSize = 32;
constexpr size_t kMaxMessage = (1 << 20) + 4096;

std::string Hex(std::span<const uint8_t> b) { return attest::HexEncode(b); }

// ---- client identities ----------------------------------------------------------------------

struct Client {
  std::string subject;
  std::string spki_hex;  // SHA-256 of the SubjectPublicKeyInfo, hex
};

// The release channel's client-revocation list (DaemonOptions::client_revocations), re-read when
// the file changes.
class RevocationList {
 public:
  explicit RevocationList(fs::path path) : path_(std::move(path)) {}
  bool enabled() const { return !path_.empty(); }

  // Reads the file if it changed since the last read. The new list's SHA-256 when the list in
  // force changed; nullopt when not; an error when the file is unreadable or malformed (the list
  // in force stays, and the same file is not reported again).
  absl::StatusOr<std::optional<std::array<uint8_t, 32>>> Refresh() {
    struct stat st {};
    const bool exists = stat(path_.c_str(), &st) == 0;
    const Stamp stamp{exists, exists ? st.st_ino : 0, exists ? st.st_size : 0,
                      exists ? st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec : 0};
    if (stamp_ && *stamp_ == stamp) return std::nullopt;
    stamp_ = stamp;
    std::string bytes = attest::tuf::SerializeClientRevocations({});  // absent: none revoked
    if (exists) {
      ASSIGN_OR_RETURN(auto b,
                       attest::ReadFileBounded(path_, attest::tuf::kMaxClientRevocationsFile));
      bytes.assign(b.begin(), b.end());
    }
    const std::span<const uint8_t> view(reinterpret_cast<const uint8_t*>(bytes.data()),
                                        bytes.size());
    auto list = attest::tuf::ParseClientRevocations(view);
    if (!list.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_.string(), ": ", list.status().message()));
    }
    ASSIGN_OR_RETURN(auto digest, attest::tpm::Hash(attest::tpm::kAlgSha256, view));
    std::array<uint8_t, 32> d{};
    std::copy(digest.begin(), digest.end(), d.begin());
    std::lock_guard<std::mutex> lock(mu_);
    if (digest_ == d) return std::nullopt;
    digest_ = d;
    list_ = std::make_shared<const attest::tuf::ClientRevocations>(*std::move(list));
    return d;
  }

  absl::Status Check(const Client& c) const {
    std::shared_ptr<const attest::tuf::ClientRevocations> list;
    {
      std::lock_guard<std::mutex> lock(mu_);
      list = list_;
    }
    std::string reason;
    if (list && list->Revoked(c.spki_hex, &reason)) {
      return absl::PermissionDeniedError(
          absl::StrCat("client \"", c.subject, "\" (SPKI sha256 ", c.spki_hex,
                       ") is revoked by the release channel",
                       reason.empty() ? std::string() : absl::StrCat(": ", reason)));
    }
    return absl::OkStatus();
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return list_ ? list_->revoked.size() : 0;
  }

 private:
  struct Stamp {
    bool exists;
    ino_t inode;
    off_t size;
    int64_t mtime_ns;
    bool operator==(const Stamp&) const = default;
  };
  const fs::path path_;
  std::optional<Stamp> stamp_;  // Refresh runs on one thread at a time (Init, then Monitor)
  mutable std::mutex mu_;
  std::shared_ptr<const attest::tuf::ClientRevocations> list_;
  std::optional<std::array<uint8_t, 32>> digest_;
};

class Allowlist {
 public:
  Allowlist(const attest::LaunchConfig& cfg, const RevocationList* revocations)
      : allowed_(cfg.allowed_clients), revocations_(revocations) {}

  // Identity of a PEM client certificate if the launch configuration allows it and the release
  // channel has not revoked its key.
  absl::StatusOr<Client> Check(absl::string_view pem) const {
    ASSIGN_OR_RETURN(Client c, Allowed(pem));
    RETURN_IF_ERROR(revocations_->Check(c));
    return c;
  }

 private:
  absl::StatusOr<Client> Allowed(absl::string_view pem) const {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = cache_.find(std::string(pem)); it != cache_.end()) return it->second;
    }
    ASSIGN_OR_RETURN(auto id, attest::client::IdentityOfPemCertificate(pem));
    bool ok = false;
    for (const auto& a : allowed_) {
      const bool subject_ok = !a.subject || *a.subject == id.subject;
      const bool spki_ok = !a.spki_sha256 || *a.spki_sha256 == id.spki_sha256;
      ok = ok || (subject_ok && spki_ok);
    }
    if (!ok) {
      return absl::PermissionDeniedError(absl::StrCat("client \"", id.subject, "\" (SPKI sha256 ",
                                                      Hex(id.spki_sha256),
                                                      ") is not in the launch configuration's "
                                                      "allowed_clients"));
    }
    Client c{id.subject, Hex(id.spki_sha256)};
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() > 4096) cache_.clear();
    cache_.emplace(std::string(pem), c);
    return c;
  }

  std::vector<attest::AllowedClient> allowed_;
  const RevocationList* revocations_;
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, Client> cache_;
};

// Refuses, during the handshake, client certificates that chain to the CA but are not allowed.
class AllowlistVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit AllowlistVerifier(const Allowlist* allowlist) : allowlist_(allowlist) {}
  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    auto pem = request->peer_cert();
    auto client = allowlist_->Check(absl::string_view(pem.data(), pem.size()));
    if (!client.ok()) {
      LogEvent(Level::kWarning, "client-refused", std::string(client.status().message()));
      *sync_status =
          grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(client.status().message()));
    } else {
      *sync_status = grpc::Status::OK;
    }
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const Allowlist* allowlist_;
};

// ---- limits and audit -----------------------------------------------------------------------

class Limiter {
 public:
  Limiter(double rate, uint32_t burst, uint64_t budget)
      : rate_(rate), burst_(burst), budget_(budget) {}

  // Empty when admitted, else the reason for RESOURCE_EXHAUSTED.
  std::string Admit(const std::string& client) {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = Clock::now();
    auto [it, fresh] = buckets_.try_emplace(client, Bucket{static_cast<double>(burst_), now, 0});
    Bucket& b = it->second;
    if (budget_ != 0 && b.used >= budget_) {
      return absl::StrCat("query budget of ", budget_, " spent");
    }
    b.tokens = std::min<double>(
        burst_, b.tokens + rate_ * std::chrono::duration<double>(now - b.last).count());
    b.last = now;
    if (b.tokens < 1.0)
      return absl::StrCat("rate limit of ", rate_, " requests/s (burst ", burst_, ")");
    b.tokens -= 1.0;
    ++b.used;
    return "";
  }

 private:
  struct Bucket {
    double tokens;
    Clock::time_point last;
    uint64_t used;
  };
  const double rate_;
  const uint32_t burst_;
  const uint64_t budget_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

// Audit log of queries: who, when, which method, sizes and outcome — never content.
class Audit {
 public:
  explicit Audit(const fs::path& path) : f_(fopen(path.c_str(), "ae")) {}
  ~Audit() {
    if (f_) fclose(f_);
  }
  void Record(const Client& c, const char* method, size_t in, size_t out, grpc::StatusCode code,
              Clock::time_point start) {
    nlohmann::json j = {
        {"time", absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone())},
        {"client", c.subject},
        {"client_spki_sha256", c.spki_hex},
        {"method", method},
        {"request_bytes", in},
        {"response_bytes", out},
        {"status", static_cast<int>(code)},
        {"micros",
         std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()}};
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::lock_guard<std::mutex> lock(mu_);
    if (f_) {
      fputs(line.c_str(), f_);
      fflush(f_);
    }
  }

 private:
  std::mutex mu_;
  FILE* f_;
};

// ---- the daemon -----------------------------------------------------------------------------

class Daemon {
 public:
  explicit Daemon(DaemonOptions o) : opts_(std::move(o)) {}
  int Run();

  // State shared with the services.
  absl::StatusOr<Client> Authorize(grpc::CallbackServerContext* ctx) const;
  // `key_request`: the SPKI of a key-request key (key release), bound as "key-request".
  absl::StatusOr<Evidence> BuildEvidence(const std::string& nonce,
                                         const attest::client::TlsIdentity& id,
                                         const std::vector<uint8_t>& key_request = {});
  std::shared_ptr<appliance::v1::Inference::Stub> Model(std::string* why) const {
    std::lock_guard<std::mutex> lock(model_mu_);
    if (!model_stub_) *why = model_state_;
    return model_stub_;
  }
  Limiter& limiter() { return *limiter_; }
  Audit& audit() { return *audit_; }

 private:
  absl::Status Init();
  absl::Status LoadFirmwareEventLog();
  absl::Status LoadRelease();
  absl::Status ApplyRevocations(bool startup);
  absl::Status StartContainer(bool restart);
  absl::Status PrepareUnsealDir();
  void SealedModelWaiting(const absl::Status& s);
  absl::Status UnsealModel();
  void RemoveUnsealDir();
  absl::Status StartServer();
  void Monitor();
  void SetModelState(std::shared_ptr<appliance::v1::Inference::Stub> stub, std::string state);

  DaemonOptions opts_;
  std::vector<uint8_t> config_bytes_;
  std::vector<uint8_t> firmware_log_;  // the boot's TCG event log, or empty
  std::optional<std::pair<uint64_t, std::vector<uint8_t>>> release_;  // version, target SHA-256
  attest::LaunchConfig cfg_;
  std::string ca_pem_;
  std::unique_ptr<RevocationList> revocations_;
  std::unique_ptr<Allowlist> allowlist_;
  std::unique_ptr<Limiter> limiter_;
  std::unique_ptr<Audit> audit_;
  std::shared_ptr<Tpm> tpm_;
  std::unique_ptr<EvidenceProducer> producer_;
  std::string platform_;                              // cfg_.platform, or what "auto" probed
  std::shared_ptr<SoftwareRegister> software_rtmr3_;  // software-tdx: the simulated RTMR3
  std::unique_ptr<RuntimeLog> log_;
  std::mutex evidence_mu_;

  // Container: the image (container.image, or the unsealed layout of a sealed model) and where
  // its root file system is unpacked (the state directory, or the sealed model's tmpfs).
  fs::path container_image_;
  fs::path rootfs_parent_;
  fs::path unseal_dir_;          // sealed model: memory-backed, holds "oci" and "rootfs-N"
  bool unseal_mounted_ = false;  // unseal_dir_ is our own tmpfs mount
  bool model_available_ = true;  // false while a sealed model's key is missing
  std::unique_ptr<ModelRunner> runner_;
  std::optional<OciImage> image_;
  fs::path socket_dir_;
  uint32_t generation_ = 0;
  mutable std::mutex model_mu_;
  std::shared_ptr<appliance::v1::Inference::Stub> model_stub_;
  std::string model_state_ = "model container not measured yet";

  // Server (replaced on every container restart, with a fresh TLS key).
  std::mutex server_mu_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::CallbackGenericService> unused_;
  std::shared_ptr<const attest::client::TlsIdentity> identity_;  // the server's current key
  std::string listen_;
  int port_ = 0;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> watchdog_paused_{false};  // the watchdog test hook (Run)
};

class AttestationService final : public appliance::v1::Attestation::CallbackService {
 public:
  AttestationService(Daemon* d, std::shared_ptr<const attest::client::TlsIdentity> id)
      : d_(d), id_(std::move(id)) {}
  grpc::ServerUnaryReactor* GetEvidence(grpc::CallbackServerContext* ctx,
                                        const GetEvidenceRequest* req, Evidence* resp) override {
    auto* reactor = ctx->DefaultReactor();
    auto client = d_->Authorize(ctx);
    if (!client.ok()) {
      reactor->Finish(
          grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(client.status().message())));
      return reactor;
    }
    if (req->nonce().size() != kNonceSize) {
      reactor->Finish(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("nonce must be ", kNonceSize, " bytes, got ", req->nonce().size())));
      return reactor;
    }
    auto ev = d_->BuildEvidence(req->nonce(), *id_);
    if (!ev.ok()) {
      LogEvent(Level::kError, "evidence-failed", std::string(ev.status().message()));
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                   absl::StrCat("evidence: ", ev.status().message())));
      return reactor;
    }
    *resp = std::move(*ev);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  Daemon* d_;
  std::shared_ptr<const attest::client::TlsIdentity> id_;
};

class InferenceProxy final : public appliance::v1::Inference::CallbackService {
 public:
  explicit InferenceProxy(Daemon* d) : d_(d) {}

  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* ctx, const PredictRequest* req,
                                    PredictResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    const auto start = Clock::now();
    std::shared_ptr<appliance::v1::Inference::Stub> stub;
    Client client;
    if (grpc::Status s = Admit(ctx, &stub, &client); !s.ok()) {
      if (!client.spki_hex.empty())
        d_->audit().Record(client, "Predict", req->ByteSizeLong(), 0, s.error_code(), start);
      reactor->Finish(s);
      return reactor;
    }
    auto* upstream = new grpc::ClientContext();
    upstream->set_deadline(
        std::min(ctx->deadline(), std::chrono::system_clock::now() + kMaxUpstreamDeadline));
    stub->async()->Predict(
        upstream, req, resp,
        [this, reactor, upstream, stub, client, req, resp, start](grpc::Status s) {
          d_->audit().Record(client, "Predict", req->ByteSizeLong(), resp->ByteSizeLong(),
                             s.error_code(), start);
          delete upstream;
          reactor->Finish(s);
        });
    return reactor;
  }

  grpc::ServerWriteReactor<PredictResponse>* PredictStream(grpc::CallbackServerContext* ctx,
                                                           const PredictRequest* req) override;

  // Admission: an allowed client, a running model, within rate and budget.
  grpc::Status Admit(grpc::CallbackServerContext* ctx,
                     std::shared_ptr<appliance::v1::Inference::Stub>* stub, Client* client) {
    auto c = d_->Authorize(ctx);
    if (!c.ok())
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(c.status().message()));
    *client = *c;
    std::string why;
    *stub = d_->Model(&why);
    if (!*stub) return grpc::Status(grpc::StatusCode::UNAVAILABLE, why);
    if (std::string limit = d_->limiter().Admit(c->spki_hex); !limit.empty()) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, limit);
    }
    return grpc::Status::OK;
  }

  Daemon* daemon() const { return d_; }

 private:
  Daemon* d_;
};

// Server-streaming proxy: one reactor on each side; the server side writes what the upstream
// side reads, one message in flight. Deleted when both sides are done.
class StreamProxy : public grpc::ServerWriteReactor<PredictResponse>,
                    public grpc::ClientReadReactor<PredictResponse> {
 public:
  StreamProxy(InferenceProxy* proxy, grpc::CallbackServerContext* ctx, const PredictRequest* req)
      : start_(Clock::now()), proxy_(proxy), in_bytes_(req->ByteSizeLong()) {
    std::shared_ptr<appliance::v1::Inference::Stub> stub;
    grpc::Status s = proxy->Admit(ctx, &stub, &client_);
    if (!s.ok()) {
      upstream_done_ = true;
      Finish(s);
      return;
    }
    stub_ = stub;
    upstream_.set_deadline(
        std::min(ctx->deadline(), std::chrono::system_clock::now() + kMaxUpstreamDeadline));
    stub->async()->PredictStream(&upstream_, req, this);
    grpc::ClientReadReactor<PredictResponse>::StartRead(&msg_);
    StartCall();
  }

  // Upstream (client side). While a message is being written downstream, a hold keeps the
  // upstream call from completing (OnDone) so that the next StartRead is always legal.
  void OnReadDone(bool ok) override {
    if (ok) {
      out_bytes_ += msg_.ByteSizeLong();
      grpc::ClientReadReactor<PredictResponse>::AddHold();
      StartWrite(&msg_);
    }  // else: OnDone(status) follows
  }
  void OnDone(const grpc::Status& s) override {
    proxy_->daemon()->audit().Record(client_, "PredictStream", in_bytes_, out_bytes_,
                                     s.error_code(), start_);
    Finish(s);
    Release(/*upstream=*/true);
  }
  // Downstream (server side).
  void OnWriteDone(bool ok) override {
    if (ok) {
      grpc::ClientReadReactor<PredictResponse>::StartRead(&msg_);
    } else {
      upstream_.TryCancel();
    }
    grpc::ClientReadReactor<PredictResponse>::RemoveHold();
  }
  void OnCancel() override { upstream_.TryCancel(); }
  void OnDone() override { Release(/*upstream=*/false); }

 private:
  void Release(bool upstream) {
    bool both;
    {
      std::lock_guard<std::mutex> lock(mu_);
      (upstream ? upstream_done_ : downstream_done_) = true;
      both = upstream_done_ && downstream_done_;
    }
    if (both) delete this;
  }

  Clock::time_point start_;
  InferenceProxy* proxy_;
  Client client_;
  std::shared_ptr<appliance::v1::Inference::Stub> stub_;
  grpc::ClientContext upstream_;
  PredictResponse msg_;
  size_t in_bytes_ = 0, out_bytes_ = 0;
  std::mutex mu_;
  bool upstream_done_ = false, downstream_done_ = false;
};

grpc::ServerWriteReactor<PredictResponse>* InferenceProxy::PredictStream(
    grpc::CallbackServerContext* ctx, const PredictRequest* req) {
  return new StreamProxy(this, ctx, req);
}

absl::StatusOr<Client> Daemon::Authorize(grpc::CallbackServerContext* ctx) const {
  auto auth = ctx->auth_context();
  auto certs = auth ? auth->FindPropertyValues("x509_pem_cert") : std::vector<grpc::string_ref>{};
  if (certs.empty()) return absl::UnauthenticatedError("no client certificate");
  return allowlist_->Check(absl::string_view(certs[0].data(), certs[0].size()));
}

absl::StatusOr<Evidence> Daemon::BuildEvidence(const std::string& nonce,
                                               const attest::client::TlsIdentity& id,
                                               const std::vector<uint8_t>& key_request) {
  std::lock_guard<std::mutex> lock(evidence_mu_);
  Evidence ev;
  RETURN_IF_ERROR(log_->WithSnapshot([&](const std::string& cel) -> absl::Status {
    std::map<std::string, std::vector<uint8_t>> values = {
        {"nonce", std::vector<uint8_t>(nonce.begin(), nonce.end())},
        {"tls-spki", id.spki_der},
        {"runtime-log", std::vector<uint8_t>(cel.begin(), cel.end())}};
    if (tpm_) values["ak"] = tpm_->ak_public();
    if (!key_request.empty()) values["key-request"] = key_request;
    ASSIGN_OR_RETURN(auto binding, attest::Binding::FromValues(values));
    RETURN_IF_ERROR(producer_->Produce(binding.ReportData(), ev));
    if (tpm_) {
      const auto qd = binding.QualifyingData();
      ASSIGN_OR_RETURN(auto quote, tpm_->Quote(qd));
      auto* t = ev.mutable_tpm();
      t->set_attest(quote.attest.data(), quote.attest.size());
      t->set_signature(quote.signature.data(), quote.signature.size());
      t->set_ak_public(tpm_->ak_public().data(), tpm_->ak_public().size());
      if (!tpm_->ak_certificate().empty()) {
        t->add_ak_cert_chain_der(tpm_->ak_certificate().data(), tpm_->ak_certificate().size());
      }
      t->set_trust(cfg_.tpm_trust == "in_tcb" ? appliance::v1::TPM_TRUST_IN_TCB
                                              : appliance::v1::TPM_TRUST_HOST);
      for (const auto& [alg, pcrs] : quote.pcrs) {
        auto* bank = t->add_pcrs();
        bank->set_hash_alg(alg);
        for (const auto& [index, value] : pcrs) {
          (*bank->mutable_values())[index] = std::string(value.begin(), value.end());
        }
      }
    }
    ev.set_binding_version(attest::kBindingVersion);
    for (const auto& [label, digest] : binding.entries()) {
      auto* e = ev.add_binding();
      e->set_label(label);
      e->set_sha256(digest.data(), digest.size());
    }
    ev.set_runtime_event_log(cel);
    if (!firmware_log_.empty())
      ev.set_firmware_event_log(firmware_log_.data(), firmware_log_.size());
    ev.set_supervisor_version(APPLIANCE_VERSION);
    if (release_) {
      ev.mutable_release()->set_version(std::to_string(release_->first));
      ev.mutable_release()->set_target_sha256(release_->second.data(), release_->second.size());
    }
    return absl::OkStatus();
  }));
  return ev;
}

void Daemon::SetModelState(std::shared_ptr<appliance::v1::Inference::Stub> stub,
                           std::string state) {
  std::lock_guard<std::mutex> lock(model_mu_);
  model_stub_ = std::move(stub);
  model_state_ = std::move(state);
}

// The launch digest (SNP MEASUREMENT, TDX MRTD) of the software platforms: SHA-384 of this
// supervisor's executable (docs/reference-values.md).
absl::StatusOr<std::array<uint8_t, 48>> SoftwareLaunchDigest() {
  ASSIGN_OR_RETURN(auto exe, attest::ReadFileBounded("/proc/self/exe", 512u << 20));
  ASSIGN_OR_RETURN(auto digest, attest::tpm::Hash(attest::tpm::kAlgSha384, exe));
  std::array<uint8_t, 48> out{};
  std::copy(digest.begin(), digest.end(), out.begin());
  return out;
}

absl::Status Daemon::Init() {
  // 0. Private state directory.
  std::error_code ec;
  fs::create_directories(opts_.state_dir, ec);
  if (ec || chmod(opts_.state_dir.c_str(), 0700) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("state directory ", opts_.state_dir.string(), ": cannot create it"));
  }
  RETURN_IF_ERROR(attest::client::PinTls13Only());

  // 2 (read first: it names the platform). The launch configuration.
  ASSIGN_OR_RETURN(config_bytes_,
                   attest::ReadFileBounded(opts_.config_path, attest::kMaxLaunchConfigSize));
  ASSIGN_OR_RETURN(cfg_, attest::ParseLaunchConfig(config_bytes_));
  ASSIGN_OR_RETURN(ca_pem_, attest::CertificatesToPem(cfg_.client_ca_der));
  revocations_ = std::make_unique<RevocationList>(opts_.client_revocations);
  allowlist_ = std::make_unique<Allowlist>(cfg_, revocations_.get());
  limiter_ = std::make_unique<Limiter>(cfg_.requests_per_second, cfg_.burst, cfg_.query_budget);
  audit_ = std::make_unique<Audit>(opts_.state_dir / "audit.jsonl");

  RETURN_IF_ERROR(LoadRelease());

  // 1. Platform and vTPM. "auto": probed (Azure's paravisor, configfs-tsm, /dev/sev-guest).
  platform_ = cfg_.platform;
  if (platform_ == "auto") {
    std::unique_ptr<Tpm> probe_tpm;
    if (!cfg_.tcti.empty()) {
      ASSIGN_OR_RETURN(probe_tpm, Tpm::OpenWithoutAk(cfg_.tcti));
    }
    ASSIGN_OR_RETURN(platform_, ProbePlatform(probe_tpm.get()));
    LogEvent(Level::kInfo, "platform", absl::StrCat("platform auto: probed ", platform_));
  }
  if (!cfg_.tcti.empty()) {
    // Azure: the quote must come from the paravisor's AK, the one its HCL report names.
    std::optional<uint32_t> persistent_ak;
    if (platform_ == "azure") persistent_ak = attest::azure::kAkPersistentHandle;
    ASSIGN_OR_RETURN(auto tpm, Tpm::Open(cfg_.tcti, persistent_ak));
    tpm_ = std::move(tpm);
    LogEvent(Level::kInfo, "vtpm",
             absl::StrCat("vTPM open (", cfg_.tcti, "), trust ", cfg_.tpm_trust,
                          ", AK: ", tpm_->ak_origin()),
             {{"TPM_BANKS", std::to_string(tpm_->banks().size())}});
    RETURN_IF_ERROR(LoadFirmwareEventLog());
    if (release_) {
      // A release below the one committed on this vTPM (a disk reset to an older image): do not
      // serve it.
      RETURN_IF_ERROR(ReleaseCounter(*tpm_).CheckInstallable(release_->first));
    }
  }
  if (platform_ == "software-snp") {
    SoftwareSnpOptions so;
    ASSIGN_OR_RETURN(so.measurement, SoftwareLaunchDigest());
    so.host_data = cfg_.sha256;
    if (opts_.software_debug) so.policy |= 1ull << 19;
    so.roots_out_dir = opts_.software_roots_dir;
    so.rsa_bits = opts_.software_rsa_bits;
    so.vlek = opts_.software_vlek;
    ASSIGN_OR_RETURN(producer_, MakeSoftwareSnpProducer(so));
  } else if (platform_ == "software-tdx") {
    SoftwareTdxOptions to;
    ASSIGN_OR_RETURN(to.mrtd, SoftwareLaunchDigest());
    auto config384 = attest::tpm::Hash(attest::tpm::kAlgSha384, config_bytes_);
    if (!config384.ok()) return config384.status();
    std::copy(config384->begin(), config384->end(), to.mrconfigid.begin());
    software_rtmr3_ =
        std::make_shared<SoftwareRegister>(std::vector<uint16_t>{attest::tpm::kAlgSha384});
    to.rtmr3 = software_rtmr3_;
    to.debug = opts_.software_debug;
    to.roots_out_dir = opts_.software_roots_dir;
    ASSIGN_OR_RETURN(producer_, MakeSoftwareTdxProducer(to));
  } else if (platform_ == "snp") {
    ASSIGN_OR_RETURN(producer_, ProbeSnpProducer());
  } else if (platform_ == "tdx") {
    ASSIGN_OR_RETURN(producer_, MakeConfigfsTsmProducer("tdx_guest"));
  } else if (platform_ == "azure") {
    if (!tpm_) return absl::FailedPreconditionError("platform azure needs tpm.tcti (the vTPM)");
    if (cfg_.tpm_trust != "in_tcb") {
      return absl::FailedPreconditionError(
          "platform azure: the paravisor's vTPM is inside the trust boundary; tpm.trust must be "
          "in_tcb");
    }
    AzureOptions ao;
    ao.tpm = tpm_;
    auto imds = std::make_shared<AzureImds>(opts_.azure_imds);
    ao.td_quote_service = MakeImdsTdQuoteService(imds);  // used only when the report is TDX
    // The VCEK chain for an SNP HCL report: a file the operator placed, else THIM. Asked for only
    // when the report is SNP (MakeAzureProducer knows; a TD quote needs no VCEK).
    ao.snp_chain = [this, imds]() -> absl::StatusOr<std::vector<std::vector<uint8_t>>> {
      std::error_code ec;
      std::vector<std::vector<uint8_t>> certs;
      std::string source;
      if (fs::exists(opts_.azure_vcek, ec)) {  // VCEK, then optionally ASK and ARK (PEM)
        ASSIGN_OR_RETURN(auto bytes, attest::ReadFileBounded(opts_.azure_vcek, 64 * 1024));
        ASSIGN_OR_RETURN(certs, attest::ParseCertificates(bytes, opts_.azure_vcek.string()));
        source = opts_.azure_vcek.string();
      } else if (auto thim = imds->VcekChain(); thim.ok()) {
        certs = *std::move(thim);
        source = "THIM (" + opts_.azure_imds + ")";
      } else {
        LogEvent(
            Level::kWarning, "platform",
            absl::StrCat("Azure: no VCEK at ", opts_.azure_vcek.string(), " and none from THIM (",
                         thim.status().message(), "); evidence carries none (docs/cloud.md)"));
      }
      if (!certs.empty()) {
        LogEvent(Level::kInfo, "platform",
                 absl::StrCat("Azure: VCEK chain (", certs.size(), " certificates) from ", source));
      }
      return certs;
    };
    ASSIGN_OR_RETURN(producer_, MakeAzureProducer(std::move(ao)));
  } else if (platform_ == "vtpm-only") {
    if (!tpm_) return absl::FailedPreconditionError("platform vtpm-only needs tpm.tcti");
    producer_ = MakeVtpmOnlyProducer();
  } else {
    return absl::UnimplementedError(
        absl::StrCat("platform '", platform_, "' has no evidence producer in this build"));
  }
  LogEvent(Level::kInfo, "platform", absl::StrCat("evidence producer: ", producer_->name()));

  // Runtime log registers: PCR 15 of the vTPM (always extended; counted by verifiers only when
  // the vTPM is in the TCB), RTMR3 on TDX where the kernel offers it.
  std::vector<uint16_t> algs =
      tpm_ ? tpm_->banks()
           : std::vector<uint16_t>{attest::tpm::kAlgSha256, attest::tpm::kAlgSha384};
  std::vector<std::shared_ptr<MeasurementRegister>> regs;
  if (tpm_) regs.push_back(std::make_shared<TpmRegister>(tpm_, RuntimeLog::kRuntimePcr));
  if (platform_ == "tdx" || platform_ == "software-tdx") {
    if (std::find(algs.begin(), algs.end(), attest::tpm::kAlgSha384) == algs.end()) {
      algs.push_back(attest::tpm::kAlgSha384);
    }
  }
  if (software_rtmr3_) regs.push_back(software_rtmr3_);
  if (platform_ == "tdx") {
    auto rtmr = SysfsRtmrRegister::Create(SysfsRtmrRegister::kDefaultPath);
    if (rtmr.ok()) {
      regs.push_back(std::move(*rtmr));
    } else {
      LogEvent(Level::kWarning, "rtmr", std::string(rtmr.status().message()));
    }
  }
  log_ = std::make_unique<RuntimeLog>(algs, regs);
  // PCR 15 is reset only by a reboot: a supervisor restarted in the same boot continues the log
  // its predecessor saved, or refuses to run when PCR 15 holds events no log explains.
  bool restored = false;
  if (tpm_) {
    ASSIGN_OR_RETURN(auto pcr15, tpm_->ReadPcr(RuntimeLog::kRuntimePcr));
    bool zero = true;
    for (const auto& [alg, v] : pcr15) {
      for (uint8_t b : v) zero = zero && b == 0;
    }
    if (!zero) {
      auto saved =
          attest::ReadFileBounded(opts_.state_dir / "runtime-log.json", attest::tpm::kMaxCelSize);
      if (!saved.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("PCR 15 is not zero and no runtime log of this boot is saved (",
                         saved.status().message(), "): its events cannot be explained"));
      }
      RETURN_IF_ERROR(log_->Restore(std::string(saved->begin(), saved->end()), pcr15));
      auto records = log_->records();
      if (records.empty() || records[0].event != attest::kEventLaunchConfig ||
          records[0].data != std::vector<uint8_t>(cfg_.sha256.begin(), cfg_.sha256.end())) {
        return absl::FailedPreconditionError(
            "PCR 15 already measured another launch configuration in this boot");
      }
      restored = true;
    }
  }
  log_->set_persist_path((opts_.state_dir / "runtime-log.json").string());
  if (restored) {
    if (software_rtmr3_) {  // the simulated RTMR3 lives in this process: rebuild it from the log
      for (const auto& r : log_->records())
        RETURN_IF_ERROR(software_rtmr3_->Extend(r.index, r.digests));
    }
    ASSIGN_OR_RETURN(auto rec, log_->Append(attest::kEventSupervisorRestart, cfg_.sha256));
    LogEvent(Level::kWarning, "supervisor-restart", "continuing this boot's runtime log",
             {{"PCR", "15"}, {"RECORD", std::to_string(rec)}});
  } else {
    ASSIGN_OR_RETURN(auto rec, log_->Append(attest::kEventLaunchConfig, cfg_.sha256));
    LogEvent(Level::kInfo, "launch-config", "launch configuration measured",
             {{"LAUNCH_CONFIG_SHA256", Hex(cfg_.sha256)},
              {"PCR", "15"},
              {"RECORD", std::to_string(rec)}});
    if (release_) {
      const auto data = attest::ReleaseEventData(release_->first, release_->second);
      ASSIGN_OR_RETURN(rec, log_->Append(attest::kEventRelease, data));
      LogEvent(Level::kInfo, "release", "running release measured",
               {{"RELEASE_VERSION", std::to_string(release_->first)},
                {"TARGET_SHA256", Hex(release_->second)},
                {"PCR", "15"},
                {"RECORD", std::to_string(rec)}});
    }
  }

  RETURN_IF_ERROR(ApplyRevocations(/*startup=*/true));

  if (cfg_.container_runner == "systemd") {
    SystemdRunnerOptions so;
    // Test hook: another systemd's bus (e.g. one booted in a container); default the system bus.
    if (const char* bus = getenv("APPLIANCE_SYSTEMD_BUS"); bus != nullptr) {
      so.bus_address = bus;
    } else if (char* unit = nullptr; sd_pid_get_unit(0, &unit) >= 0) {
      so.bound_to = unit;  // our own unit: systemd stops the model whenever we go
      free(unit);
    }
    so.memory_max_bytes = cfg_.container_memory_max_mib << 20;
    so.cpu_quota_percent = cfg_.container_cpu_quota_percent;
    std::vector<std::string> stale;
    ASSIGN_OR_RETURN(runner_, MakeSystemdModelRunner(so, &stale));
    for (const auto& unit : stale) {
      LogEvent(Level::kWarning, "stale-container-stopped",
               absl::StrCat("stopped ", unit, ", left by an earlier supervisor process"));
    }
  } else {
    runner_ = MakeNamespaceModelRunner();
  }
  // Unpacked roots an earlier process of this boot left behind (their units were stopped above).
  for (const auto& e : fs::directory_iterator(opts_.state_dir, ec)) {
    if (absl::StartsWith(e.path().filename().string(), "rootfs-")) fs::remove_all(e.path(), ec);
  }
  socket_dir_ = opts_.state_dir / "model-socket";
  listen_ = cfg_.listen;
  container_image_ = cfg_.container_image;
  rootfs_parent_ = opts_.state_dir;
  if (cfg_.sealed_model) {
    model_available_ = false;
    RETURN_IF_ERROR(PrepareUnsealDir());
  }
  return absl::OkStatus();
}

// Measures (or re-measures) the container image, logs and extends its digest, unpacks it fresh
// and starts it; returns when the model answers on its socket.
// Read once: the firmware's log is complete when the kernel starts. It is not part of the
// binding; a verifier trusts it only as far as its replay equals PCRs of the quote.
absl::Status Daemon::LoadRelease() {
  if (opts_.release_file.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto bytes, attest::ReadFileBounded(opts_.release_file, 4096));
  auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        opts_.release_file.string(),
        ": {\"release_version\": N, \"target_sha256\": \"<64 hex digits>\"} expected"));
  };
  if (!j.is_object() || !j.contains("release_version") ||
      !j["release_version"].is_number_unsigned() || !j.contains("target_sha256") ||
      !j["target_sha256"].is_string()) {
    return bad();
  }
  auto target = attest::HexDecode(j["target_sha256"].get<std::string>());
  if (!target.ok() || target->size() != 32) return bad();
  release_.emplace(j["release_version"].get<uint64_t>(), *std::move(target));
  return absl::OkStatus();
}

absl::Status Daemon::LoadFirmwareEventLog() {
  fs::path path = opts_.firmware_event_log;
  if (path.empty()) {
    if (!absl::StartsWith(cfg_.tcti, "device:")) return absl::OkStatus();
    path = "/sys/kernel/security/tpm0/binary_bios_measurements";
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      LogEvent(Level::kWarning, "vtpm",
               absl::StrCat(path.string(), " is missing: evidence carries no firmware event log"));
      return absl::OkStatus();
    }
  }
  ASSIGN_OR_RETURN(firmware_log_, attest::ReadFileBounded(path, attest::tpm::kMaxEventLogSize));
  LogEvent(
      Level::kInfo, "vtpm",
      absl::StrCat("firmware event log ", path.string(), ": ", firmware_log_.size(), " bytes"));
  return absl::OkStatus();
}

absl::Status Daemon::StartContainer(bool restart) {
  ASSIGN_OR_RETURN(OciImage image, LoadOciImage(container_image_, opts_.state_dir));
  if (cfg_.container_digest && *cfg_.container_digest != image.manifest.sha256) {
    return absl::FailedPreconditionError(
        absl::StrCat("container.digest: image ", image.manifest.digest,
                     ", launch configuration expects sha256:", Hex(*cfg_.container_digest)));
  }
  ASSIGN_OR_RETURN(auto rec, log_->Append(restart ? attest::kEventContainerRestart
                                                  : attest::kEventContainerManifest,
                                          image.manifest.sha256));
  LogEvent(Level::kInfo, restart ? "container-restart" : "container-manifest",
           absl::StrCat("model container measured: ", image.manifest.digest, " (", image.blob_bytes,
                        " bytes verified)"),
           {{"CONTAINER_DIGEST", image.manifest.digest},
            {"PCR", "15"},
            {"RECORD", std::to_string(rec)}});
  const fs::path rootfs = rootfs_parent_ / absl::StrCat("rootfs-", ++generation_);
  std::error_code ec;
  fs::remove_all(rootfs, ec);
  RETURN_IF_ERROR(UnpackLayers(image, rootfs));
  if (generation_ > 1)
    fs::remove_all(rootfs_parent_ / absl::StrCat("rootfs-", generation_ - 1), ec);
  ContainerSpec spec;
  spec.rootfs = rootfs;
  spec.socket_dir = socket_dir_;
  spec.argv = image.argv;
  spec.env = image.env;
  spec.working_dir = image.working_dir.empty() ? "/" : image.working_dir;
  fs::remove(socket_dir_ / "model.sock", ec);
  RETURN_IF_ERROR(PrepareContainerDirs(spec, runner_->socket_access()));
  RETURN_IF_ERROR(runner_->Start(spec, generation_));
  image_ = std::move(image);

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(kMaxMessage) * 16);
  args.SetInt(GRPC_ARG_MINIMAL_STACK, 1);  // a local hop: no retries, no load balancing
  // The socket appears when the model is up: reconnect every 10-100 ms, not after gRPC's default
  // 1 s backoff (measured: up to a second of every start was spent waiting for the retry).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 10);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 10);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
  auto channel = grpc::CreateCustomChannel("unix:" + (socket_dir_ / "model.sock").string(),
                                           grpc::InsecureChannelCredentials(), args);
  const auto deadline = std::chrono::system_clock::now() + kModelReadyTimeout;
  while (!channel->WaitForConnected(
      std::min(deadline, std::chrono::system_clock::now() + std::chrono::milliseconds(200)))) {
    if (auto ended = runner_->WaitForExit(absl::ZeroDuration()); ended.ok()) {
      return absl::UnavailableError(absl::StrCat("model container ", *ended, " before it served"));
    }
    sigset_t pending;
    sigpending(&pending);
    const bool stop_requested =
        sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1;
    if (stop_requested || std::chrono::system_clock::now() > deadline) {
      runner_->Stop();
      return stop_requested
                 ? absl::CancelledError("stop requested while waiting for the model")
                 : absl::DeadlineExceededError("model container did not open its socket in time");
    }
  }
  SetModelState(std::make_shared<appliance::v1::Inference::Stub>(channel), "serving");
  LogEvent(Level::kInfo, "container-started",
           absl::StrCat("model container running (", runner_->name(), " runner, ",
                        runner_->Describe(), ")"));
  return absl::OkStatus();
}

// A sealed model's plaintext lives only in memory (issue 10, docs/sealed-model.md): a tmpfs of our
// own, `noswap` where the kernel has it (Linux >= 6.4), else a plain one; where this process may
// not mount (tests as an unprivileged user), a private directory in /dev/shm named after the
// state directory, so that a restarted supervisor finds and removes what its predecessor left.
absl::Status Daemon::PrepareUnsealDir() {
  const fs::path mine = opts_.state_dir / "sealed-model";
  std::error_code ec;
  ::umount2(mine.c_str(), MNT_DETACH);  // a predecessor's mount, if any
  fs::remove_all(mine, ec);
  fs::create_directories(mine, ec);
  if (ec || chmod(mine.c_str(), 0700) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(mine.string(), ": cannot create it"));
  }
  int mount_errno = 0;
  for (const char* options : {"mode=0700,noswap", "mode=0700"}) {
    if (::mount("tmpfs", mine.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options) == 0) {
      unseal_dir_ = mine;
      unseal_mounted_ = true;
      LogEvent(Level::kInfo, "sealed-model",
               absl::StrCat("plaintext goes to a tmpfs at ", mine.string(), " (", options, ")"));
      return absl::OkStatus();
    }
    mount_errno = errno;
    if (mount_errno != EINVAL) break;  // EINVAL: no noswap in this kernel; try without
  }
  fs::remove(mine, ec);
  const auto tag = attest::tpm::Hash(
      attest::tpm::kAlgSha256,
      std::span(reinterpret_cast<const uint8_t*>(fs::absolute(opts_.state_dir).c_str()),
                fs::absolute(opts_.state_dir).string().size()));
  if (!tag.ok()) return tag.status();
  const fs::path shm =
      fs::path("/dev/shm") / absl::StrCat("appliance-sealed-", Hex(*tag).substr(0, 16));
  fs::remove_all(shm, ec);
  fs::create_directories(shm, ec);
  if (ec || chmod(shm.c_str(), 0700) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("sealed model: cannot mount a tmpfs (",
                                                      strerror(mount_errno), ") and cannot create ",
                                                      shm.string()));
  }
  ASSIGN_OR_RETURN(bool memory, attest::seal::IsMemoryBacked(shm));
  if (!memory) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sealed model: cannot mount a tmpfs (", strerror(mount_errno), ") and ", shm.string(),
        " is not memory-backed: refusing to write the plaintext model there"));
  }
  unseal_dir_ = shm;
  LogEvent(Level::kWarning, "sealed-model",
           absl::StrCat("cannot mount a tmpfs (", strerror(mount_errno), "): plaintext goes to ",
                        shm.string(), " (memory-backed, but may be swapped)"));
  return absl::OkStatus();
}

void Daemon::RemoveUnsealDir() {
  if (unseal_dir_.empty()) return;
  std::error_code ec;
  if (unseal_mounted_) {
    ::umount2(unseal_dir_.c_str(), MNT_DETACH);  // drops every page of the plaintext
    fs::remove(unseal_dir_, ec);
  } else {
    fs::remove_all(unseal_dir_, ec);
  }
}

// DESIGN §6 step 4: the model key from the key service (evidence that binds its challenge, this
// server's TLS key and a fresh key-request key), the sealed layout decrypted and verified into the
// memory-backed directory, the key wiped. The container is measured from the plaintext after.
absl::Status Daemon::UnsealModel() {
  const auto& sm = *cfg_.sealed_model;
  std::shared_ptr<const attest::client::TlsIdentity> id;
  {
    std::lock_guard<std::mutex> lock(server_mu_);
    id = identity_;
  }
  KeyFetchRequest request;
  request.key_service = sm.key_service;
  request.key_service_spki_sha256 = sm.key_service_spki_sha256;
  request.model_id = sm.model_id;
  request.client_cert_pem = id->cert_pem;
  request.client_key_pem = id->key_pem;
  request.launch_config = config_bytes_;
  const auto started = Clock::now();
  // The key stays in this one object (no copy) and is wiped in place after the unseal.
  absl::StatusOr<attest::seal::ModelKey> fetched =
      FetchModelKey(request,
                    [&](const std::string& nonce,
                        const std::vector<uint8_t>& key_request) -> absl::StatusOr<std::string> {
                      ASSIGN_OR_RETURN(auto ev, BuildEvidence(nonce, *id, key_request));
                      return ev.SerializeAsString();
                    });
  if (!fetched.ok()) return fetched.status();
  attest::seal::ModelKey& key = *fetched;
  const auto released = Clock::now();
  const fs::path out = unseal_dir_ / "oci";
  std::error_code ec;
  fs::remove_all(out, ec);
  auto unsealed = attest::seal::UnsealLayout(sm.path, key, out);
  OPENSSL_cleanse(key.data(), key.size());
  if (!unsealed.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("unsealing ", sm.path, ": ", unsealed.status().message()));
  }
  if (unsealed->model_id != sm.model_id) {
    fs::remove_all(out, ec);
    return absl::FailedPreconditionError(absl::StrCat("the sealed layout is model '",
                                                      unsealed->model_id,
                                                      "', the launch "
                                                      "configuration names '",
                                                      sm.model_id, "'"));
  }
  container_image_ = out;
  rootfs_parent_ = unseal_dir_;
  model_available_ = true;
  const auto ms = [](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  LogEvent(Level::kInfo, "sealed-model",
           absl::StrCat("model key released by ", sm.key_service, " in ", ms(released - started),
                        " ms; ", unsealed->files, " files (", unsealed->plaintext_bytes,
                        " bytes) decrypted and verified into memory in ",
                        ms(Clock::now() - released), " ms; key wiped"),
           {{"MODEL_ID", sm.model_id}});
  return absl::OkStatus();
}

// The model is not available: the status says why, Predict answers UNAVAILABLE with it.
void Daemon::SealedModelWaiting(const absl::Status& s) {
  const std::string why =
      absl::IsPermissionDenied(s) ? absl::StrCat("sealed-model: key refused (", s.message(), ")")
      : absl::IsUnavailable(s)    ? absl::StrCat("sealed-model: no key (", s.message(), ")")
                                  : absl::StrCat("sealed-model: cannot unseal (", s.message(), ")");
  SetModelState(nullptr, why);
  LogEvent(Level::kError, "sealed-model-waiting", why);
  sd_notify(0, absl::StrCat("STATUS=", why).c_str());
}

// (Re)starts the gRPC server with a fresh TLS key. The old server, if any, is shut down after
// the new one listens: its connections get GOAWAY and clients must re-attest the new key.
absl::Status Daemon::StartServer() {
  ASSIGN_OR_RETURN(auto id, attest::client::GenerateSelfSignedIdentity("appliance-supervisor",
                                                                       absl::Hours(24 * 30)));
  auto identity = std::make_shared<const attest::client::TlsIdentity>(std::move(id));
  {
    std::lock_guard<std::mutex> lock(server_mu_);
    identity_ = identity;
  }
  grpc::experimental::IdentityKeyCertPair pair{identity->key_pem, identity->cert_pem};
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      ca_pem_, std::vector<grpc::experimental::IdentityKeyCertPair>{pair});
  grpc::experimental::TlsServerCredentialsOptions topts(provider);
  topts.watch_root_certs();
  topts.watch_identity_key_cert_pairs();
  topts.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  topts.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<AllowlistVerifier>(allowlist_.get()));

  std::vector<std::unique_ptr<grpc::Service>> services;
  services.push_back(std::make_unique<AttestationService>(this, identity));
  services.push_back(std::make_unique<InferenceProxy>(this));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int selected = 0;
  const std::string addr =
      port_ == 0 ? listen_ : absl::StrCat(listen_.substr(0, listen_.rfind(':')), ":", port_);
  builder.AddListeningPort(addr, grpc::experimental::TlsServerCredentials(topts), &selected);
  for (auto& s : services) builder.RegisterService(s.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxMessage));
  auto server = builder.BuildAndStart();
  if (!server || selected == 0)
    return absl::UnavailableError(absl::StrCat("cannot listen on ", addr));
  std::unique_ptr<grpc::Server> old;
  std::vector<std::unique_ptr<grpc::Service>> old_services;
  {
    std::lock_guard<std::mutex> lock(server_mu_);
    old = std::move(server_);
    old_services = std::move(services_);
    server_ = std::move(server);
    services_ = std::move(services);
    port_ = selected;
  }
  if (old) old->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  (void)attest::WriteFileAtomically(
      opts_.state_dir / "listen",
      absl::StrCat(listen_.substr(0, listen_.rfind(':')), ":", port_, "\n"));
  LogEvent(
      Level::kInfo, "listening",
      absl::StrCat("serving on ", listen_.substr(0, listen_.rfind(':')), ":", port_,
                   " (TLS 1.3, client certificates required), TLS key SPKI sha256 ",
                   Hex(attest::tpm::Hash(attest::tpm::kAlgSha256, identity->spki_der).value())));
  return absl::OkStatus();
}

// Applies the client-revocation list if it changed: logged (runtime event, PCR 15), then, once
// serving, a new TLS key so that every connection re-handshakes against it. At startup an
// unreadable or malformed list stops the supervisor (it must not serve clients the channel
// revoked); later the list in force stays and the error is logged.
absl::Status Daemon::ApplyRevocations(bool startup) {
  if (!revocations_->enabled()) return absl::OkStatus();
  auto changed = revocations_->Refresh();
  if (!changed.ok()) {
    if (startup) {
      return absl::FailedPreconditionError(
          absl::StrCat("client revocations: ", changed.status().message()));
    }
    LogEvent(Level::kError, "client-revocations-failed",
             absl::StrCat(changed.status().message(), "; the list in force stays"));
    return changed.status();
  }
  if (!*changed) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto rec, log_->Append(attest::kEventClientRevocations, **changed));
  LogEvent(Level::kInfo, "client-revocations",
           absl::StrCat(revocations_->size(), " revoked client keys applied"),
           {{"CLIENT_REVOCATIONS_SHA256", Hex(**changed)},
            {"PCR", "15"},
            {"RECORD", std::to_string(rec)}});
  if (!startup) {
    if (absl::Status s = StartServer(); !s.ok()) {
      LogEvent(Level::kError, "server-restart-failed", std::string(s.message()));
      return s;
    }
  }
  return absl::OkStatus();
}

void Daemon::Monitor() {
  int failures = 0;
  int key_attempts = 0;
  while (!stopping_) {
    (void)ApplyRevocations(/*startup=*/false);
    if (!model_available_) {
      // A sealed model without its key: ask again, 5 s doubling to 5 min.
      const auto until =
          Clock::now() + std::chrono::seconds(std::min(300, 5 << std::min(key_attempts++, 6)));
      while (!stopping_ && Clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (stopping_) return;
      if (absl::Status s = UnsealModel(); !s.ok()) {
        SealedModelWaiting(s);
        continue;
      }
      if (absl::Status s = StartContainer(/*restart=*/false); !s.ok()) {
        LogEvent(Level::kError, "container-start-failed", std::string(s.message()));
        SetModelState(nullptr, absl::StrCat("model container failed: ", s.message()));
        continue;
      }
      sd_notify(0, "STATUS=serving: sealed model unsealed, measured and running");
      LogEvent(Level::kInfo, "serving", "sealed model unsealed; measured and serving");
      continue;
    }
    // Watched by the runner (D-Bus signals, a pidfd); one-second slices let the loop see a stop.
    absl::StatusOr<std::string> ended = runner_->WaitForExit(absl::Seconds(1));
    if (stopping_) return;
    if (absl::IsDeadlineExceeded(ended.status())) continue;
    const std::string how = ended.ok() ? *ended
                            : absl::IsNotFound(ended.status())
                                ? std::string("not running")
                                : std::string(ended.status().message());
    SetModelState(nullptr, absl::StrCat("model container ", how, "; restarting"));
    LogEvent(Level::kWarning, "container-exit", absl::StrCat("model container ", how));
    sd_notify(0, "STATUS=model container restarting");
    const auto delay = std::chrono::milliseconds(std::min(30000, 250 << std::min(failures, 7)));
    const auto until = Clock::now() + delay;
    while (!stopping_ && Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (stopping_) return;
    const auto started = Clock::now();
    absl::Status s = StartContainer(/*restart=*/true);
    if (!s.ok()) {
      ++failures;
      LogEvent(Level::kError, "container-restart-failed", std::string(s.message()));
      SetModelState(nullptr, absl::StrCat("model container restart failed: ", s.message()));
      continue;
    }
    failures = Clock::now() - started > std::chrono::seconds(60) ? 0 : failures + 1;
    // New key, GOAWAY to every existing connection: clients re-attest the new runtime state.
    if (absl::Status ss = StartServer(); !ss.ok()) {
      LogEvent(Level::kError, "server-restart-failed", std::string(ss.message()));
    }
    sd_notify(0, "STATUS=serving (container restarted)");
  }
}

int Daemon::Run() {
  // Signals are taken by sigwait below: block them before any thread starts.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  // Test hook (the watchdog test, tests/integration/supervisor_unit_test.cc): with
  // APPLIANCE_TEST_WATCHDOG_HOOK=1 in its environment, SIGUSR1 stops this process's watchdog
  // pings, as a hung serving loop would; systemd's watchdog must then restart it.
  const bool watchdog_hook = getenv("APPLIANCE_TEST_WATCHDOG_HOOK") != nullptr;
  if (watchdog_hook) sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  if (absl::Status s = Init(); !s.ok()) {
    LogEvent(Level::kError, "startup-failed", std::string(s.message()));
    return 1;
  }
  // The server first: before the container is measured and running, Predict answers UNAVAILABLE.
  if (absl::Status s = StartServer(); !s.ok()) {
    LogEvent(Level::kError, "startup-failed", std::string(s.message()));
    return 1;
  }
  // A sealed model whose key is refused or unreachable leaves the supervisor up (attestable,
  // Predict UNAVAILABLE with the reason); Monitor retries.
  if (cfg_.sealed_model) {
    if (absl::Status s = UnsealModel(); !s.ok()) SealedModelWaiting(s);
  }
  if (model_available_) {
    if (absl::Status s = StartContainer(/*restart=*/false); !s.ok()) {
      LogEvent(Level::kError, "startup-failed", absl::StrCat("model container: ", s.message()));
      SetModelState(nullptr, absl::StrCat("model container failed: ", s.message()));
      std::lock_guard<std::mutex> lock(server_mu_);
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
      RemoveUnsealDir();
      return 1;
    }
    sd_notify(0, "READY=1\nSTATUS=serving: model container measured and running");
    LogEvent(Level::kInfo, "ready", "measured and serving");
  } else {
    sd_notify(0, "READY=1");  // up and attestable; STATUS names what is missing
    LogEvent(Level::kWarning, "ready", "up without a model: the sealed model's key is missing");
  }
  std::thread monitor([this] { Monitor(); });
  std::thread watchdog;
  uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) > 0) {
    watchdog = std::thread([this, watchdog_usec] {
      while (!stopping_) {
        if (!watchdog_paused_) sd_notify(0, "WATCHDOG=1");
        for (uint64_t t = 0; t < watchdog_usec / 2 && !stopping_; t += 50000) usleep(50000);
      }
    });
  }
  int sig = 0;
  while (sigwait(&set, &sig) == 0 && sig == SIGUSR1) {
    watchdog_paused_ = true;
    LogEvent(Level::kWarning, "watchdog-paused", "test hook: watchdog pings stopped (SIGUSR1)");
  }
  LogEvent(Level::kInfo, "stopping", absl::StrCat("signal ", sig));
  sd_notify(0, "STOPPING=1");
  stopping_ = true;
  {
    std::lock_guard<std::mutex> lock(server_mu_);
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  monitor.join();  // the runner is used by one thread at a time
  runner_->Stop();
  RemoveUnsealDir();
  if (watchdog.joinable()) watchdog.join();
  return 0;
}

}  // namespace

int RunDaemon(const DaemonOptions& options) {
  Daemon d(options);
  return d.Run();
}

}  // namespace appliance::supervisor
