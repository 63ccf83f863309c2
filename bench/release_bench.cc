// The release channel's client-side costs (issue 8's benchmark), from one run:
//   a TUF update check (root, timestamp, snapshot, targets: parse, canonical JSON, four signature
//   thresholds, hashes, versions) with 1,000 targets, from a repository directory, against the raw
//   cost of what it needs: the four signature verifications and the SHA-256 + SHA-512 of the
//   snapshot and targets files it checks (OpenSSL, same run);
//   inclusion and consistency proof verification in a 1,000,000-leaf log against the raw cost of
//   the SHA-256 computations the proofs need;
//   a coordinator-supplied signed time (RFC 3161 response: parse, CMS signature, ESS certificate
//   id, TSA chain) against the two raw ECDSA P-256 verifications it needs.
#include <benchmark/benchmark.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "attest/merkle.h"
#include "attest/tuf/client.h"
#include "attest/tuf/metadata.h"
#include "attest/tuf/signed_time.h"
#include "bench_util.h"
#include "software_tsa.h"
#include "test_support.h"
#include "tuf_repo.h"

namespace {

namespace fs = std::filesystem;
using namespace attest;

struct Repo {
  testing::ScopedTempDir tmp;
  std::unique_ptr<testing::TufRepo> repo;
  std::string root;
  std::vector<uint8_t> snapshot, targets;
};

Repo& GetRepo() {
  // Destroyed at exit: its temporary directory goes with it.
  static std::unique_ptr<Repo> r = [] {
    auto r = std::make_unique<Repo>();
    r->repo = std::make_unique<testing::TufRepo>(r->tmp.path() / "repo");
    for (int i = 0; i < 1000; ++i) {
      r->repo->target_files[absl::StrCat("release-", i, ".raw")] = absl::StrCat("release ", i);
    }
    r->root = r->repo->PublishRoot();
    r->repo->PublishAll();
    r->snapshot = testing::ReadFileOrDie(r->repo->dir() / "snapshot.json");
    r->targets = testing::ReadFileOrDie(r->repo->dir() / "targets.json");
    return r;
  }();
  return *r;
}

void BM_TufUpdateCheck1000Targets(benchmark::State& state) {
  Repo& r = GetRepo();
  auto fetcher = tuf::MakeFileFetcher();
  testing::ScopedTempDir meta;
  auto root = std::span(reinterpret_cast<const uint8_t*>(r.root.data()), r.root.size());
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(meta.path() / "m");
    if (!tuf::Client::Init(meta.path() / "m", root).ok()) state.SkipWithError("init");
    state.ResumeTiming();
    tuf::Client c(meta.path() / "m", r.repo->dir().string(), fetcher.get());
    auto st = c.Refresh();
    if (!st.ok()) state.SkipWithError(std::string(st.message()).c_str());
    benchmark::DoNotOptimize(c.targets().targets.size());
  }
}

// What the update check cannot avoid: verifying the four roles' signatures (root's own check on
// init is not counted) and hashing the snapshot and targets files with SHA-256 and SHA-512.
void BM_RawSignaturesAndHashes(benchmark::State& state) {
  Repo& r = GetRepo();
  struct One {
    tuf::Key key;
    std::string message;
    std::vector<uint8_t> sig;
  };
  std::vector<One> ones;
  for (const char* f : {"1.root.json", "timestamp.json", "snapshot.json", "targets.json"}) {
    auto bytes = testing::ReadFileOrDie(r.repo->dir() / f);
    auto e = tuf::ParseEnvelope(bytes, std::string(f) == "1.root.json"      ? "root"
                                       : std::string(f) == "timestamp.json" ? "timestamp"
                                       : std::string(f) == "snapshot.json"  ? "snapshot"
                                                                            : "targets");
    const std::string role = e->type;
    const auto& k = r.repo->keys.at(role)[0];
    ones.push_back({*tuf::ParseKey(k.public_json()), e->canonical_signed, e->signatures[0].second});
  }
  for (auto _ : state) {
    for (const auto& o : ones) {
      auto st = tuf::VerifySignature(
          o.key, std::span(reinterpret_cast<const uint8_t*>(o.message.data()), o.message.size()),
          o.sig);
      benchmark::DoNotOptimize(st);
    }
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    static EVP_MD* const sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
    for (const auto* b : {&r.snapshot, &r.targets}) {
      uint8_t d[64];
      unsigned int n = 0;
      EVP_Digest(b->data(), b->size(), d, &n, sha256, nullptr);
      EVP_Digest(b->data(), b->size(), d, &n, sha512, nullptr);
      benchmark::DoNotOptimize(d);
    }
  }
}

constexpr uint64_t kLeaves = 1000000;

struct Log {
  merkle::Tree tree;
  merkle::Hash root, old_root;
  std::vector<std::vector<uint8_t>> inclusion, consistency;
  merkle::Hash leaf;
};

