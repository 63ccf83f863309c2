// appliance-keyd: the store, the policy checks and the gRPC KeyRelease service (keyd.h).
#include "attest/keyd/keyd.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "appliance/v1/service.grpc.pb.h"
#include "attest/check.h"
#include "attest/client/attested_channel.h"
#include "attest/client/tls.h"
#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/files.h"
#include "attest/keyd/policy.h"
#include "attest/seal/key_file.h"
#include "attest/seal/key_wrap.h"
#include "attest/seal/sealed_image.h"
#include "attest/status.h"
#include "nlohmann/json.hpp"

namespace attest::keyd {
namespace {

namespace fs = std::filesystem;
using appliance::v1::KeyChallengeRequest;
using appliance::v1::KeyChallengeResponse;
using appliance::v1::KeyReleaseRequest;
using appliance::v1::KeyReleaseResponse;

constexpr size_t kNonceSize = 32;
constexpr size_t kMaxChallenges = 4096;
constexpr size_t kMaxModels = 1024;
constexpr size_t kMaxRequest = (1 << 20) + (300 << 10);  // evidence + launch config + the rest

std::string AsString(std::span<const uint8_t> b) { return std::string(b.begin(), b.end()); }
std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

fs::path ModelDir(const fs::path& store, const std::string& id) { return store / "models" / id; }

struct Model {
  ModelPolicy policy;
  ReferenceValues reference;
  seal::ModelKey key{};
  ~Model() { OPENSSL_cleanse(key.data(), key.size()); }
};

absl::StatusOr<std::unique_ptr<Model>> LoadModel(const fs::path& dir,
                                                 const std::string& passphrase) {
  auto m = std::make_unique<Model>();
  ASSIGN_OR_RETURN(auto policy_bytes, ReadFileBounded(dir / "policy.json", kMaxPolicySize));
  ASSIGN_OR_RETURN(m->policy, ParseModelPolicy(policy_bytes));
  if (m->policy.model_id != dir.filename().string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir.string(), ": the policy is for model '", m->policy.model_id, "'"));
  }
  ASSIGN_OR_RETURN(auto ref_bytes,
                   ReadFileBounded(dir / "reference-values.json", kMaxReferenceValuesSize));
  ASSIGN_OR_RETURN(m->reference, ParseReferenceValues(ref_bytes));
  std::string key_model;
  ASSIGN_OR_RETURN(m->key, seal::ReadModelKeyFile(dir / "key.json", passphrase, &key_model));
  if (key_model != m->policy.model_id) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir.string(), ": key.json holds the key of '", key_model, "'"));
  }
  return m;
}

// Writes `text` to `file` (mode 0600; `flags`: O_APPEND to add to it, O_EXCL to create it new) and
// syncs it before returning.
absl::Status WriteSynced(const fs::path& file, int flags, const std::string& text) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0600);
  if (fd < 0 && errno == EEXIST) {
    return absl::AlreadyExistsError(absl::StrCat(file.string(), ": exists"));
  }
  if (fd < 0) return absl::InternalError(absl::StrCat(file.string(), ": cannot open"));
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return absl::InternalError(absl::StrCat(file.string(), ": write failed"));
  return absl::OkStatus();
}

// The release log: one JSON object per line, appended and synced before the answer is sent.
class ReleaseLog {
 public:
  explicit ReleaseLog(fs::path path) : path_(std::move(path)) {}
  absl::Status Append(const nlohmann::json& entry) {
    std::lock_guard<std::mutex> lock(mu_);
    return WriteSynced(path_, O_APPEND, entry.dump() + "\n");
  }

 private:
  fs::path path_;
  std::mutex mu_;
};

class KeyReleaseService final : public appliance::v1::KeyRelease::Service {
 public:
  KeyReleaseService(const ServeOptions& o, std::map<std::string, std::unique_ptr<Model>> models)
      : opts_(o), models_(std::move(models)), log_(o.store / "release-log.jsonl") {}

