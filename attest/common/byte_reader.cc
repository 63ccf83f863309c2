#include "attest/byte_reader.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "attest/status.h"

namespace attest {

absl::Status ByteReader::Need(size_t n) const {
  if (n > remaining()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: truncated: need %u bytes at offset 0x%x, only %u of %u remain", what_,
                        n, offset_, remaining(), data_.size()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::span<const uint8_t>> ByteReader::ReadBytes(size_t n) {
  RETURN_IF_ERROR(Need(n));
  auto out = data_.subspan(offset_, n);
  offset_ += n;
  return out;
}

absl::Status ByteReader::Skip(size_t n) {
  RETURN_IF_ERROR(Need(n));
  offset_ += n;
  return absl::OkStatus();
}

absl::StatusOr<uint8_t> ByteReader::ReadU8() {
  RETURN_IF_ERROR(Need(1));
  return data_[offset_++];
}

namespace {
template <typename T>
T LoadLe(std::span<const uint8_t> b) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(b[i]) << (8 * i);
  return v;
}
template <typename T>
T LoadBe(std::span<const uint8_t> b) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | b[i]);
  return v;
}
}  // namespace

absl::StatusOr<uint16_t> ByteReader::ReadU16Le() {
  ASSIGN_OR_RETURN(auto b, ReadBytes(2));
  return LoadLe<uint16_t>(b);
}
absl::StatusOr<uint32_t> ByteReader::ReadU32Le() {
  ASSIGN_OR_RETURN(auto b, ReadBytes(4));
  return LoadLe<uint32_t>(b);
}
absl::StatusOr<uint64_t> ByteReader::ReadU64Le() {
  ASSIGN_OR_RETURN(auto b, ReadBytes(8));
  return LoadLe<uint64_t>(b);
}
absl::StatusOr<uint16_t> ByteReader::ReadU16Be() {
  ASSIGN_OR_RETURN(auto b, ReadBytes(2));
  return LoadBe<uint16_t>(b);
}
absl::StatusOr<uint32_t> ByteReader::ReadU32Be() {
  ASSIGN_OR_RETURN(auto b, ReadBytes(4));
  return LoadBe<uint32_t>(b);
}

absl::Status ByteReader::ReadZeros(size_t n, absl::string_view field) {
  size_t start = offset_;
  ASSIGN_OR_RETURN(auto b, ReadBytes(n));
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i] != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: %s must be zero, but byte at offset 0x%x is 0x%02x", what_, field, start + i, b[i]));
    }
  }
  return absl::OkStatus();
}

absl::Status ByteReader::ExpectEnd() const {
  if (remaining() != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %u trailing bytes after offset 0x%x", what_, remaining(), offset_));
  }
  return absl::OkStatus();
}

}  // namespace attest
