#include "attest/binding.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/status.h"
#include "common/openssl_util.h"

namespace attest {
namespace {

bool KnownLabel(const std::string& label) {
  return std::any_of(std::begin(kBindingLabels), std::end(kBindingLabels),
                     [&](const char* l) { return label == l; });
}

absl::Status CheckRequired(const std::map<std::string, Binding::Digest>& entries) {
  for (const char* required : {"nonce", "tls-spki"}) {
    if (!entries.contains(required)) {
      return absl::InvalidArgumentError(
          absl::StrCat("binding: the '", required, "' entry is missing"));
    }
  }
  return absl::OkStatus();
}

absl::Status UnknownLabel(const std::string& label) {
  return absl::InvalidArgumentError(
      absl::StrCat("binding: unknown label '", label.substr(0, 64), "'"));
}

Binding::Digest ToDigest(std::span<const uint8_t> d) {
  Binding::Digest out{};
  std::copy(d.begin(), d.end(), out.begin());
  return out;
}

}  // namespace

absl::StatusOr<Binding> Binding::FromValues(
    const std::map<std::string, std::vector<uint8_t>>& values) {
  Binding b;
  for (const auto& [label, value] : values) {
    if (!KnownLabel(label)) return UnknownLabel(label);
    b.entries_[label] = ToDigest(ossl::Sha256(value));
  }
  if (auto s = CheckRequired(b.entries_); !s.ok()) return s;
  return b;
}

absl::StatusOr<Binding> Binding::FromEntries(
    const std::vector<std::pair<std::string, std::vector<uint8_t>>>& entries) {
  Binding b;
  for (const auto& [label, digest] : entries) {
    if (!KnownLabel(label)) return UnknownLabel(label);
    if (digest.size() != 32) {
      return absl::InvalidArgumentError(absl::StrCat("binding: the '", label, "' digest has ",
                                                     digest.size(), " bytes (32 expected)"));
    }
    if (!b.entries_.emplace(label, ToDigest(digest)).second) {
      return absl::InvalidArgumentError(absl::StrCat("binding: '", label, "' appears twice"));
    }
  }
  if (auto s = CheckRequired(b.entries_); !s.ok()) return s;
  return b;
}

std::vector<uint8_t> Binding::Encode() const {
  std::vector<uint8_t> out(kBindingPrefixV1, kBindingPrefixV1 + sizeof(kBindingPrefixV1) - 1);
  out.push_back(static_cast<uint8_t>(entries_.size()));  // at most the five known labels
  for (const auto& [label, digest] : entries_) {
    out.push_back(static_cast<uint8_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
    out.insert(out.end(), digest.begin(), digest.end());
  }
  return out;
}

std::array<uint8_t, 64> Binding::ReportData() const {
  auto d = ossl::Sha512(Encode());
  std::array<uint8_t, 64> out{};
  std::copy(d.begin(), d.end(), out.begin());
  return out;
}

std::array<uint8_t, 32> Binding::QualifyingData() const { return ToDigest(ossl::Sha256(Encode())); }

absl::Status CheckBinding(const Binding& claimed,
                          const std::map<std::string, std::vector<uint8_t>>& expected_values,
                          CheckLog& log) {
  for (const auto& [label, value] : expected_values) {
    std::string name = absl::StrCat("binding.", label);
    auto it = claimed.entries().find(label);
    if (it == claimed.entries().end()) {
      return log.Fail(name, absl::StrCat("the evidence's binding has no '", label, "' entry"));
    }
    auto want = ossl::Sha256(value);
    bool same = std::equal(want.begin(), want.end(), it->second.begin());
    RETURN_IF_ERROR(
        log.Expect(same, name,
                   same ? absl::StrCat("SHA-256(", label, ") = ", HexEncode(want))
                        : absl::StrCat("the binding has SHA-256 ", HexEncode(it->second),
                                       " but the ", label, " here hashes to ", HexEncode(want))));
  }
  for (const auto& [label, digest] : claimed.entries()) {
    if (!expected_values.contains(label)) {
      return log.Fail(
          absl::StrCat("binding.", label),
          absl::StrCat("the binding carries '", label, "', which this verifier did not expect"));
    }
  }
  return absl::OkStatus();
}

}  // namespace attest
