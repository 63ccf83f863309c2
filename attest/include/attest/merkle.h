// Merkle trees of a transparency log (RFC 6962 / RFC 9162 section 2.1, SHA-256): leaf and node
// hashes, the tree head, inclusion and consistency proofs — producing them (the release channel's
// log, appliance-release) and verifying them (appliance-verify, the supervisor's updater). Also
// the subtree proofs of draft-ietf-plants-merkle-tree-certs ([start, end) ranges), which
// generalise both.
//
// Verification is strict: every hash must be 32 bytes, a proof must have exactly the length the
// tree sizes imply (at most 64 elements), and a consistency proof from an empty tree is refused
// (it proves nothing). Every failure names what did not match.
#ifndef ATTEST_MERKLE_H_
#define ATTEST_MERKLE_H_

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace attest::merkle {

using Hash = std::array<uint8_t, 32>;
inline constexpr size_t kMaxProofLength = 64;

Hash LeafHash(std::span<const uint8_t> data);        // SHA-256(0x00 || data)
Hash NodeHash(const Hash& left, const Hash& right);  // SHA-256(0x01 || left || right)
Hash EmptyRoot();                                    // SHA-256("")

// A proof element or root from outside: must be exactly 32 bytes.
absl::StatusOr<Hash> ToHash(std::span<const uint8_t> bytes, const char* what);

// [start, end) is a subtree: start <= end, and start is 0, equal to end, or a multiple of
// BIT_CEIL(end - start).
bool IsValidSubtree(uint64_t start, uint64_t end);

absl::Status VerifyInclusion(uint64_t index, uint64_t tree_size, std::span<const uint8_t> leaf_hash,
                             const std::vector<std::vector<uint8_t>>& proof,
                             std::span<const uint8_t> root);
absl::Status VerifyConsistency(uint64_t size1, uint64_t size2,
                               const std::vector<std::vector<uint8_t>>& proof,
                               std::span<const uint8_t> root1, std::span<const uint8_t> root2);
// Leaf `index` of the subtree [start, end) whose hash is `subtree_root`.
absl::Status VerifySubtreeInclusion(uint64_t index, uint64_t start, uint64_t end,
                                    std::span<const uint8_t> leaf_hash,
                                    const std::vector<std::vector<uint8_t>>& proof,
                                    std::span<const uint8_t> subtree_root);
// The subtree [start, end) with hash `subtree_root` sits at those positions in the tree of
// `tree_size` leaves with root `root`.
absl::Status VerifySubtreeConsistency(uint64_t start, uint64_t end, uint64_t tree_size,
                                      const std::vector<std::vector<uint8_t>>& proof,
                                      std::span<const uint8_t> subtree_root,
                                      std::span<const uint8_t> root);

// An append-only tree of leaf hashes that produces heads and proofs. Every complete (power of two)
// subtree's hash is kept, so a root or a proof costs O(log² n) hashes.
class Tree {
 public:
  void Append(const Hash& leaf_hash);
  uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  // Hash of the subtree [start, end) (valid, end <= size()).
  absl::StatusOr<Hash> SubtreeHash(uint64_t start, uint64_t end) const;
  absl::StatusOr<Hash> Root(uint64_t tree_size) const;
  absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t tree_size) const;
  absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t size1, uint64_t size2) const;
  absl::StatusOr<std::vector<Hash>> SubtreeConsistencyProof(uint64_t start, uint64_t end,
                                                            uint64_t tree_size) const;

 private:
  Hash Mth(uint64_t start, uint64_t end) const;  // any range within size()
  void SubProof(uint64_t start, uint64_t end, uint64_t lo, uint64_t hi, bool whole_known,
                std::vector<Hash>& out) const;
  std::vector<std::vector<Hash>> levels_;  // levels_[l][i]: hash of [i·2^l, (i+1)·2^l)
};

}  // namespace attest::merkle

#endif  // ATTEST_MERKLE_H_