  grpc::Status Challenge(grpc::ServerContext* ctx, const KeyChallengeRequest* req,
                         KeyChallengeResponse* resp) override {
    auto client = ClientKey(ctx);
    if (!client.ok())
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, client.status().ToString());
    if (!models_.contains(req->model_id())) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no model '", req->model_id(), "' in this key service"));
    }
    std::string nonce(kNonceSize, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), kNonceSize) != 1) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "no random bytes");
    }
    const absl::Time now = absl::Now();
    const absl::Time expires = now + opts_.challenge_ttl;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = challenges_.begin(); it != challenges_.end();) {
        it = it->second.expires < now ? challenges_.erase(it) : std::next(it);
      }
      if (challenges_.size() >= kMaxChallenges) {
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "too many open challenges; try again later");
      }
      challenges_[nonce] = Pending{client->spki_der, req->model_id(), expires};
    }
    resp->set_nonce(nonce);
    resp->set_expires_unix_seconds(absl::ToUnixSeconds(expires));
    return grpc::Status::OK;
  }

  grpc::Status Release(grpc::ServerContext* ctx, const KeyReleaseRequest* req,
                       KeyReleaseResponse* resp) override {
    const auto evidence = Bytes(req->evidence());
    nlohmann::json entry = {
        {"time", absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone())},
        {"model_id", req->model_id()},
        {"evidence_sha256", HexEncode(client::PlainSha256(evidence))}};
    auto refuse = [&](grpc::StatusCode code, const std::string& check, const std::string& detail) {
      entry["result"] = "refused";
      entry["check"] = check;
      entry["detail"] = detail;
      if (auto s = log_.Append(entry); !s.ok()) {
        return grpc::Status(grpc::StatusCode::INTERNAL, std::string(s.message()));
      }
      std::fprintf(stderr, "appliance-keyd: refused model '%s': %s: %s\n", req->model_id().c_str(),
                   check.c_str(), detail.c_str());
      return grpc::Status(code, absl::StrCat(check, ": ", detail));
    };
    auto client = ClientKey(ctx);
    if (!client.ok()) {
      return refuse(grpc::StatusCode::UNAUTHENTICATED, "client.certificate",
                    std::string(client.status().message()));
    }
    entry["client_spki_sha256"] = HexEncode(client->spki_sha256);
    auto model = models_.find(req->model_id());
    if (model == models_.end()) {
      return refuse(grpc::StatusCode::NOT_FOUND, "model", "no such model in this key service");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = challenges_.find(req->nonce());
      if (it == challenges_.end()) {
        return refuse(grpc::StatusCode::PERMISSION_DENIED, "challenge",
                      "the nonce is not an open challenge of this service (unknown or used)");
      }
      const Pending p = it->second;
      challenges_.erase(it);  // single use, whatever follows
      if (p.expires < absl::Now()) {
        return refuse(grpc::StatusCode::PERMISSION_DENIED, "challenge", "the challenge expired");
      }
      if (p.client_spki != client->spki_der || p.model_id != req->model_id()) {
        return refuse(grpc::StatusCode::PERMISSION_DENIED, "challenge",
                      "the challenge was issued to another client key or for another model");
      }
    }
    const Model& m = *model->second;
    CheckLog log;
    const auto launch_config = Bytes(req->launch_config());
    if (auto s = CheckLaunchConfig(m.policy, launch_config, log); !s.ok()) {
      return refuse(grpc::StatusCode::PERMISSION_DENIED, log.first_failure()->name,
                    log.first_failure()->detail);
    }
    EvidenceExpectations e =
        ExpectationsFor(m.policy, m.reference, Bytes(req->nonce()), client->spki_der,
                        Bytes(req->key_request_spki()), launch_config);
    if (!opts_.roots_dir.empty()) {
      auto roots = client::LoadRootsDir(opts_.roots_dir.string());
      if (!roots.ok()) {
        return refuse(grpc::StatusCode::INTERNAL, "roots", std::string(roots.status().message()));
      }
      e.extra_snp_roots_der = roots->snp;
      e.extra_tdx_roots_der = roots->tdx;
      e.tdx_collateral = roots->tdx_collateral;
    }
    if (req->key_request_spki().empty()) {
      return refuse(grpc::StatusCode::INVALID_ARGUMENT, "key-request", "no key-request key given");
    }
    auto verified = VerifyEvidence(evidence, e, log);
    if (!verified.ok()) {
      const Check* failed = log.first_failure();
      return refuse(absl::IsInvalidArgument(verified.status())
                        ? grpc::StatusCode::INVALID_ARGUMENT
                        : grpc::StatusCode::PERMISSION_DENIED,
                    failed ? failed->name : "evidence",
                    failed ? failed->detail : std::string(verified.status().message()));
    }
    if (auto s = CheckPlatform(m.policy, *verified, log); !s.ok()) {
      return refuse(grpc::StatusCode::PERMISSION_DENIED, "policy.platform",
                    log.first_failure()->detail);
    }
    auto wrapped =
        seal::WrapForKeyRequest(m.key, Bytes(req->key_request_spki()), m.policy.model_id);
    if (!wrapped.ok()) {
      return refuse(grpc::StatusCode::INVALID_ARGUMENT, "key-request",
                    std::string(wrapped.status().message()));
    }
    entry["result"] = "released";
    entry["platform"] = verified->platform;
    entry["measurement"] = HexEncode(verified->measurement);
    if (verified->release_version) entry["release_version"] = *verified->release_version;
    if (auto s = log_.Append(entry); !s.ok()) {
      return grpc::Status(grpc::StatusCode::INTERNAL, std::string(s.message()));
    }
    std::fprintf(stderr, "appliance-keyd: released model '%s' to %s evidence (client SPKI %s)\n",
                 req->model_id().c_str(), verified->platform.c_str(),
                 HexEncode(client->spki_sha256).c_str());
    resp->set_ephemeral_spki(AsString(wrapped->ephemeral_spki_der));
    resp->set_wrap_nonce(AsString(wrapped->nonce));
    resp->set_wrapped_key(AsString(wrapped->ciphertext));
    return grpc::Status::OK;
  }

 private:
  struct Pending {
    std::vector<uint8_t> client_spki;
    std::string model_id;
    absl::Time expires;
  };

  static absl::StatusOr<client::CertIdentity> ClientKey(grpc::ServerContext* ctx) {
    auto auth = ctx->auth_context();
    auto certs = auth ? auth->FindPropertyValues("x509_pem_cert") : std::vector<grpc::string_ref>{};
    if (certs.empty()) return absl::UnauthenticatedError("no client certificate");
    return client::IdentityOfPemCertificate(absl::string_view(certs[0].data(), certs[0].size()));
  }

  const ServeOptions& opts_;
  const std::map<std::string, std::unique_ptr<Model>> models_;
  ReleaseLog log_;
  std::mutex mu_;
  std::map<std::string, Pending> challenges_;
};

}  // namespace

