// Intel TDX quote verification cost against its raw cryptographic floor (issue 4):
//  1. verify one quote with collateral, PCK chain and collateral signatures cached
//       vs  the two raw ECDSA P-256 verifies it still needs (QE report, quote);
//  2. the same without a cache
//       vs  those two + the PCK chain (leaf, PCK CA), the TCB Signing certificate and the
//           TCB info / QE identity signatures (seven P-256 verifies in all).
// Uses the real go-tdx-guest quote and its FMSPC's collateral when ../shared/vectors is present,
// else a quote and collateral from the SoftwareTdxSigner.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "attest/files.h"
#include "attest/tdx/quote.h"
#include "attest/tdx/verify.h"
#include "bench_util.h"
#include "common/openssl_util.h"
#include "tdx_signer.h"
#include "test_support.h"

namespace {

using namespace attest;  // NOLINT: benchmark-local brevity

std::string Text(const std::filesystem::path& p) {
  auto b = testing::ReadFileOrDie(p);
  return std::string(b.begin(), b.end());
}

struct Fixture {
  std::string source;
  std::vector<uint8_t> quote;
  tdx::Options options;  // no cache
};

Fixture& GetFixture() {
  static Fixture f = [] {
    Fixture f;
    tdx::Collateral c;
    if (auto v = testing::VectorsDir()) {
      f.source = "real quote vectors/tdx/quote-v4-go-tdx-guest, FMSPC 50806f000000 collateral";
      f.quote = testing::ReadFileOrDie(*v / "tdx/quote-v4-go-tdx-guest/quote.dat");
      auto dir = *v / "tdx/collateral/fmspc-50806f000000";
      c.tcb_info_json = Text(dir / "tcb_info.json");
      c.qe_identity_json = Text(dir / "qe_identity.json");
      c.tcb_signing_chain_der = *ParseCertificates(
          testing::ReadFileOrDie(*v / "tdx/certs/tcb_info_issuer_chain.pem"), "TCB signing chain");
      f.options.now = *ParseRfc3339("2023-06-20T00:00:00Z");  // where all windows overlap
      // The MANIFEST: this quote matches no TCB level of its collateral.
      f.options.accepted_tcb_statuses = {"UpToDate", "NoMatch"};
    } else {
      f.source = "SoftwareTdxSigner quote and collateral (real vectors absent)";
      static auto* signer = testing::SoftwareTdxSigner::Create()->release();
      testing::SoftwareTdxSigner::QuoteSpec spec;
      spec.body.tee_tcb_svn = {5, 0, 2};
      spec.pck_tcb = {4, 4, 2, 2, 4, 1, 0, 5};
      f.quote = *signer->SignQuote(spec);
      testing::TestTcbLevel level{spec.pck_tcb, spec.pcesvn, spec.body.tee_tcb_svn, "UpToDate"};
      c.tcb_info_json = *signer->SignCollateral(
          "tcbInfo", testing::TcbInfoJson(spec.fmspc, {level}, "2030-01-01T00:00:00Z",
                                          "2030-02-01T00:00:00Z"));
      c.qe_identity_json = *signer->SignCollateral(
          "enclaveIdentity",
          testing::QeIdentityJson(spec.qe_isvsvn, "2030-01-01T00:00:00Z", "2030-02-01T00:00:00Z"));
      c.tcb_signing_chain_der = signer->tcb_signing_chain();
      f.options.trust_anchors_der = {signer->root_der()};
      f.options.now = *ParseRfc3339("2030-01-15T00:00:00Z");
    }
    f.options.collateral = c;
    if (auto r = tdx::VerifyQuote(f.quote, f.options); !r.ok()) {
      std::fprintf(stderr, "fixture does not verify: %s\n", r.status().ToString().c_str());
      std::abort();
    }
    return f;
  }();
  return f;
}

ossl::X509Ptr Cert(const std::vector<uint8_t>& der) {
  return *ossl::ParseDerCertificate(der, "certificate");
}

// The raw floor: keys decoded once, one EVP_DigestVerify (SHA-256 + ECDSA P-256) per signature.
struct Raw {
  tdx::Quote quote;
  std::vector<std::vector<uint8_t>> pck_chain;  // leaf, PCK CA, root
  ossl::EvpPkeyPtr attestation_key, pck_key;
  std::vector<uint8_t> quote_sig, qe_sig;
  Raw() {
    quote = *tdx::ParseQuote(GetFixture().quote);
    pck_chain = *ParseCertificates(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(quote.pck_chain_pem.data()),
                                 quote.pck_chain_pem.size()),
        "PCK chain");
    std::vector<uint8_t> point = {0x04};
    point.insert(point.end(), quote.attestation_key.begin(), quote.attestation_key.end());
    attestation_key = *ossl::EcPublicKey("P-256", point, /*full_check=*/false);
    pck_key.reset(X509_get_pubkey(Cert(pck_chain[0]).get()));
    auto rs = [](std::span<const uint8_t> sig) {
      return *ossl::EcdsaSignatureDer(sig.first(32), sig.subspan(32));
    };
    quote_sig = rs(quote.signature);
    qe_sig = rs(quote.qe_report_signature);
  }
};

