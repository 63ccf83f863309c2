#include "attest/boot/pe.h"

#include <openssl/evp.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "attest/byte_reader.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"
#include "common/openssl_util.h"
#include "tpm/md_internal.h"

namespace attest::boot {
namespace {

constexpr uint16_t kPe32Magic = 0x10b;
constexpr uint16_t kPe32PlusMagic = 0x20b;
constexpr uint32_t kSecurityDirectory = 4;  // IMAGE_DIRECTORY_ENTRY_SECURITY

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("pe: ", what));
}

}  // namespace

absl::StatusOr<PeImage> ParsePe(std::span<const uint8_t> file) {
  if (file.size() > kMaxPeSize) {
    return Malformed(
        absl::StrCat("image of ", file.size(), " bytes exceeds the limit of ", kMaxPeSize));
  }
  ByteReader dos(file, "pe dos header");
  ASSIGN_OR_RETURN(auto mz, dos.ReadU16Le());
  if (mz != 0x5a4d) return Malformed("no MZ signature");
  RETURN_IF_ERROR(dos.Skip(0x3c - 2));
  ASSIGN_OR_RETURN(uint32_t pe_offset, dos.ReadU32Le());
  if (pe_offset > file.size()) return Malformed("e_lfanew points past the end of the file");

  ByteReader r(file.subspan(pe_offset), "pe header");
  ASSIGN_OR_RETURN(uint32_t signature, r.ReadU32Le());
  if (signature != 0x00004550) return Malformed("no PE signature at e_lfanew");
  PeImage pe;
  ASSIGN_OR_RETURN(pe.machine, r.ReadU16Le());
  ASSIGN_OR_RETURN(uint16_t nsections, r.ReadU16Le());
  RETURN_IF_ERROR(r.Skip(12));  // TimeDateStamp, PointerToSymbolTable, NumberOfSymbols
  ASSIGN_OR_RETURN(uint16_t optional_size, r.ReadU16Le());
  RETURN_IF_ERROR(r.Skip(2));  // Characteristics
  if (nsections > kMaxPeSections) {
    return Malformed(absl::StrCat(nsections, " sections (limit ", kMaxPeSections, ")"));
  }
  const size_t opt = pe_offset + 24;
  ASSIGN_OR_RETURN(auto optional, r.ReadBytes(optional_size));
  ByteReader o(optional, "pe optional header");
  ASSIGN_OR_RETURN(uint16_t magic, o.ReadU16Le());
  if (magic != kPe32Magic && magic != kPe32PlusMagic) {
    return Malformed(absl::StrCat("optional header magic 0x", absl::Hex(magic)));
  }
  pe.pe32_plus = magic == kPe32PlusMagic;
  RETURN_IF_ERROR(o.Skip(58));  // to SizeOfHeaders (offset 60 in both forms)
  ASSIGN_OR_RETURN(pe.size_of_headers, o.ReadU32Le());
  pe.checksum_offset = opt + 64;
  RETURN_IF_ERROR(o.Skip(4));  // CheckSum
  const size_t count_at = pe.pe32_plus ? 108 : 92;
  RETURN_IF_ERROR(o.Skip(count_at - 68));
  ASSIGN_OR_RETURN(uint32_t ndirs, o.ReadU32Le());
  if (ndirs > 16) return Malformed(absl::StrCat(ndirs, " data directories (at most 16)"));
  for (uint32_t i = 0; i < ndirs; ++i) {
    const size_t entry = opt + count_at + 4 + 8 * i;
    ASSIGN_OR_RETURN(uint32_t rva, o.ReadU32Le());
    ASSIGN_OR_RETURN(uint32_t size, o.ReadU32Le());
    if (i == kSecurityDirectory) {
      pe.security_dir_offset = entry;
      // The certificate table's "RVA" is a file offset; it must be the file's tail.
      if (size != 0 && (static_cast<uint64_t>(rva) + size != file.size())) {
        return Malformed(absl::StrCat("certificate table [", rva, ", +", size,
                                      ") is not the end of the ", file.size(), "-byte file"));
      }
      pe.certificate_table_size = size;
    }
  }
  if (pe.size_of_headers > file.size() || pe.size_of_headers < opt + optional_size) {
    return Malformed(absl::StrCat("SizeOfHeaders ", pe.size_of_headers, " is outside the file"));
  }
  for (uint16_t i = 0; i < nsections; ++i) {
    ASSIGN_OR_RETURN(auto name, r.ReadBytes(8));
    PeSection s;
    s.name.assign(name.begin(), std::find(name.begin(), name.end(), 0));
    ASSIGN_OR_RETURN(s.virtual_size, r.ReadU32Le());
    ASSIGN_OR_RETURN(s.virtual_address, r.ReadU32Le());
    ASSIGN_OR_RETURN(s.raw_size, r.ReadU32Le());
    ASSIGN_OR_RETURN(s.raw_offset, r.ReadU32Le());
    RETURN_IF_ERROR(r.Skip(16));  // relocations, line numbers, characteristics
    if (static_cast<uint64_t>(s.raw_offset) + s.raw_size > file.size()) {
      return Malformed(absl::StrCat("section ", s.name, " [", s.raw_offset, ", +", s.raw_size,
                                    ") is outside the ", file.size(), "-byte file"));
    }
    if (s.virtual_size > kMaxPeSize) {
      return Malformed(
          absl::StrCat("section ", s.name, " VirtualSize ", s.virtual_size, " exceeds the limit"));
    }
    pe.sections.push_back(std::move(s));
  }
  if (pe_offset + 24 + optional_size + 40ull * nsections > pe.size_of_headers) {
    return Malformed("the section table extends past SizeOfHeaders");
  }
  return pe;
}

