#include "attest/snp/trust_roots.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "common/openssl_util.h"
#include "snp/roots_data.h"

namespace attest::snp {

PinnedFingerprints BuiltinFingerprints(Product product) {
  // SHA-256 of each certificate's DER, as published with AMD's roots (see
  // docs/verification-snp.md).
  switch (product) {
    case Product::kMilan:
      return {"69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
              "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b",
              "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5"};
    case Product::kGenoa:
      return {"4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
              "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521",
              "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372"};
    case Product::kTurin:
      return {"1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
              "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185",
              "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c"};
    case Product::kUnknown:
      break;
  }
  return {};
}

namespace {

absl::StatusOr<std::vector<uint8_t>> LoadPinned(absl::string_view pem, absl::string_view pin,
                                                absl::string_view what) {
  auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pem.data()), pem.size());
  auto certs = ParseCertificates(bytes, what);
  if (!certs.ok() || certs->size() != 1) {
    return absl::InternalError(absl::StrCat("built-in ", what, " does not parse"));
  }
  std::string got = HexEncode(ossl::Sha256(certs->front()));
  if (got != pin) {
    return absl::InternalError(
        absl::StrCat("built-in ", what, " has SHA-256 ", got, " but the pinned value is ", pin));
  }
  return std::move(certs->front());
}

}  // namespace

absl::StatusOr<AmdRootCertificates> BuiltinAmdRoots(Product product) {
  const EmbeddedRoots* pems = nullptr;
  for (const EmbeddedRoots& e : kEmbeddedRoots) {
    if (ProductFromName(e.product) == product) pems = &e;
  }
  if (pems == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no built-in AMD roots for product ", ProductName(product)));
  }
  PinnedFingerprints pins = BuiltinFingerprints(product);
  AmdRootCertificates out;
  out.product = product;
  std::string name(ProductName(product));
  ASSIGN_OR_RETURN(out.ark_der, LoadPinned(pems->ark_pem, pins.ark, "ARK-" + name));
  ASSIGN_OR_RETURN(out.ask_der, LoadPinned(pems->ask_pem, pins.ask, "ASK " + name));
  ASSIGN_OR_RETURN(out.asvk_der, LoadPinned(pems->asvk_pem, pins.asvk, "ASVK " + name));
  return out;
}

}  // namespace attest::snp
