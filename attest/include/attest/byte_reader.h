// A bounded reader over outside bytes: every read knows how many bytes remain and fails
// (with the reader's name, the offset and the sizes) instead of overrunning.
#ifndef ATTEST_BYTE_READER_H_
#define ATTEST_BYTE_READER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace attest {

class ByteReader {
 public:
  // `what` names the structure in error messages ("snp report", "tdx quote header", ...).
  ByteReader(std::span<const uint8_t> data, absl::string_view what) : data_(data), what_(what) {}

  size_t offset() const { return offset_; }
  size_t remaining() const { return data_.size() - offset_; }
  size_t size() const { return data_.size(); }

  absl::StatusOr<uint8_t> ReadU8();
  absl::StatusOr<uint16_t> ReadU16Le();
  absl::StatusOr<uint32_t> ReadU32Le();
  absl::StatusOr<uint64_t> ReadU64Le();
  absl::StatusOr<uint16_t> ReadU16Be();
  absl::StatusOr<uint32_t> ReadU32Be();
  absl::StatusOr<std::span<const uint8_t>> ReadBytes(size_t n);
  absl::Status Skip(size_t n);

  template <size_t N>
  absl::StatusOr<std::array<uint8_t, N>> ReadArray() {
    auto bytes = ReadBytes(N);
    if (!bytes.ok()) return bytes.status();
    std::array<uint8_t, N> out;
    std::memcpy(out.data(), bytes->data(), N);
    return out;
  }

  // Reads n bytes that the specification says must be zero; `field` names them.
  absl::Status ReadZeros(size_t n, absl::string_view field);

  // Fails unless every byte was consumed.
  absl::Status ExpectEnd() const;

 private:
  absl::Status Need(size_t n) const;

  std::span<const uint8_t> data_;
  size_t offset_ = 0;
  std::string what_;
};

}  // namespace attest

#endif  // ATTEST_BYTE_READER_H_
