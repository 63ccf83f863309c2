#include "evidence_fetch.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "appliance/v1/service.grpc.pb.h"
#include "appliance_fixture.h"
#include "attest/client/attested_channel.h"

namespace attest::testing {

absl::StatusOr<std::string> FetchEvidence(const std::string& target, const IssuedCert& client,
                                          const std::vector<uint8_t>& nonce) {
  auto channel = client::PlainMtlsChannel(target, client.cert_pem, client.key_pem);
  auto stub = appliance::v1::Attestation::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  appliance::v1::GetEvidenceRequest req;
  req.set_nonce(nonce.data(), nonce.size());
  appliance::v1::Evidence ev;
  grpc::Status s = stub->GetEvidence(&ctx, req, &ev);
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat("GetEvidence: ", s.error_message()));
  }
  return ev.SerializeAsString();
}

}  // namespace attest::testing
