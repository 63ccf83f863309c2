#include "attest/merkle.h"

#include <openssl/evp.h>

#include <bit>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"
#include "tpm/md_internal.h"

namespace attest::merkle {
namespace {

// One digest context per thread, reused: a proof is a few dozen small hashes, where allocating
// a context each time would cost as much as the hashing (release_bench).
Hash Sha256(std::initializer_list<std::span<const uint8_t>> parts) {
  struct Ctx {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Ctx() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Ctx c;
  Hash out{};
  EVP_DigestInit_ex(c.ctx, tpm::TpmAlgMd(tpm::kAlgSha256), nullptr);
  for (auto p : parts) EVP_DigestUpdate(c.ctx, p.data(), p.size());
  EVP_DigestFinal_ex(c.ctx, out.data(), nullptr);
  return out;
}

// The largest power of two smaller than n (n >= 2): where RFC 6962 splits a tree of n leaves.
uint64_t Split(uint64_t n) { return std::bit_floor(n - 1); }

absl::Status Fail(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("merkle: ", what));
}

// Proof elements are consumed from the back: the top of the tree's sibling is the last element.
struct Cursor {
  const std::vector<Hash>& proof;
  size_t remaining;
  absl::StatusOr<Hash> Pop() {
    if (remaining == 0) return Fail("the proof is too short for these tree sizes");
    return proof[--remaining];
  }
};

struct Pair {
  Hash subtree;  // the hash of [s, e) rebuilt from the proof
  Hash root;     // the hash of the whole range [0, size)
};

// Mirrors how the proof was made (Tree::SubProof): walks from the range [0, size) down to the
// subtree [s, e), taking one sibling per level; where the subtree spans a split (s == 0), the
// left sibling is part of both hashes and the right part continues without a known node.
absl::StatusOr<Pair> Walk(uint64_t s, uint64_t e, uint64_t size, bool known, const Hash& node,
                          Cursor& c) {
  if (s == 0 && e == size) {
    if (known) return Pair{node, node};
    ASSIGN_OR_RETURN(Hash x, c.Pop());
    return Pair{x, x};
  }
  const uint64_t k = Split(size);
  ASSIGN_OR_RETURN(Hash sibling, c.Pop());
  if (e <= k) {
    ASSIGN_OR_RETURN(Pair p, Walk(s, e, k, known, node, c));
    return Pair{p.subtree, NodeHash(p.root, sibling)};
  }
  if (s >= k) {
    ASSIGN_OR_RETURN(Pair p, Walk(s - k, e - k, size - k, known, node, c));
    return Pair{p.subtree, NodeHash(sibling, p.root)};
  }
  // s < k < e: a valid subtree spanning the split starts at 0.
  ASSIGN_OR_RETURN(Pair p, Walk(0, e - k, size - k, false, node, c));
  return Pair{NodeHash(sibling, p.subtree), NodeHash(sibling, p.root)};
}

absl::StatusOr<std::vector<Hash>> ToHashes(const std::vector<std::vector<uint8_t>>& proof) {
  if (proof.size() > kMaxProofLength) {
    return Fail(
        absl::StrCat("a proof of ", proof.size(), " elements (at most ", kMaxProofLength, ")"));
  }
  std::vector<Hash> out;
  for (size_t i = 0; i < proof.size(); ++i) {
    if (proof[i].size() != 32) {
      return Fail(absl::StrCat("proof element ", i, " has ", proof[i].size(), " bytes, not 32"));
    }
    Hash h;
    std::copy(proof[i].begin(), proof[i].end(), h.begin());
    out.push_back(h);
  }
  return out;
}

// The core check: [start, end) (hash `node`, known) in the tree of `size` leaves with `root`.
absl::Status Check(uint64_t start, uint64_t end, uint64_t size, const std::vector<Hash>& proof,
                   const Hash& node, const Hash& root) {
  Cursor c{proof, proof.size()};
  ASSIGN_OR_RETURN(Pair p, Walk(start, end, size, true, node, c));
  if (c.remaining != 0) {
    return Fail(absl::StrCat("the proof has ", proof.size(), " elements, ", c.remaining,
                             " more than these tree sizes need"));
  }
  if (p.subtree != node) {
    return Fail(absl::StrCat("the proof rebuilds the old tree or subtree hash ",
                             HexEncode(p.subtree), ", expected ", HexEncode(node)));
  }
  if (p.root != root) {
    return Fail(absl::StrCat("the proof leads to root ", HexEncode(p.root), ", expected ",
                             HexEncode(root)));
  }
  return absl::OkStatus();
}

}  // namespace

Hash LeafHash(std::span<const uint8_t> data) {
  const uint8_t prefix = 0;
  return Sha256({std::span(&prefix, 1), data});
}

Hash NodeHash(const Hash& left, const Hash& right) {
  const uint8_t prefix = 1;
  return Sha256({std::span(&prefix, 1), left, right});
}

Hash EmptyRoot() { return Sha256({}); }

absl::StatusOr<Hash> ToHash(std::span<const uint8_t> bytes, const char* what) {
  if (bytes.size() != 32) {
    return Fail(absl::StrCat(what, " has ", bytes.size(), " bytes, not 32"));
  }
  Hash h;
  std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

bool IsValidSubtree(uint64_t start, uint64_t end) {
  if (start > end) return false;
  if (start == 0 || start == end) return true;
  const uint64_t n = end - start;
  if (n > (uint64_t{1} << 63)) return false;  // BIT_CEIL would overflow; start must be 0
  return start % std::bit_ceil(n) == 0;
}

absl::Status VerifyInclusion(uint64_t index, uint64_t tree_size, std::span<const uint8_t> leaf_hash,
                             const std::vector<std::vector<uint8_t>>& proof,
                             std::span<const uint8_t> root) {
  if (index >= tree_size) {
    return Fail(absl::StrCat("leaf index ", index, " is not below the tree size ", tree_size));
  }
  ASSIGN_OR_RETURN(Hash leaf, ToHash(leaf_hash, "the leaf hash"));
  ASSIGN_OR_RETURN(Hash r, ToHash(root, "the root"));
  ASSIGN_OR_RETURN(auto p, ToHashes(proof));
  return Check(index, index + 1, tree_size, p, leaf, r);
}

absl::Status VerifyConsistency(uint64_t size1, uint64_t size2,
                               const std::vector<std::vector<uint8_t>>& proof,
                               std::span<const uint8_t> root1, std::span<const uint8_t> root2) {
  if (size1 == 0) return Fail("a consistency proof from the empty tree proves nothing");
  if (size1 > size2) {
    return Fail(absl::StrCat("tree size ", size2, " is smaller than the earlier size ", size1));
  }
  ASSIGN_OR_RETURN(Hash r1, ToHash(root1, "the first root"));
  ASSIGN_OR_RETURN(Hash r2, ToHash(root2, "the second root"));
  ASSIGN_OR_RETURN(auto p, ToHashes(proof));
  return Check(0, size1, size2, p, r1, r2);
}

absl::Status VerifySubtreeInclusion(uint64_t index, uint64_t start, uint64_t end,
                                    std::span<const uint8_t> leaf_hash,
                                    const std::vector<std::vector<uint8_t>>& proof,
                                    std::span<const uint8_t> subtree_root) {
  if (!IsValidSubtree(start, end)) {
    return Fail(absl::StrCat("[", start, ", ", end, ") is not a valid subtree"));
  }
  if (index < start || index >= end) {
    return Fail(
        absl::StrCat("leaf index ", index, " is outside the subtree [", start, ", ", end, ")"));
  }
  return VerifyInclusion(index - start, end - start, leaf_hash, proof, subtree_root);
}

absl::Status VerifySubtreeConsistency(uint64_t start, uint64_t end, uint64_t tree_size,
                                      const std::vector<std::vector<uint8_t>>& proof,
                                      std::span<const uint8_t> subtree_root,
                                      std::span<const uint8_t> root) {
  if (!IsValidSubtree(start, end)) {
    return Fail(absl::StrCat("[", start, ", ", end, ") is not a valid subtree"));
  }
  if (end > tree_size) {
    return Fail(
        absl::StrCat("the subtree [", start, ", ", end, ") ends past the tree size ", tree_size));
  }
  ASSIGN_OR_RETURN(Hash node, ToHash(subtree_root, "the subtree hash"));
  if (start == end) {  // the empty subtree: its hash is the empty tree's, and nothing to prove
    if (!proof.empty()) return Fail("a proof for an empty subtree must be empty");
    if (node != EmptyRoot()) return Fail("the empty subtree's hash is not the empty tree's");
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(Hash r, ToHash(root, "the root"));
  ASSIGN_OR_RETURN(auto p, ToHashes(proof));
  return Check(start, end, tree_size, p, node, r);
}

void Tree::Append(const Hash& leaf_hash) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(leaf_hash);
  for (size_t l = 0; levels_[l].size() % 2 == 0; ++l) {
    if (levels_.size() == l + 1) levels_.emplace_back();
    const auto& below = levels_[l];
    levels_[l + 1].push_back(NodeHash(below[below.size() - 2], below[below.size() - 1]));
  }
}

Hash Tree::Mth(uint64_t start, uint64_t end) const {
  const uint64_t n = end - start;
  if (n == 0) return EmptyRoot();
  if (std::has_single_bit(n) && start % n == 0) {
    const int level = std::countr_zero(n);
    return levels_[level][start / n];
  }
  const uint64_t k = Split(n);
  return NodeHash(Mth(start, start + k), Mth(start + k, end));
}

absl::StatusOr<Hash> Tree::SubtreeHash(uint64_t start, uint64_t end) const {
  if (!IsValidSubtree(start, end) || end > size()) {
    return Fail(
        absl::StrCat("[", start, ", ", end, ") is not a subtree of this ", size(), "-leaf tree"));
  }
  return Mth(start, end);
}

absl::StatusOr<Hash> Tree::Root(uint64_t tree_size) const {
  if (tree_size > size()) {
    return Fail(absl::StrCat("no head for ", tree_size, " leaves: the tree has ", size()));
  }
  return Mth(0, tree_size);
}

void Tree::SubProof(uint64_t start, uint64_t end, uint64_t lo, uint64_t hi, bool whole_known,
                    std::vector<Hash>& out) const {
  if (start == lo && end == hi) {
    if (!whole_known) out.push_back(Mth(lo, hi));
    return;
  }
  const uint64_t k = lo + Split(hi - lo);
  if (end <= k) {
    SubProof(start, end, lo, k, whole_known, out);
    out.push_back(Mth(k, hi));
  } else if (start >= k) {
    SubProof(start, end, k, hi, whole_known, out);
    out.push_back(Mth(lo, k));
  } else {
    SubProof(k, end, k, hi, false, out);
    out.push_back(Mth(lo, k));
  }
}

absl::StatusOr<std::vector<Hash>> Tree::InclusionProof(uint64_t index, uint64_t tree_size) const {
  if (tree_size > size() || index >= tree_size) {
    return Fail(absl::StrCat("no inclusion proof for leaf ", index, " in ", tree_size,
                             " leaves (the tree has ", size(), ")"));
  }
  std::vector<Hash> out;
  SubProof(index, index + 1, 0, tree_size, true, out);
  return out;
}

absl::StatusOr<std::vector<Hash>> Tree::ConsistencyProof(uint64_t size1, uint64_t size2) const {
  if (size1 == 0 || size1 > size2 || size2 > size()) {
    return Fail(absl::StrCat("no consistency proof from ", size1, " to ", size2,
                             " leaves (the tree has ", size(), ")"));
  }
  std::vector<Hash> out;
  SubProof(0, size1, 0, size2, true, out);
  return out;
}

absl::StatusOr<std::vector<Hash>> Tree::SubtreeConsistencyProof(uint64_t start, uint64_t end,
                                                                uint64_t tree_size) const {
  if (!IsValidSubtree(start, end) || end > tree_size || tree_size > size()) {
    return Fail(absl::StrCat("no proof for [", start, ", ", end, ") in ", tree_size, " leaves"));
  }
  std::vector<Hash> out;
  if (start != end) SubProof(start, end, 0, tree_size, true, out);
  return out;
}

}  // namespace attest::merkle