absl::StatusOr<std::optional<std::vector<uint8_t>>> PeSectionData(std::span<const uint8_t> file,
                                                                  const PeImage& pe,
                                                                  const std::string& name) {
  for (const auto& s : pe.sections) {
    if (s.name != name) continue;
    // A measured section is data the file carries: zero fill beyond it is bounded by the file.
    if (s.virtual_size > file.size()) {
      return Malformed(absl::StrCat("section ", name, " VirtualSize ", s.virtual_size,
                                    " exceeds the ", file.size(), "-byte file"));
    }
    std::vector<uint8_t> out(s.virtual_size, 0);
    const size_t n = std::min<size_t>(s.virtual_size, s.raw_size);
    if (static_cast<uint64_t>(s.raw_offset) + n > file.size()) return Malformed("section bounds");
    std::copy_n(file.begin() + s.raw_offset, n, out.begin());
    return std::optional<std::vector<uint8_t>>(std::move(out));
  }
  return std::optional<std::vector<uint8_t>>();
}

absl::StatusOr<std::vector<uint8_t>> AuthenticodeDigest(std::span<const uint8_t> file,
                                                        uint16_t alg) {
  ASSIGN_OR_RETURN(auto pe, ParsePe(file));
  const EVP_MD* md = tpm::TpmAlgMd(alg);
  if (md == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("hash algorithm ", tpm::HashAlgName(alg), " is not supported"));
  }
  ossl::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) {
    return absl::InternalError("authenticode: digest init failed");
  }
  bool ok = true;
  auto update = [&](size_t from, size_t to) {
    if (to > from) ok &= EVP_DigestUpdate(ctx.get(), file.data() + from, to - from) == 1;
  };
  // 1. Headers, skipping CheckSum and (if present) the certificate table's directory entry.
  update(0, pe.checksum_offset);
  if (pe.security_dir_offset) {
    update(pe.checksum_offset + 4, *pe.security_dir_offset);
    update(*pe.security_dir_offset + 8, pe.size_of_headers);
  } else {
    update(pe.checksum_offset + 4, pe.size_of_headers);
  }
  // 2. Sections with raw data, in file order.
  std::vector<const PeSection*> order;
  for (const auto& s : pe.sections) {
    if (s.raw_size != 0) order.push_back(&s);
  }
  std::stable_sort(order.begin(), order.end(), [](const PeSection* a, const PeSection* b) {
    return a->raw_offset < b->raw_offset;
  });
  uint64_t hashed = pe.size_of_headers;
  for (const PeSection* s : order) {
    update(s->raw_offset, static_cast<size_t>(s->raw_offset) + s->raw_size);
    hashed += s->raw_size;
  }
  // 3. Data after the last section, except attached certificates.
  if (file.size() > hashed + pe.certificate_table_size) {
    update(hashed, file.size() - pe.certificate_table_size);
  }
  std::vector<uint8_t> out(static_cast<size_t>(EVP_MD_get_size(md)));
  if (!ok || EVP_DigestFinal_ex(ctx.get(), out.data(), nullptr) != 1) {
    return absl::InternalError("authenticode: digest failed");
  }
  return out;
}

}  // namespace attest::boot
