// Writes synthetic seed inputs for the fuzz corpora (software-signed; no real evidence is copied
// into the project). Usage: make_fuzz_seeds CORPUS_ROOT   (writes CORPUS_ROOT/<target>/...)
#include <cstdio>
#include <filesystem>
#include <string>

#include "attest/snp/report.h"
#include "snp_signer.h"
#include "test_support.h"

using attest::snp::Product;
using attest::snp::SigningKey;
namespace t = attest::testing;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT\n", argv[0]);
    return 2;
  }
  std::filesystem::path root = argv[1];
  int n = 0;
  for (Product product : {Product::kMilan, Product::kGenoa, Product::kTurin}) {
    auto signer = t::SoftwareSnpSigner::Create(product, 2048);
    if (!signer.ok()) return 1;
    std::string name(attest::snp::ProductName(product));
    for (SigningKey kind : {SigningKey::kVcek, SigningKey::kVlek}) {
      t::VekOptions vo;
      vo.kind = kind;
      vo.tcb = {4, 0, 22, 213, std::nullopt};
      if (product == Product::kTurin) vo.tcb.fmc = 1;
      vo.chip_id.fill(0x42);
      std::string stem = name + "_" + std::string(attest::snp::SigningKeyName(kind));
      for (uint32_t version : {2u, 3u, 5u}) {
        auto evidence = (*signer)->MakeEvidence(version, vo);
        if (!evidence.ok()) return 1;
        t::WriteFileOrDie(root / "snp_report" / (stem + "_v" + std::to_string(version) + ".bin"),
                          evidence->report);
        if (version == 5) {
          t::WriteFileOrDie(root / "amd_cert" / (stem + ".der"), evidence->vek.cert_der);
        }
        ++n;
      }
      t::WriteFileOrDie(root / "certificates" / (stem + "_chain.pem"),
                        t::CertificatesToPem((*signer)->Chain(kind)));
    }
    auto crl = (*signer)->MakeCrl({0x10001}, absl::FromUnixSeconds(1700000000),
                                  absl::FromUnixSeconds(1800000000));
    if (!crl.ok()) return 1;
    t::WriteFileOrDie(root / "certificates" / (name + "_crl.der"), *crl);
  }
  t::WriteFileOrDie(root / "certificates" / "hex.txt", std::string("00ff10ab"));
  t::WriteFileOrDie(root / "certificates" / "base64.txt", std::string("aGVsbG8gd29ybGQ="));
  std::printf("wrote %d reports and their certificates under %s\n", n, root.c_str());
  return 0;
}