Log& GetLog() {
  static Log* l = [] {
    auto* l = new Log;
    for (uint64_t i = 0; i < kLeaves; ++i) {
      uint8_t data[8];
      for (int b = 0; b < 8; ++b) data[b] = static_cast<uint8_t>(i >> (8 * b));
      l->tree.Append(merkle::LeafHash(data));
    }
    l->root = *l->tree.Root(kLeaves);
    l->old_root = *l->tree.Root(kLeaves - 12345);
    uint8_t data[8];
    const uint64_t i = 777777;
    for (int b = 0; b < 8; ++b) data[b] = static_cast<uint8_t>(i >> (8 * b));
    l->leaf = merkle::LeafHash(data);
    const auto inclusion = l->tree.InclusionProof(i, kLeaves);
    const auto consistency = l->tree.ConsistencyProof(kLeaves - 12345, kLeaves);
    if (!inclusion.ok() || !consistency.ok()) std::abort();
    for (const auto& h : *inclusion) l->inclusion.emplace_back(h.begin(), h.end());
    for (const auto& h : *consistency) l->consistency.emplace_back(h.begin(), h.end());
    return l;
  }();
  return *l;
}

void BM_VerifyInclusion1M(benchmark::State& state) {
  Log& l = GetLog();
  for (auto _ : state) {
    auto st = merkle::VerifyInclusion(777777, kLeaves, l.leaf, l.inclusion, l.root);
    if (!st.ok()) state.SkipWithError("inclusion");
  }
}

void BM_VerifyConsistency1M(benchmark::State& state) {
  Log& l = GetLog();
  for (auto _ : state) {
    auto st =
        merkle::VerifyConsistency(kLeaves - 12345, kLeaves, l.consistency, l.old_root, l.root);
    if (!st.ok()) state.SkipWithError("consistency");
  }
}

// The node hashes a proof of n elements needs: n SHA-256 over 65 bytes (consistency: two roots,
// up to 2n), with a digest fetched once and one reused context: the cheapest way to compute them.
void RawNodeHashes(benchmark::State& state, int n) {
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  uint8_t buf[65] = {1};
  uint8_t out[32];
  for (auto _ : state) {
    for (int i = 0; i < n; ++i) {
      EVP_DigestInit_ex(ctx, sha256, nullptr);
      EVP_DigestUpdate(ctx, buf, sizeof(buf));
      EVP_DigestFinal_ex(ctx, out, nullptr);
      buf[1] = out[0];
    }
    benchmark::DoNotOptimize(out);
  }
  EVP_MD_CTX_free(ctx);
}
void BM_RawNodeHashes20(benchmark::State& state) { RawNodeHashes(state, 20); }
void BM_RawNodeHashes40(benchmark::State& state) { RawNodeHashes(state, 40); }

void BM_VerifySignedTime(benchmark::State& state) {
  static const testing::SoftwareTsa tsa;
  const auto tsr = tsa.Stamp(absl::Now());
  for (auto _ : state) {
    auto st = tuf::VerifySignedTime(tsr, tsa.root_pem());
    if (!st.ok()) state.SkipWithError("signed time");
    benchmark::DoNotOptimize(st);
  }
}

// Two ECDSA P-256 / SHA-256 verifications of short messages (the token's signature and the TSA
// certificate's), with the key parsed once: the floor of what verifying a time stamp costs.
void BM_RawTwoEcdsaVerifies(benchmark::State& state) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  const unsigned char msg[200] = {7};
  unsigned char sig[80];
  size_t sig_len = sizeof(sig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  EVP_DigestSign(ctx, sig, &sig_len, msg, sizeof(msg));
  for (auto _ : state) {
    for (int i = 0; i < 2; ++i) {
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key);
      if (EVP_DigestVerify(ctx, sig, sig_len, msg, sizeof(msg)) != 1) state.SkipWithError("ecdsa");
    }
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
}

BENCHMARK(BM_TufUpdateCheck1000Targets)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_VerifySignedTime)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RawTwoEcdsaVerifies)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RawSignaturesAndHashes)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_VerifyInclusion1M)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_VerifyConsistency1M)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RawNodeHashes20)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RawNodeHashes40)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  GetRepo();
  GetLog();
  bench::CollectingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto t = [&](const char* name) { return reporter.time(name); };
  Log& l = GetLog();
  std::printf("\nRelease channel client costs (one run; CPU time per operation):\n");
  const double check = t("BM_TufUpdateCheck1000Targets"), raw = t("BM_RawSignaturesAndHashes");
  std::printf(
      "  TUF update check, 1,000 targets %.2f ms  vs  its 4 raw signature verifies + SHA-256/512 "
      "of "
      "snapshot and targets %.2f ms: %.2fx\n",
      check, raw, check / raw);
  const double incl = t("BM_VerifyInclusion1M"), raw20 = t("BM_RawNodeHashes20");
  std::printf(
      "  inclusion proof in a 1,000,000-leaf log (%zu hashes) %.2f us  vs  20 raw SHA-256 node "
      "hashes %.2f us: %.2fx\n",
      l.inclusion.size(), incl, raw20, incl / raw20);
  const double cons = t("BM_VerifyConsistency1M"), raw40 = t("BM_RawNodeHashes40");
  std::printf(
      "  consistency proof %llu -> %llu (%zu hashes) %.2f us  vs  40 raw SHA-256 node hashes "
      "%.2f us: %.2fx\n",
      static_cast<unsigned long long>(kLeaves - 12345), static_cast<unsigned long long>(kLeaves),
      l.consistency.size(), cons, raw40, cons / raw40);
  const double signed_time = t("BM_VerifySignedTime"), raw_ecdsa = t("BM_RawTwoEcdsaVerifies");
  std::printf(
      "  signed time (RFC 3161 response, TSA chain) %.1f us  vs  2 raw ECDSA P-256 verifies %.1f "
      "us: %.2fx\n",
      signed_time, raw_ecdsa, signed_time / raw_ecdsa);
  return 0;
}
