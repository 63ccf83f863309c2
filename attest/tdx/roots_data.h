// Private: the embedded Intel SGX Root CA (generated from attest/tdx/roots/).
#ifndef ATTEST_TDX_ROOTS_DATA_H_
#define ATTEST_TDX_ROOTS_DATA_H_

#include "absl/strings/string_view.h"

namespace attest::tdx {
extern const absl::string_view kIntelSgxRootCaPem;
}  // namespace attest::tdx

#endif  // ATTEST_TDX_ROOTS_DATA_H_
