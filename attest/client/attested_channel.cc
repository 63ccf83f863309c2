#include "attest/client/attested_channel.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "appliance/v1/service.grpc.pb.h"
#include "attest/client/tls.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tdx/collateral.h"

namespace attest::client {
namespace {

// Pins the server key: the first handshake's SPKI is recorded, every later handshake must
// present the same key.
class PinningVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  struct State {
    std::mutex mu;
    std::vector<uint8_t> pinned;
    std::string last_error;
  };
  explicit PinningVerifier(std::shared_ptr<State> state) : state_(std::move(state)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    auto pem = request->peer_cert();
    auto id = IdentityOfPemCertificate(absl::string_view(pem.data(), pem.size()));
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!id.ok()) {
      state_->last_error = absl::StrCat("server certificate: ", id.status().message());
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, state_->last_error);
      return true;
    }
    if (state_->pinned.empty()) {
      state_->pinned = id->spki_der;
    } else if (state_->pinned != id->spki_der) {
      state_->last_error = absl::StrCat("server key changed: attested SPKI sha256 ",
                                        HexEncode(PlainSha256(state_->pinned)), ", presented ",
                                        HexEncode(id->spki_sha256), "; re-attest");
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, state_->last_error);
      return true;
    }
    *sync_status = grpc::Status::OK;
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  std::shared_ptr<State> state_;
};

std::shared_ptr<grpc::Channel> MakeChannel(
    const std::string& target, const std::string& cert_pem, const std::string& key_pem,
    std::shared_ptr<grpc::experimental::CertificateVerifier> verifier) {
  grpc::experimental::IdentityKeyCertPair pair{key_pem, cert_pem};
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      std::vector<grpc::experimental::IdentityKeyCertPair>{pair});
  grpc::experimental::TlsChannelCredentialsOptions opts;
  opts.set_certificate_provider(provider);
  opts.watch_identity_key_cert_pairs();
  // The server certificate is self-signed over a key generated in the appliance: it is
  // authenticated by the evidence that binds its SPKI, not by a CA.
  opts.set_verify_server_certs(false);
  opts.set_check_call_host(false);
  opts.set_certificate_verifier(std::move(verifier));
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // never share a connection across channels
  // SNI: the name the supervisor's self-signed certificate carries (its address is not in it).
  args.SetSslTargetNameOverride("appliance-supervisor");
  args.SetMaxReceiveMessageSize(4 << 20);
  return grpc::CreateCustomChannel(target, grpc::experimental::TlsCredentials(opts), args);
}

// A TCP connect, to tell "host unreachable" (exit 2) from a TLS refusal (exit 1).
absl::Status ProbeTcp(const std::string& target, absl::Duration timeout) {
  const auto colon = target.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("target must be HOST:PORT");
  std::string host = target.substr(0, colon), port = target.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return absl::UnavailableError(absl::StrCat(target, ": ", gai_strerror(rc)));
  }
  std::string error = "no address";
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) == 1 ? 0 : -1;
      int err = 0;
      socklen_t len = sizeof(err);
      if (rc == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)) {
        errno = err;
        rc = -1;
      } else if (rc != 0) {
        errno = ETIMEDOUT;
      }
    }
    if (rc == 0) {
      close(fd);
      freeaddrinfo(res);
      return absl::OkStatus();
    }
    error = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(res);
  return absl::UnavailableError(absl::StrCat(target, ": ", error));
}

}  // namespace

std::shared_ptr<grpc::Channel> PlainMtlsChannel(const std::string& target,
                                                const std::string& client_cert_pem,
                                                const std::string& client_key_pem) {
  return MakeChannel(target, client_cert_pem, client_key_pem,
                     std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
}

absl::StatusOr<AttestedConnection> ConnectAttested(const ConnectOptions& o, CheckLog& log) {
  RETURN_IF_ERROR(PinTls13Only());
  RETURN_IF_ERROR(ProbeTcp(o.target, o.timeout));
  auto state = std::make_shared<PinningVerifier::State>();
  auto channel =
      MakeChannel(o.target, o.client_cert_pem, o.client_key_pem,
                  grpc::experimental::ExternalCertificateVerifier::Create<PinningVerifier>(state));

  std::vector<uint8_t> nonce(32);
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  appliance::v1::GetEvidenceRequest req;
  req.set_nonce(nonce.data(), nonce.size());
  appliance::v1::Evidence ev;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(absl::ToInt64Milliseconds(o.timeout)));
  ctx.set_wait_for_ready(false);
  auto stub = appliance::v1::Attestation::NewStub(channel);
  grpc::Status s = stub->GetEvidence(&ctx, req, &ev);
  std::vector<uint8_t> spki;
  std::string verifier_error;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    spki = state->pinned;
    verifier_error = state->last_error;
  }
  if (!s.ok()) {
    if (spki.empty() || s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      return log.Fail("tls.handshake",
                      absl::StrCat("no attested TLS 1.3 session with ", o.target, ": ",
                                   verifier_error.empty() ? s.error_message() : verifier_error,
                                   " (the server may have refused our client certificate)"));
    }
    return log.Fail("evidence.request", absl::StrCat("GetEvidence: ", s.error_message()));
  }
  log.Pass("tls.handshake",
           absl::StrCat("TLS 1.3, server SPKI sha256 ", HexEncode(PlainSha256(spki))));

  const std::string bytes = ev.SerializeAsString();
  EvidenceExpectations e;
  e.nonce = nonce;
  e.tls_spki_der = spki;
  e.launch_config = o.launch_config;
  e.reference = &o.reference;
  e.allow_vtpm_only = o.allow_vtpm_only;
  e.min_release_version = o.min_release_version;
  e.revoked_releases = o.revoked_releases;
  e.client_revocations_sha256 = o.client_revocations_sha256;
  e.extra_snp_roots_der = o.extra_snp_roots_der;
  e.extra_tdx_roots_der = o.extra_tdx_roots_der;
  e.tdx_collateral = o.tdx_collateral;
  ASSIGN_OR_RETURN(
      auto claims,
      VerifyEvidence(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), e,
                     log));
  AttestedConnection out;
  out.channel = std::move(channel);
  out.server_spki_der = std::move(spki);
  out.claims = std::move(claims);
  out.evidence_bytes = bytes.size();
  out.evidence.assign(bytes.begin(), bytes.end());
  return out;
}

}  // namespace attest::client
