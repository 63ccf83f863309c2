#include "pe_builder.h"

namespace attest::testing {
namespace {

constexpr uint32_t kPeOffset = 0x40;
constexpr uint32_t kOptionalSize = 240;  // PE32+ with 16 data directories
constexpr uint32_t kHeadersSize = 0x400;
constexpr uint32_t kFileAlign = 0x200;
constexpr uint32_t kSectionAlign = 0x1000;

void Put(std::vector<uint8_t>& b, size_t at, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

uint32_t AlignUp(uint32_t v, uint32_t a) { return (v + a - 1) / a * a; }

}  // namespace

std::vector<uint8_t> BuildPe(const PeSpec& spec) {
  std::vector<uint8_t> b(kHeadersSize, 0);
  b[0] = 'M';
  b[1] = 'Z';
  Put(b, 0x3c, kPeOffset, 4);
  Put(b, kPeOffset, 0x00004550, 4);  // "PE\0\0"
  const size_t coff = kPeOffset + 4;
  Put(b, coff, 0x8664, 2);  // x86-64
  Put(b, coff + 2, spec.sections.size(), 2);
  Put(b, coff + 16, kOptionalSize, 2);
  Put(b, coff + 18, 0x0022, 2);  // executable, large address aware
  const size_t opt = coff + 20;
  Put(b, opt, 0x20b, 2);
  Put(b, opt + 24, 0x10000000, 8);  // ImageBase
  Put(b, opt + 32, kSectionAlign, 4);
  Put(b, opt + 36, kFileAlign, 4);
  Put(b, opt + 60, kHeadersSize, 4);
  Put(b, opt + 68, 10, 2);  // EFI application
  Put(b, opt + 108, 16, 4);
  size_t table = opt + kOptionalSize;
  uint32_t va = kSectionAlign;
  for (const auto& [name, data] : spec.sections) {
    const uint32_t raw_offset = static_cast<uint32_t>(b.size());
    const uint32_t raw_size = AlignUp(static_cast<uint32_t>(data.size()), kFileAlign);
    for (size_t i = 0; i < name.size() && i < 8; ++i) b[table + i] = static_cast<uint8_t>(name[i]);
    Put(b, table + 8, data.size(), 4);  // VirtualSize
    Put(b, table + 12, va, 4);
    Put(b, table + 16, raw_size, 4);
    Put(b, table + 20, raw_offset, 4);
    Put(b, table + 36, 0x40000040, 4);  // initialized data, readable
    table += 40;
    b.insert(b.end(), data.begin(), data.end());
    b.resize(raw_offset + raw_size, 0);
    va = AlignUp(va + static_cast<uint32_t>(data.size()), kSectionAlign);
  }
  Put(b, opt + 56, va, 4);  // SizeOfImage
  b.insert(b.end(), spec.trailing_data.begin(), spec.trailing_data.end());
  if (!spec.certificate.empty()) {
    b.resize(AlignUp(static_cast<uint32_t>(b.size()), 8), 0);
    Put(b, opt + 112 + 4 * 8, b.size(), 4);  // IMAGE_DIRECTORY_ENTRY_SECURITY: file offset
    Put(b, opt + 112 + 4 * 8 + 4, spec.certificate.size(), 4);
    b.insert(b.end(), spec.certificate.begin(), spec.certificate.end());
  }
  return b;
}

std::vector<uint8_t> BuildTestUki(const std::string& cmdline, const std::vector<uint8_t>& initrd) {
  PeSpec kernel;
  kernel.sections = {{".text", std::vector<uint8_t>(700, 0xcc)}, {".data", {1, 2, 3, 4, 5}}};
  const std::string osrel = "ID=appliance-test\nVERSION_ID=1\n";
  PeSpec uki;
  uki.sections = {{".text", std::vector<uint8_t>(300, 0x90)},
                  {".osrel", std::vector<uint8_t>(osrel.begin(), osrel.end())},
                  {".cmdline", std::vector<uint8_t>(cmdline.begin(), cmdline.end())},
                  {".linux", BuildPe(kernel)},
                  {".initrd", initrd}};
  return BuildPe(uki);
}

}  // namespace attest::testing
