// The coordinator's attested channel (DESIGN §7, issue 5 item 10): TLS 1.3 with a client
// certificate to the supervisor, capture of the server key seen in the handshake, GetEvidence with
// a fresh 32-byte nonce on that same channel, verification of the evidence (VerifyEvidence) against
// reference values and the expected launch configuration; only then is the channel returned, pinned
// to that server key for its lifetime: a reconnect that presents another key fails its handshake,
// so no RPC reaches an unattested server. Re-attest with a new ConnectAttested.
//
// Only forward declarations of gRPC here; the implementation is in attested_channel.cc.
#ifndef ATTEST_CLIENT_ATTESTED_CHANNEL_H_
#define ATTEST_CLIENT_ATTESTED_CHANNEL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "attest/check.h"
#include "attest/evidence.h"

namespace grpc {
class Channel;
}

namespace attest::client {

struct ConnectOptions {
  std::string target;  // host:port
  std::string client_cert_pem;
  std::string client_key_pem;
  std::vector<uint8_t> launch_config;  // exact bytes expected
  ReferenceValues reference;
  bool allow_vtpm_only = false;
  std::vector<std::vector<uint8_t>> extra_snp_roots_der;
  std::vector<std::vector<uint8_t>> extra_tdx_roots_der;
  std::optional<tdx::Collateral> tdx_collateral;
  // The release channel's policy (EvidenceExpectations): minimum release, revoked releases.
  std::optional<uint64_t> min_release_version;
  std::set<uint64_t> revoked_releases;
  std::optional<std::array<uint8_t, 32>> client_revocations_sha256;  // EvidenceExpectations
  absl::Duration timeout = absl::Seconds(15);
};

// `--roots DIR` (attest/evidence.h).
using ::attest::LoadRootsDir;
using ::attest::RootsDir;

struct AttestedConnection {
  std::shared_ptr<grpc::Channel> channel;  // pinned to server_spki_der
  std::vector<uint8_t> server_spki_der;
  VerifiedEvidence claims;
  size_t evidence_bytes = 0;
  std::vector<uint8_t> evidence;  // the verified appliance.v1.Evidence, serialized
};

// Failures: UnavailableError when the host cannot be reached at all (TCP); VerificationFailed
// ("tls.handshake", "binding.*", "snp.*", "runtime.*", ...) when TLS authentication or attestation
// fails — including the server refusing our certificate — and nothing but GetEvidence was sent.
absl::StatusOr<AttestedConnection> ConnectAttested(const ConnectOptions& options, CheckLog& log);

// A plain mTLS channel without attestation (the benchmark's baseline); server key not checked.
std::shared_ptr<grpc::Channel> PlainMtlsChannel(const std::string& target,
                                                const std::string& client_cert_pem,
                                                const std::string& client_key_pem);

}  // namespace attest::client

#endif  // ATTEST_CLIENT_ATTESTED_CHANNEL_H_