Raw& GetRaw() {
  static Raw r;
  return r;
}

bool DigestVerify(EVP_PKEY* key, const std::vector<uint8_t>& sig, const std::vector<uint8_t>& msg) {
  ossl::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  return EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
         EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), msg.data(), msg.size()) == 1;
}

void BM_RawQuoteAndQeVerifies(benchmark::State& state) {
  Raw& r = GetRaw();
  for (auto _ : state) {
    bool ok = DigestVerify(r.attestation_key.get(), r.quote_sig, r.quote.signed_region) &&
              DigestVerify(r.pck_key.get(), r.qe_sig, r.quote.qe_report.raw);
    if (!ok) state.SkipWithError("raw verify failed");
    benchmark::DoNotOptimize(ok);
  }
}

// The chain's and collateral signer's certificate signatures (parsed certificates, decoded keys),
// plus the TCB info and QE identity signatures, counted as one raw P-256 verify each.
void BM_RawChainAndCollateralVerifies(benchmark::State& state) {
  Raw& r = GetRaw();
  const auto& signing = GetFixture().options.collateral->tcb_signing_chain_der;
  ossl::X509Ptr leaf = Cert(r.pck_chain[0]), ca = Cert(r.pck_chain[1]), root = Cert(r.pck_chain[2]);
  ossl::X509Ptr signer = Cert(signing[0]);
  ossl::EvpPkeyPtr ca_key(X509_get_pubkey(ca.get()));
  ossl::EvpPkeyPtr root_key(X509_get_pubkey(root.get()));
  for (auto _ : state) {
    bool ok = X509_verify(leaf.get(), ca_key.get()) == 1 &&
              X509_verify(ca.get(), root_key.get()) == 1 &&
              X509_verify(signer.get(), root_key.get()) == 1 &&
              DigestVerify(r.pck_key.get(), r.qe_sig, r.quote.qe_report.raw) &&
              DigestVerify(r.pck_key.get(), r.qe_sig, r.quote.qe_report.raw);
    if (!ok) state.SkipWithError("raw chain verify failed");
    benchmark::DoNotOptimize(ok);
  }
}

void BM_VerifyCached(benchmark::State& state) {
  const Fixture& f = GetFixture();
  tdx::Options o = f.options;
  o.cache = std::make_shared<tdx::VerificationCache>();
  if (!tdx::VerifyQuote(f.quote, o).ok()) state.SkipWithError("warm-up failed");
  for (auto _ : state) {
    auto r = tdx::VerifyQuote(f.quote, o);
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    benchmark::DoNotOptimize(r);
  }
}

void BM_VerifyUncached(benchmark::State& state) {
  const Fixture& f = GetFixture();
  for (auto _ : state) {
    auto r = tdx::VerifyQuote(f.quote, f.options);
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    benchmark::DoNotOptimize(r);
  }
}

void BM_RejectForgedQuoteSignature(benchmark::State& state) {
  const Fixture& f = GetFixture();
  tdx::Options o = f.options;
  o.cache = std::make_shared<tdx::VerificationCache>();
  (void)tdx::VerifyQuote(f.quote, o);
  auto forged = f.quote;
  forged[48 + 100] ^= 1;  // a TD report byte: covered by the quote signature only
  for (auto _ : state) {
    auto r = tdx::VerifyQuote(forged, o);
    if (r.ok()) state.SkipWithError("forged quote verified");
    benchmark::DoNotOptimize(r);
  }
}

BENCHMARK(BM_RawQuoteAndQeVerifies)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_VerifyCached)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RawChainAndCollateralVerifies)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_VerifyUncached)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RejectForgedQuoteSignature)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  bench::CollectingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto t = [&](const char* name) { return reporter.time(name); };
  std::printf("\nTDX quote verification vs its raw cost (%s; CPU time per op, one run):\n",
              GetFixture().source.c_str());
  double cached = t("BM_VerifyCached"), raw2 = t("BM_RawQuoteAndQeVerifies");
  double uncached = t("BM_VerifyUncached");
  double raw7 = raw2 + t("BM_RawChainAndCollateralVerifies");
  std::printf(
      "  verify with collateral, chain and collateral cached %.1f us  vs  2 raw ECDSA P-256 "
      "verifies %.1f us: %.2fx  [goal <= 1.50x] %s\n",
      cached, raw2, cached / raw2, cached / raw2 <= 1.5 ? "ok" : "OVER");
  std::printf(
      "  verify with collateral, nothing cached %.1f us  vs  7 raw ECDSA P-256 verifies %.1f us: "
      "%.2fx  [reported peer: 13-15 ms per quote]\n",
      uncached, raw7, uncached / raw7);
  std::printf("  cost before trust: forged quote signature rejected in %.1f us\n",
              t("BM_RejectForgedQuoteSignature"));
  return 0;
}
