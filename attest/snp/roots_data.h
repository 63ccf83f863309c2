// Private: the embedded PEM text of the built-in AMD roots (generated from attest/snp/roots/).
#ifndef ATTEST_SNP_ROOTS_DATA_H_
#define ATTEST_SNP_ROOTS_DATA_H_

#include <array>
#include <string_view>

#include "absl/strings/string_view.h"

namespace attest::snp {

struct EmbeddedRoots {
  absl::string_view product;
  absl::string_view ark_pem;
  absl::string_view ask_pem;
  absl::string_view asvk_pem;
};

extern const std::array<EmbeddedRoots, 3> kEmbeddedRoots;

}  // namespace attest::snp

#endif  // ATTEST_SNP_ROOTS_DATA_H_
