#include "key_fetch.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "appliance/v1/service.grpc.pb.h"
#include "attest/client/tls.h"
#include "attest/encoding.h"
#include "attest/seal/key_wrap.h"
#include "attest/status.h"

namespace appliance::supervisor {
namespace {

// Accepts exactly the key service whose TLS key the launch configuration pins.
class PinnedServerVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  PinnedServerVerifier(std::array<uint8_t, 32> pin, std::shared_ptr<std::string> error)
      : pin_(pin), error_(std::move(error)) {}
  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    auto pem = request->peer_cert();
    auto id = attest::client::IdentityOfPemCertificate(absl::string_view(pem.data(), pem.size()));
    if (id.ok() && id->spki_sha256 == pin_) {
      *sync_status = grpc::Status::OK;
      return true;
    }
    const std::string why =
        id.ok() ? absl::StrCat("the key service presented TLS key SPKI sha256 ",
                               attest::HexEncode(id->spki_sha256),
                               ", the launch configuration pins ", attest::HexEncode(pin_))
                : absl::StrCat("the key service's certificate: ", id.status().message());
    {
      std::lock_guard<std::mutex> lock(mu_);
      *error_ = why;
    }
    *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, why);
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const std::array<uint8_t, 32> pin_;
  std::shared_ptr<std::string> error_;
  std::mutex mu_;
};

absl::Status FromGrpc(const grpc::Status& s, const std::string& what,
                      const std::string& tls_error) {
  if (s.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
      s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    return absl::PermissionDeniedError(absl::StrCat("key service refused: ", s.error_message()));
  }
  return absl::UnavailableError(
      absl::StrCat(what, ": ", tls_error.empty() ? s.error_message() : tls_error));
}

}  // namespace

absl::StatusOr<attest::seal::ModelKey> FetchModelKey(const KeyFetchRequest& r,
                                                     const KeyEvidenceBuilder& build_evidence) {
  auto tls_error = std::make_shared<std::string>();
  grpc::experimental::IdentityKeyCertPair pair{r.client_key_pem, r.client_cert_pem};
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      std::vector<grpc::experimental::IdentityKeyCertPair>{pair});
  grpc::experimental::TlsChannelCredentialsOptions opts;
  opts.set_certificate_provider(provider);
  opts.watch_identity_key_cert_pairs();
  opts.set_verify_server_certs(false);  // pinned by SPKI instead (PinnedServerVerifier)
  opts.set_check_call_host(false);
  opts.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<PinnedServerVerifier>(
          r.key_service_spki_sha256, tls_error));
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetSslTargetNameOverride("appliance-keyd");
  args.SetMaxReceiveMessageSize(64 << 10);
  auto channel =
      grpc::CreateCustomChannel(r.key_service, grpc::experimental::TlsCredentials(opts), args);
  appliance::v1::KeyRelease::Stub stub(channel);
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoSeconds(r.timeout);

  appliance::v1::KeyChallengeRequest creq;
  creq.set_model_id(r.model_id);
  appliance::v1::KeyChallengeResponse challenge;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    grpc::Status s = stub.Challenge(&ctx, creq, &challenge);
    if (!s.ok()) return FromGrpc(s, absl::StrCat("key service ", r.key_service), *tls_error);
  }
  if (challenge.nonce().size() != 32) {
    return absl::UnavailableError("key service: a challenge of the wrong size");
  }
  ASSIGN_OR_RETURN(auto request_key, attest::seal::KeyRequestKey::Generate());
  ASSIGN_OR_RETURN(std::string evidence, build_evidence(challenge.nonce(), request_key.spki_der()));

  appliance::v1::KeyReleaseRequest rreq;
  rreq.set_model_id(r.model_id);
  rreq.set_nonce(challenge.nonce());
  rreq.set_evidence(evidence);
  rreq.set_key_request_spki(request_key.spki_der().data(), request_key.spki_der().size());
  rreq.set_launch_config(r.launch_config.data(), r.launch_config.size());
  appliance::v1::KeyReleaseResponse released;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    grpc::Status s = stub.Release(&ctx, rreq, &released);
    if (!s.ok()) return FromGrpc(s, absl::StrCat("key service ", r.key_service), *tls_error);
  }
  attest::seal::WrappedKey wrapped;
  wrapped.ephemeral_spki_der.assign(released.ephemeral_spki().begin(),
                                    released.ephemeral_spki().end());
  wrapped.nonce.assign(released.wrap_nonce().begin(), released.wrap_nonce().end());
  wrapped.ciphertext.assign(released.wrapped_key().begin(), released.wrapped_key().end());
  return request_key.Unwrap(wrapped, r.model_id);
}

}  // namespace appliance::supervisor
