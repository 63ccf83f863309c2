// Cloud evidence (issue 11): `appliance-verify evidence` on the real cloud vectors against its raw
// cryptographic floor, from one run:
//  1. Azure (HCL report + vTPM quote), chain already verified  vs  one raw ECDSA P-384 verify of
//     the SNP report plus one raw RSA-2048 PKCS#1 verify of the quote (OpenSSL, prepared keys);
//  2. AWS (VLEK report), chain already verified  vs  one raw ECDSA P-384 verify;
//  3. the command as a cold process on the Azure bundle  vs  `appliance-verify azure` on the same
//     evidence as the vector's JSON (the peer: the per-cloud command it generalizes).
// Bundles are assembled from ../shared/vectors at run time; without them the bench says so.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdio>

#include "attest/encoding.h"
#include "attest/evidence.h"
#include "attest/files.h"
#include "attest/snp/report.h"
#include "attest/snp/verify.h"
#include "attest/tpm/ak.h"
#include "attest/verify_options.h"
#include "bench_util.h"
#include "cloud_vectors.h"
#include "test_support.h"

namespace attest {
namespace {

namespace fs = std::filesystem;

struct Fixture {
  bool ok = false;
  fs::path vectors;
  std::string azure, aws;  // serialized bundles
};

Fixture& GetFixture() {
  static Fixture* f = [] {
    auto* out = new Fixture();
    auto dir = testing::VectorsDir();
    if (!dir) return out;
    out->vectors = *dir;
    out->azure = testing::AzureVectorBundle(*dir).SerializeAsString();
    out->aws = testing::AwsVectorBundle(*dir).SerializeAsString();
    out->ok = true;
    return out;
  }();
  return *f;
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

void VerifyUnbound(benchmark::State& state, const std::string& bundle, absl::Time now) {
  EvidenceExpectations e;
  e.unbound = true;
  e.now = now;
  for (auto _ : state) {
    CheckLog log;
    if (!VerifyEvidence(Bytes(bundle), e, log).ok()) state.SkipWithError("verification failed");
  }
}

void BM_AzureBundleVerify(benchmark::State& state) {
  if (!GetFixture().ok) return state.SkipWithError("no vectors");
  VerifyUnbound(state, GetFixture().azure, absl::Now());
}
void BM_AwsBundleVerify(benchmark::State& state) {
  if (!GetFixture().ok) return state.SkipWithError("no vectors");
  VerifyUnbound(state, GetFixture().aws, *ParseRfc3339("2025-06-01T00:00:00Z"));
}

// A prepared public-key verify of a precomputed digest.
struct RawVerify {
  std::unique_ptr<EVP_PKEY_CTX, void (*)(EVP_PKEY_CTX*)> ctx{nullptr, EVP_PKEY_CTX_free};
  std::vector<uint8_t> digest, signature;
  RawVerify(EVP_PKEY* key, const EVP_MD* md, std::span<const uint8_t> data,
            std::vector<uint8_t> sig)
      : signature(std::move(sig)) {
    digest.resize(static_cast<size_t>(EVP_MD_get_size(md)));
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), digest.data(), &n, md, nullptr);
    ctx.reset(EVP_PKEY_CTX_new(key, nullptr));
    EVP_PKEY_verify_init(ctx.get());
    EVP_PKEY_CTX_set_signature_md(ctx.get(), md);
  }
  bool Verify() const {
    return EVP_PKEY_verify(ctx.get(), signature.data(), signature.size(), digest.data(),
                           digest.size()) == 1;
  }
};

std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> CertKey(const std::vector<uint8_t>& der) {
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  EVP_PKEY* key = cert ? X509_get_pubkey(cert) : nullptr;
  X509_free(cert);
  return {key, EVP_PKEY_free};
}

RawVerify SnpRaw(const std::vector<uint8_t>& report_bytes, const std::vector<uint8_t>& vek_der) {
  auto report = snp::ParseReport(report_bytes);
  auto key = CertKey(vek_der);
  return RawVerify(key.get(), EVP_sha384(), report->signed_region, *snp::SignatureToDer(*report));
}

void BM_AzureRawFloor(benchmark::State& state) {
  if (!GetFixture().ok) return state.SkipWithError("no vectors");
  const fs::path d = GetFixture().vectors / "snp/genoa-azure-vtpm";
  auto vcek = ParseCertificates(testing::ReadFileOrDie(d / "vcek.pem"), "vcek");
  RawVerify snp = SnpRaw(testing::ReadFileOrDie(d / "snp_report.bin"), vcek->front());
  const auto runtime = testing::ReadFileOrDie(d / "runtime_data.json");
  auto ak = tpm::ParseAkJwk(
      absl::string_view(reinterpret_cast<const char*>(runtime.data()), runtime.size()), "HCLAkPub");
  RawVerify quote(ak->key.get(), EVP_sha256(), testing::ReadFileOrDie(d / "vtpm_quote.tpms_attest"),
                  testing::ReadFileOrDie(d / "vtpm_quote.sig"));
  for (auto _ : state) {
    if (!snp.Verify() || !quote.Verify()) state.SkipWithError("raw verify failed");
  }
}

void BM_AwsRawFloor(benchmark::State& state) {
  if (!GetFixture().ok) return state.SkipWithError("no vectors");
  const fs::path d = GetFixture().vectors / "snp/milan-aws-vlek";
  RawVerify snp =
      SnpRaw(testing::ReadFileOrDie(d / "report.bin"), testing::ReadFileOrDie(d / "vlek.der"));
  for (auto _ : state) {
    if (!snp.Verify()) state.SkipWithError("raw verify failed");
  }
}

BENCHMARK(BM_AzureBundleVerify)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AzureRawFloor)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AwsBundleVerify)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AwsRawFloor)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace attest

