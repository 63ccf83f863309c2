// Issue 11: the cloud formats of the built image (scripts/cloud-images): the base image is a
// whole number of GiB with its backup GPT header in the last sector; the Azure VHD is the raw disk
// plus a valid fixed-VHD footer; the Google Cloud tarball holds exactly `disk.raw` (GNU tar,
// oldgnu) of the raw disk's size; the AWS file is the raw disk. Each carries the raw disk's bytes,
// so its partition table and dm-verity root hash are the base image's. Label `image` (needs
// scripts/build-image's output, the CTest fixture appliance_image).
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdio>
#include <fstream>

#include "appliance_fixture.h"
#include "attest/encoding.h"
#include "test_support.h"

namespace attest::testing {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kGiB = 1ull << 30;

uint64_t Be(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = v << 8 | p[i];
  return v;
}
uint64_t Le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

// SHA-256 of the first `limit` bytes of a file (all of it by default).
std::string FileSha256(const fs::path& p, uint64_t limit = UINT64_MAX) {
  std::ifstream in(p, std::ios::binary);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  uint64_t left = limit;
  while (left > 0 && in) {
    in.read(buf.data(), static_cast<std::streamsize>(std::min<uint64_t>(buf.size(), left)));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    EVP_DigestUpdate(ctx, buf.data(), n);
    left -= n;
  }
  std::vector<uint8_t> md(32);
  EVP_DigestFinal_ex(ctx, md.data(), nullptr);
  EVP_MD_CTX_free(ctx);
  return HexEncode(md);
}

std::vector<uint8_t> ReadAt(const fs::path& p, uint64_t offset, size_t n) {
  std::ifstream in(p, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::vector<uint8_t> out(n);
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

class CloudImageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    image_ = new fs::path(BinDir().parent_path() / "image");
    dir_ = new ScopedTempDir();
    auto r = RunProcess({(fs::path(APPLIANCE_SOURCE_DIR) / "scripts/cloud-images").string(),
                         image_->string(), (dir_->path() / "cloud").string()},
                        900);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    raw_size_ = fs::file_size(*image_ / "image.raw");
    raw_sha_ = new std::string(FileSha256(*image_ / "image.raw"));
  }
  static void TearDownTestSuite() {
    delete raw_sha_;
    delete dir_;
    delete image_;
  }
  static fs::path Out(const char* rel) { return dir_->path() / "cloud" / rel; }

  static fs::path* image_;
  static ScopedTempDir* dir_;
  static uint64_t raw_size_;
  static std::string* raw_sha_;
};
fs::path* CloudImageTest::image_ = nullptr;
ScopedTempDir* CloudImageTest::dir_ = nullptr;
uint64_t CloudImageTest::raw_size_ = 0;
std::string* CloudImageTest::raw_sha_ = nullptr;

TEST_F(CloudImageTest, BaseImageIsWholeGibWithTheBackupGptInTheLastSector) {
  ASSERT_EQ(raw_size_ % kGiB, 0u) << raw_size_;
  const fs::path raw = *image_ / "image.raw";
  const uint64_t last_lba = raw_size_ / 512 - 1;
  auto primary = ReadAt(raw, 512, 92);
  ASSERT_EQ(primary.size(), 92u);
  EXPECT_EQ(std::string(primary.begin(), primary.begin() + 8), "EFI PART");
  EXPECT_EQ(Le(primary.data() + 32, 8), last_lba) << "primary header's alternate LBA";
  auto backup = ReadAt(raw, last_lba * 512, 92);
  EXPECT_EQ(std::string(backup.begin(), backup.begin() + 8), "EFI PART");
  EXPECT_EQ(Le(backup.data() + 24, 8), last_lba) << "backup header's own LBA";
}

TEST_F(CloudImageTest, AzureVhdIsTheRawDiskWithAValidFixedFooter) {
  const fs::path vhd = Out("azure/appliance.vhd");
  ASSERT_EQ(fs::file_size(vhd), raw_size_ + 512);
  auto f = ReadAt(vhd, raw_size_, 512);
  ASSERT_EQ(f.size(), 512u);
  EXPECT_EQ(std::string(f.begin(), f.begin() + 8), "conectix");
  EXPECT_EQ(Be(f.data() + 12, 4), 0x00010000u) << "format version";
  EXPECT_EQ(Be(f.data() + 16, 8), UINT64_MAX) << "fixed disk: no data offset";
  EXPECT_EQ(Be(f.data() + 40, 8), raw_size_) << "original size";
  EXPECT_EQ(Be(f.data() + 48, 8), raw_size_) << "current size";
  EXPECT_EQ(Be(f.data() + 60, 4), 2u) << "disk type fixed";
  EXPECT_EQ(raw_size_ % (1 << 20), 0u) << "Azure: a whole number of MiB";
  uint32_t sum = 0;
  for (size_t i = 0; i < 512; ++i) {
    if (i < 64 || i >= 68) sum += f[i];
  }
  EXPECT_EQ(Be(f.data() + 64, 4), static_cast<uint32_t>(~sum)) << "footer checksum";
  // CHS geometry covers the disk (within the specification's rounding).
  const uint64_t chs = Be(f.data() + 56, 2) * f[58] * f[59];
  EXPECT_LE(chs * 512, raw_size_);
  EXPECT_EQ(FileSha256(vhd, raw_size_), *raw_sha_) << "the VHD's data is the raw disk";
  // An independent reader (qemu's vpc driver) sees the same disk, of the same size.
  auto cmp = RunProcess({"/usr/bin/qemu-img", "compare", "-f", "raw", "-F", "vpc",
                         (*image_ / "image.raw").string(), vhd.string()},
                        300);
  EXPECT_EQ(cmp.exit_code, 0) << cmp.out << cmp.err;
  EXPECT_EQ(cmp.out.find("mismatch"), std::string::npos) << cmp.out;
  // Reproducible: the same footer again from the same SOURCE_DATE_EPOCH.
  auto again = RunProcess({(fs::path(APPLIANCE_SOURCE_DIR) / "scripts/cloud-images").string(),
                           image_->string(), (dir_->path() / "again").string()},
                          900);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(ReadAt(dir_->path() / "again/azure/appliance.vhd", raw_size_, 512), f);
  EXPECT_EQ(FileSha256(dir_->path() / "again/gce/appliance.tar.gz"),
            FileSha256(Out("gce/appliance.tar.gz")))
      << "the tarball is reproducible";
}

TEST_F(CloudImageTest, GceTarballHoldsExactlyDiskRawInOldGnuFormat) {
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_filename(a, Out("gce/appliance.tar.gz").c_str(), 1 << 20), ARCHIVE_OK)
      << archive_error_string(a);
  archive_entry* e = nullptr;
  ASSERT_EQ(archive_read_next_header(a, &e), ARCHIVE_OK) << archive_error_string(a);
  EXPECT_STREQ(archive_entry_pathname(e), "disk.raw");
  EXPECT_EQ(static_cast<uint64_t>(archive_entry_size(e)), raw_size_);
  EXPECT_EQ(archive_format(a), ARCHIVE_FORMAT_TAR_GNUTAR) << archive_format_name(a);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  const void* block = nullptr;
  size_t size = 0;
  la_int64_t offset = 0, expected = 0;
  std::vector<uint8_t> zeros(1 << 20, 0);
  int r;
  // Sparse members come as data blocks at offsets: the holes between them are zeros.
  while ((r = archive_read_data_block(a, &block, &size, &offset)) == ARCHIVE_OK) {
    while (expected < offset) {
      size_t n = static_cast<size_t>(std::min<la_int64_t>(offset - expected, 1 << 20));
      EVP_DigestUpdate(ctx, zeros.data(), n);
      expected += static_cast<la_int64_t>(n);
    }
    EVP_DigestUpdate(ctx, block, size);
    expected += static_cast<la_int64_t>(size);
  }
  ASSERT_EQ(r, ARCHIVE_EOF) << archive_error_string(a);
  while (static_cast<uint64_t>(expected) < raw_size_) {
    size_t n = static_cast<size_t>(
        std::min<uint64_t>(raw_size_ - static_cast<uint64_t>(expected), 1 << 20));
    EVP_DigestUpdate(ctx, zeros.data(), n);
    expected += static_cast<la_int64_t>(n);
  }
  std::vector<uint8_t> md(32);
  EVP_DigestFinal_ex(ctx, md.data(), nullptr);
  EVP_MD_CTX_free(ctx);
  EXPECT_EQ(HexEncode(md), *raw_sha_) << "disk.raw is the raw disk";
  EXPECT_EQ(archive_read_next_header(a, &e), ARCHIVE_EOF) << "one member only";
  archive_read_free(a);
}

TEST_F(CloudImageTest, AwsRawIsTheRawDiskAndSumsAreListed) {
  EXPECT_EQ(fs::file_size(Out("aws/appliance.raw")), raw_size_);
  EXPECT_EQ(FileSha256(Out("aws/appliance.raw")), *raw_sha_);
  const auto bytes = ReadFileOrDie(Out("SHA256SUMS"));
  const std::string sums(bytes.begin(), bytes.end());
  EXPECT_NE(sums.find(*raw_sha_ + "  image.raw"), std::string::npos) << sums;
  EXPECT_NE(sums.find("azure/appliance.vhd"), std::string::npos) << sums;
}

}  // namespace
}  // namespace attest::testing
