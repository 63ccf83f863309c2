// The release channel's transparency log (issue 8; RFC 6962/9162 hashing, attest/merkle.h): every
// published targets version is an entry; the log's signed checkpoint (tree head) is
//   {"signed": {"_type": "checkpoint", "log": "<log name>", "size": N, "root": "<hex>",
//               "timestamp": "YYYY-MM-DDTHH:MM:SSZ"},
//    "signatures": [{"keyid": "<TUF key id of the log key>", "sig": "<hex>"}]}
// signed like TUF metadata (canonical JSON of "signed"). An entry's leaf hash is the RFC 6962 leaf
// hash of its exact bytes. Proof files are {"index", "size", "proof": [hex...]} for inclusion and
// {"size1", "size2", "proof": [...]} for consistency.
#ifndef ATTEST_TLOG_H_
#define ATTEST_TLOG_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "attest/merkle.h"
#include "attest/tuf/metadata.h"

namespace attest::tlog {

inline constexpr size_t kMaxCheckpointSize = 16 * 1024;
inline constexpr size_t kMaxProofFileSize = 16 * 1024;

struct Checkpoint {
  std::string log;
  uint64_t size = 0;
  merkle::Hash root{};
  absl::Time timestamp;
};

// The checkpoint's "signed" object (what the log key signs).
nlohmann::json CheckpointSigned(const Checkpoint& c);

// Parses a checkpoint and checks the log key's signature ("tlog.checkpoint.signature").
absl::StatusOr<Checkpoint> VerifyCheckpoint(std::span<const uint8_t> bytes,
                                            const tuf::Key& log_key);

struct InclusionProof {
  uint64_t index = 0, size = 0;
  std::vector<std::vector<uint8_t>> proof;
};
struct ConsistencyProof {
  uint64_t size1 = 0, size2 = 0;
  std::vector<std::vector<uint8_t>> proof;
};
absl::StatusOr<InclusionProof> ParseInclusionProof(std::span<const uint8_t> bytes);
absl::StatusOr<ConsistencyProof> ParseConsistencyProof(std::span<const uint8_t> bytes);
std::string InclusionProofJson(uint64_t index, uint64_t size, const std::vector<merkle::Hash>& p);
std::string ConsistencyProofJson(uint64_t size1, uint64_t size2,
                                 const std::vector<merkle::Hash>& p);

// The entry is in the log that `checkpoint` heads ("tlog.inclusion").
absl::Status VerifyEntry(std::span<const uint8_t> entry, const InclusionProof& proof,
                         const Checkpoint& checkpoint);
// `newer` extends `older` ("tlog.consistency"): same log, not smaller, and the proof holds.
absl::Status VerifyExtends(const Checkpoint& older, const Checkpoint& newer,
                           const ConsistencyProof& proof);

}  // namespace attest::tlog

#endif  // ATTEST_TLOG_H_
