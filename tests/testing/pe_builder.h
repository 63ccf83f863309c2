// Small, valid PE32+ images for tests and fuzz seeds: the DOS stub, COFF and optional headers
// (EFI application), a section table and the sections' data at 512-byte file alignment, and
// optionally an attached certificate table. What attest/boot/pe.h parses and hashes.
#ifndef TESTS_TESTING_PE_BUILDER_H_
#define TESTS_TESTING_PE_BUILDER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace attest::testing {

struct PeSpec {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> sections;  // name (≤ 8), data
  std::vector<uint8_t> trailing_data;  // after the last section, hashed by Authenticode
  std::vector<uint8_t> certificate;    // attached WIN_CERTIFICATE bytes, not hashed
};

std::vector<uint8_t> BuildPe(const PeSpec& spec);

// A unified kernel image: a minimal PE "kernel" in .linux, then .osrel, .cmdline and .initrd.
std::vector<uint8_t> BuildTestUki(const std::string& cmdline, const std::vector<uint8_t>& initrd);

}  // namespace attest::testing

#endif  // TESTS_TESTING_PE_BUILDER_H_