int main(int argc, char** argv) {
  using namespace attest;
  benchmark::Initialize(&argc, argv);
  bench::CollectingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto& f = GetFixture();
  std::printf("\nCloud evidence vs its raw cost (real vectors; CPU time per op, one run):\n");
  if (!f.ok) {
    std::printf("  skipped: no vectors (../shared/vectors or APPLIANCE_VECTORS)\n");
    return 0;
  }
  auto t = [&](const char* name) { return reporter.time(name); };
  const double az = t("BM_AzureBundleVerify"), az_raw = t("BM_AzureRawFloor");
  const double aws = t("BM_AwsBundleVerify"), aws_raw = t("BM_AwsRawFloor");
  std::printf(
      "  Azure bundle (HCL + vTPM quote), chain cached %.1f us  vs  raw P-384 + RSA-2048 verify "
      "%.1f us: %.2fx  [report]\n",
      az, az_raw, az / az_raw);
  std::printf(
      "  AWS bundle (VLEK report), chain cached %.1f us  vs  raw P-384 verify %.1f us: %.2fx  "
      "[report]\n",
      aws, aws_raw, aws / aws_raw);
  testing::ScopedTempDir dir;
  const fs::path bundle = dir.path() / "azure.evidence";
  testing::WriteFileOrDie(bundle, f.azure);
  const std::string verify = APPLIANCE_VERIFY_BIN;
  const double ours =
      bench::ProcessMillis({verify, "evidence", bundle.string(), "--unbound"}, 10, 0);
  const double peer = bench::ProcessMillis(
      {verify, "azure", (f.vectors / "snp/genoa-azure-vtpm/evidence.json").string(), "--nonce",
       "0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35"
       "d950f"},
      10, 0);
  std::printf(
      "  process: appliance-verify evidence --unbound %.2f ms  vs  appliance-verify azure (same "
      "evidence, vector JSON) %.2f ms: %.2fx  [report]\n",
      ours, peer, ours / peer);
  return 0;
}