absl::StatusOr<std::string> InitStore(const fs::path& store, const std::string& passphrase) {
  if (passphrase.size() < seal::kMinKeyPassphrase) {
    return absl::InvalidArgumentError(
        absl::StrCat("passphrase: at least ", seal::kMinKeyPassphrase, " characters"));
  }
  std::error_code ec;
  fs::create_directories(store / "models", ec);
  if (ec || ::chmod(store.c_str(), 0700) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(store.string(), ": cannot create it"));
  }
  if (fs::exists(store / "tls-key.pem")) {
    return absl::AlreadyExistsError(absl::StrCat(store.string(), " already has a TLS identity"));
  }
  ASSIGN_OR_RETURN(
      auto id, client::GenerateSelfSignedIdentity("appliance-keyd", absl::Hours(24 * 365 * 10)));
  ASSIGN_OR_RETURN(auto encrypted, client::EncryptPrivateKeyPem(id.key_pem, passphrase));
  OPENSSL_cleanse(id.key_pem.data(), id.key_pem.size());
  RETURN_IF_ERROR(WriteSynced(store / "tls-key.pem", O_EXCL, encrypted));
  RETURN_IF_ERROR(WriteSynced(store / "tls-cert.pem", O_EXCL, id.cert_pem));
  return HexEncode(client::PlainSha256(id.spki_der));
}

