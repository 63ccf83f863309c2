#include "attest/snp/cert_store.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"

namespace attest::snp {
namespace {

std::vector<Product> CandidateProducts(const Report& report) {
  Product p = report.cpuid_product();
  if (p != Product::kUnknown) return {p};
  // v2 reports carry no CPUID: try each product.
  return {Product::kMilan, Product::kGenoa, Product::kTurin};
}

}  // namespace

std::filesystem::path CertStore::VcekPath(Product product, const Report& report) {
  std::span<const uint8_t> chip(report.chip_id);
  if (product == Product::kTurin) chip = chip.first(8);
  return std::filesystem::path(std::string(ProductName(product))) / HexEncode(chip) /
         absl::StrFormat("%016x.der", report.reported_tcb);
}

std::vector<std::filesystem::path> CertStore::CandidateVcekPaths(const Report& report) const {
  std::vector<std::filesystem::path> out;
  for (Product p : CandidateProducts(report)) {
    out.push_back(dir_ / VcekPath(p, report));
    if (p == Product::kTurin) {
      // Also accept the full 64-byte chip id as the directory name.
      out.push_back(dir_ / std::string(ProductName(p)) / HexEncode(report.chip_id) /
                    absl::StrFormat("%016x.der", report.reported_tcb));
    }
  }
  return out;
}

absl::StatusOr<Certificates> CertStore::Find(const Report& report) const {
  if (report.signing_key == SigningKey::kVlek) {
    return absl::InvalidArgumentError(
        "the report is signed by a VLEK: VLEKs come with the evidence, not from a store (--cert)");
  }
  if (report.mask_chip_key) {
    return absl::InvalidArgumentError(
        "the report masks its chip id (MASK_CHIP_KEY=1): its VCEK cannot be looked up (--cert)");
  }
  std::vector<std::string> tried;
  for (const auto& path : CandidateVcekPaths(report)) {
    tried.push_back(path.string());
    if (!std::filesystem::exists(path)) continue;
    Certificates certs;
    ASSIGN_OR_RETURN(auto vek, ReadFileBounded(path, kMaxCertificateFileSize));
    ASSIGN_OR_RETURN(auto ders, ParseCertificates(vek, path.string()));
    certs.vek_der = std::move(ders.front());
    // The product directory is two levels up from the VCEK.
    auto chain_path = path.parent_path().parent_path() / "cert_chain.pem";
    if (std::filesystem::exists(chain_path)) {
      ASSIGN_OR_RETURN(auto chain, ReadFileBounded(chain_path, kMaxCertificateFileSize));
      ASSIGN_OR_RETURN(certs.chain_der, ParseCertificates(chain, chain_path.string()));
    }
    return certs;
  }
  return absl::NotFoundError(
      absl::StrCat("no VCEK in the certificate store; tried ", absl::StrJoin(tried, ", ")));
}

}  // namespace attest::snp