absl::Status AddModel(const fs::path& store, const std::string& passphrase,
                      const fs::path& key_file, const fs::path& policy_file,
                      const fs::path& reference_file, bool replace) {
  if (!fs::exists(store / "tls-key.pem")) {
    return absl::FailedPreconditionError(
        absl::StrCat(store.string(), " is not a key service store (appliance-keyd init)"));
  }
  ASSIGN_OR_RETURN(auto policy_bytes, ReadFileBounded(policy_file, kMaxPolicySize));
  ASSIGN_OR_RETURN(auto policy, ParseModelPolicy(policy_bytes));
  ASSIGN_OR_RETURN(auto ref_bytes, ReadFileBounded(reference_file, kMaxReferenceValuesSize));
  RETURN_IF_ERROR(ParseReferenceValues(ref_bytes).status());
  ASSIGN_OR_RETURN(auto key_bytes, ReadFileBounded(key_file, seal::kMaxKeyFile));
  std::string key_model;
  auto key = seal::DecryptModelKey(key_bytes, passphrase, &key_model);
  if (!key.ok()) {
    return absl::Status(key.status().code(),
                        absl::StrCat(key_file.string(), ": ", key.status().message(),
                                     " (the key file must be encrypted under the store's "
                                     "passphrase)"));
  }
  OPENSSL_cleanse(key->data(), key->size());
  if (key_model != policy.model_id) {
    return absl::InvalidArgumentError(absl::StrCat("the key file is for model '", key_model,
                                                   "', the policy for '", policy.model_id, "'"));
  }
  const fs::path dir = ModelDir(store, policy.model_id);
  if (fs::exists(dir) && !replace) {
    return absl::AlreadyExistsError(
        absl::StrCat("model '", policy.model_id, "' is already in the store (--replace)"));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir.string(), ": ", ec.message()));
  RETURN_IF_ERROR(WriteFileAtomically(dir / "key.json", std::span<const uint8_t>(key_bytes)));
  RETURN_IF_ERROR(WriteFileAtomically(dir / "policy.json", SerializeModelPolicy(policy)));
  RETURN_IF_ERROR(
      WriteFileAtomically(dir / "reference-values.json", std::span<const uint8_t>(ref_bytes)));
  return absl::OkStatus();
}

int Serve(const ServeOptions& o) {
  auto fail = [](const absl::Status& s) {
    std::fprintf(stderr, "appliance-keyd: %s\n", std::string(s.message()).c_str());
    return 1;
  };
  if (auto s = client::PinTls13Only(); !s.ok()) return fail(s);
  auto key_pem = ReadFileBounded(o.store / "tls-key.pem", 16 * 1024);
  auto cert_pem = ReadFileBounded(o.store / "tls-cert.pem", 16 * 1024);
  if (!key_pem.ok()) return fail(key_pem.status());
  if (!cert_pem.ok()) return fail(cert_pem.status());
  auto plain_key = client::DecryptPrivateKeyPem(
      absl::string_view(reinterpret_cast<const char*>(key_pem->data()), key_pem->size()),
      o.passphrase);
  if (!plain_key.ok()) return fail(plain_key.status());

  std::map<std::string, std::unique_ptr<Model>> models;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o.store / "models", ec)) {
    if (!e.is_directory()) continue;
    if (models.size() >= kMaxModels) return fail(absl::ResourceExhaustedError("too many models"));
    auto m = LoadModel(e.path(), o.passphrase);
    if (!m.ok()) {
      return fail(absl::Status(m.status().code(),
                               absl::StrCat(e.path().string(), ": ", m.status().message())));
    }
    models.emplace(e.path().filename().string(), *std::move(m));
  }
  if (ec)
    return fail(absl::NotFoundError(absl::StrCat(o.store.string(), "/models: ", ec.message())));
  const size_t n_models = models.size();

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  KeyReleaseService service(o, std::move(models));
  grpc::experimental::IdentityKeyCertPair pair{*plain_key,
                                               std::string(cert_pem->begin(), cert_pem->end())};
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      std::vector<grpc::experimental::IdentityKeyCertPair>{pair});
  OPENSSL_cleanse(plain_key->data(), plain_key->size());
  grpc::experimental::TlsServerCredentialsOptions topts(provider);
  topts.watch_identity_key_cert_pairs();
  // The client certificate is the appliance's self-signed TLS identity: it chains to nothing; the
  // evidence authenticates it (its SPKI is the binding's `tls-spki`). A client must present one
  // and prove its key in the handshake.
  topts.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(o.listen, grpc::experimental::TlsServerCredentials(topts), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxRequest));
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    return fail(absl::UnavailableError(absl::StrCat("cannot listen on ", o.listen)));
  }
  if (!o.port_file.empty()) {
    if (auto s = WriteFileAtomically(o.port_file, absl::StrCat(port, "\n")); !s.ok()) {
      return fail(s);
    }
  }
  std::fprintf(stderr,
               "appliance-keyd: serving %zu model(s) on %s (port %d), TLS 1.3, client "
               "certificates required\n",
               n_models, o.listen.c_str(), port);
  int sig = 0;
  sigwait(&set, &sig);
  std::fprintf(stderr, "appliance-keyd: stopping (signal %d)\n", sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace attest::keyd
