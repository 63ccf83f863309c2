// OCI image measurement and unpacking (supervisor/oci.h): digests, sizes, tampering, truncation,
// oci-archive extraction and every unpacking rule (whiteouts, `..`, absolute names, links that
// leave the root, paths through symlinks, device nodes, set-id bits).
#include "supervisor/oci.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <fstream>

#include "attest/encoding.h"
#include "test_support.h"

namespace appliance::supervisor {
namespace {

namespace fs = std::filesystem;
using attest::testing::ReadFileOrDie;
using attest::testing::ScopedTempDir;
using attest::testing::WriteFileOrDie;

struct Entry {
  std::string path;
  char type = 'f';  // f file, d dir, l symlink, h hardlink, p fifo
  std::string content_or_target;
  int mode = 0644;
};

// A tar (pax) written with libarchive; gzip-compressed when asked.
std::vector<uint8_t> MakeTar(const std::vector<Entry>& entries, bool gzip = false) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  std::vector<uint8_t> out(16 << 20);
  size_t used = 0;
  archive_write_open_memory(a, out.data(), out.size(), &used);
  for (const auto& e : entries) {
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_perm(ae, e.mode);
    switch (e.type) {
      case 'f':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.content_or_target.size()));
        break;
      case 'd':
        archive_entry_set_filetype(ae, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e.content_or_target.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_hardlink(ae, e.content_or_target.c_str());
        break;
      case 'p':
        archive_entry_set_filetype(ae, AE_IFIFO);
        break;
    }
    archive_write_header(a, ae);
    if (e.type == 'f')
      archive_write_data(a, e.content_or_target.data(), e.content_or_target.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

std::string Sha256Hex(std::span<const uint8_t> b) {
  unsigned char md[32];
  EVP_Digest(b.data(), b.size(), md, nullptr, EVP_sha256(), nullptr);
  return attest::HexEncode(std::span<const uint8_t>(md, 32));
}

std::string PutBlob(const fs::path& layout, std::span<const uint8_t> bytes) {
  const std::string hex = Sha256Hex(bytes);
  fs::create_directories(layout / "blobs" / "sha256");
  WriteFileOrDie(layout / "blobs" / "sha256" / hex, bytes);
  return "sha256:" + hex;
}

std::string Descriptor(const std::string& media, const std::string& digest, size_t size) {
  return "{\"mediaType\":\"" + media + "\",\"digest\":\"" + digest +
         "\",\"size\":" + std::to_string(size) + "}";
}

// An OCI layout with the given layers; returns the manifest digest.
std::string MakeLayout(const fs::path& layout, const std::vector<std::vector<uint8_t>>& layers) {
  fs::create_directories(layout);
  WriteFileOrDie(layout / "oci-layout", std::string("{\"imageLayoutVersion\":\"1.0.0\"}"));
  std::string cfg =
      R"({"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/model"],"Cmd":["--x"],"Env":["A=1"],"WorkingDir":"/w"},"rootfs":{"type":"layers","diff_ids":[]}})";
  std::vector<uint8_t> cfg_bytes(cfg.begin(), cfg.end());
  std::string manifest =
      "{\"schemaVersion\":2,\"mediaType\":\"application/"
      "vnd.oci.image.manifest.v1+json\",\"config\":" +
      Descriptor("application/vnd.oci.image.config.v1+json", PutBlob(layout, cfg_bytes),
                 cfg_bytes.size()) +
      ",\"layers\":[";
  for (size_t i = 0; i < layers.size(); ++i) {
    manifest += (i ? "," : "") + Descriptor("application/vnd.oci.image.layer.v1.tar",
                                            PutBlob(layout, layers[i]), layers[i].size());
  }
  manifest += "]}";
  std::vector<uint8_t> mbytes(manifest.begin(), manifest.end());
  const std::string mdigest = PutBlob(layout, mbytes);
  WriteFileOrDie(
      layout / "index.json",
      "{\"schemaVersion\":2,\"manifests\":[" +
          Descriptor("application/vnd.oci.image.manifest.v1+json", mdigest, mbytes.size()) + "]}");
  return mdigest;
}

fs::path BlobOf(const fs::path& layout, const std::vector<uint8_t>& bytes) {
  return layout / "blobs" / "sha256" / Sha256Hex(bytes);
}

TEST(OciTest, VerifiesLayoutAndReportsManifestDigest) {
  ScopedTempDir dir;
  auto l1 = MakeTar({{"bin", 'd', "", 0755}, {"bin/model", 'f', "#!model", 0755}});
  auto l2 = MakeTar({{"data.txt", 'f', "weights"}}, /*gzip=*/true);
  const std::string digest = MakeLayout(dir.path() / "img", {l1, l2});
  auto image = VerifyOciLayout(dir.path() / "img");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->manifest.digest, digest);
  EXPECT_EQ(image->layers.size(), 2u);
  EXPECT_EQ(image->argv, (std::vector<std::string>{"/bin/model", "--x"}));
  EXPECT_EQ(image->env, (std::vector<std::string>{"A=1"}));
  EXPECT_EQ(image->working_dir, "/w");
  // One thread or all cores: the same verdict.
  OciLimits one;
  one.threads = 1;
  auto sequential = VerifyOciLayout(dir.path() / "img", one);
  ASSERT_TRUE(sequential.ok());
  EXPECT_EQ(sequential->manifest.digest, digest);

  ASSERT_TRUE(UnpackLayers(*image, dir.path() / "root").ok());
  EXPECT_EQ(fs::file_size(dir.path() / "root/bin/model"), 7u);
  EXPECT_TRUE(fs::exists(dir.path() / "root/data.txt"));
}

TEST(OciTest, ModifiedLayerIsRejectedNamingTheBlob) {
  ScopedTempDir dir;
  auto layer = MakeTar({{"f", 'f', "hello world"}});
  MakeLayout(dir.path() / "img", {layer});
  auto bytes = layer;
  bytes[bytes.size() / 3] ^= 1;
  WriteFileOrDie(BlobOf(dir.path() / "img", layer), bytes);
  auto image = VerifyOciLayout(dir.path() / "img");
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("oci.blob.digest"), std::string::npos) << image.status();
}

TEST(OciTest, TruncatedOrGrownLayerIsRejected) {
  ScopedTempDir dir;
  auto layer = MakeTar({{"f", 'f', "hello world"}});
  MakeLayout(dir.path() / "img", {layer});
  auto shorter = layer;
  shorter.resize(layer.size() - 1);
  WriteFileOrDie(BlobOf(dir.path() / "img", layer), shorter);
  auto image = VerifyOciLayout(dir.path() / "img");
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("oci.blob.size"), std::string::npos) << image.status();
}

TEST(OciTest, TamperedManifestOrConfigIsRejected) {
  ScopedTempDir dir;
  MakeLayout(dir.path() / "img", {MakeTar({{"f", 'f', "x"}})});
  // Every file under blobs/: flip a byte of each small JSON blob in turn.
  for (const auto& e : fs::directory_iterator(dir.path() / "img/blobs/sha256")) {
    auto bytes = ReadFileOrDie(e.path());
    if (bytes.size() > 4096) continue;
    auto tampered = bytes;
    tampered[tampered.size() / 2] ^= 0x20;
    WriteFileOrDie(e.path(), tampered);
    auto image = VerifyOciLayout(dir.path() / "img");
    EXPECT_FALSE(image.ok()) << e.path();
    WriteFileOrDie(e.path(), bytes);
  }
  EXPECT_TRUE(VerifyOciLayout(dir.path() / "img").ok());
}

TEST(OciTest, MalformedIndexIsRejected) {
  ScopedTempDir dir;
  MakeLayout(dir.path() / "img", {MakeTar({{"f", 'f', "x"}})});
  for (
      const std::string& index :
      {std::string("not json"), std::string("{}"), std::string(R"({"manifests":[]})"),
       std::string(
           R"({"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:00","size":1}]})"),
       std::string(
           R"({"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"md5:0011","size":1}]})")}) {
    WriteFileOrDie(dir.path() / "img/index.json", index);
    EXPECT_FALSE(VerifyOciLayout(dir.path() / "img").ok()) << index;
  }
}

TEST(OciTest, OciArchiveIsExtractedAndVerified) {
  ScopedTempDir dir;
  const std::string digest = MakeLayout(dir.path() / "img", {MakeTar({{"f", 'f', "x"}})});
  std::vector<Entry> entries;
  for (const auto& e : fs::recursive_directory_iterator(dir.path() / "img")) {
    const std::string rel = fs::relative(e.path(), dir.path() / "img").string();
    if (e.is_directory()) {
      entries.push_back({rel, 'd', "", 0755});
    } else {
      auto b = ReadFileOrDie(e.path());
      entries.push_back({rel, 'f', std::string(b.begin(), b.end())});
    }
  }
  WriteFileOrDie(dir.path() / "img.tar", MakeTar(entries));
  fs::create_directories(dir.path() / "work");
  auto image = LoadOciImage(dir.path() / "img.tar", dir.path() / "work");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->manifest.digest, digest);
  EXPECT_EQ(fs::status(dir.path() / "work/layout").permissions() & fs::perms::others_all,
            fs::perms::none);

  // An archive with a symlink or a `..` entry is refused.
  auto with_link = entries;
  with_link.push_back({"blobs/link", 'l', "/etc/passwd"});
  WriteFileOrDie(dir.path() / "bad1.tar", MakeTar(with_link));
  EXPECT_FALSE(LoadOciImage(dir.path() / "bad1.tar", dir.path() / "work").ok());
  auto with_dotdot = entries;
  with_dotdot.push_back({"../escape", 'f', "x"});
  WriteFileOrDie(dir.path() / "bad2.tar", MakeTar(with_dotdot));
  auto bad = LoadOciImage(dir.path() / "bad2.tar", dir.path() / "work");
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(fs::exists(dir.path() / "work/escape"));
  // A truncated archive is an error, not a crash.
  auto whole = ReadFileOrDie(dir.path() / "img.tar");
  for (size_t cut : {size_t{100}, whole.size() / 2, whole.size() - 700}) {
    std::vector<uint8_t> part(whole.begin(), whole.begin() + static_cast<long>(cut));
    WriteFileOrDie(dir.path() / "cut.tar", part);
    EXPECT_FALSE(LoadOciImage(dir.path() / "cut.tar", dir.path() / "work").ok()) << cut;
  }
}

// Unpacks one crafted layer over an optional lower layer.
absl::Status Unpack(const fs::path& dir, const std::vector<std::vector<uint8_t>>& layers) {
  MakeLayout(dir / "img", layers);
  auto image = VerifyOciLayout(dir / "img");
  if (!image.ok()) return image.status();
  return UnpackLayers(*image, dir / "root");
}

TEST(OciTest, WhiteoutsRemoveLowerEntries) {
  ScopedTempDir dir;
  auto lower = MakeTar({{"a", 'd', "", 0755},
                        {"a/one", 'f', "1"},
                        {"a/two", 'f', "2"},
                        {"b", 'd', "", 0755},
                        {"b/keep", 'f', "k"},
                        {"gone", 'f', "g"}});
  auto upper = MakeTar({{".wh.gone", 'f', ""}, {"a/.wh..wh..opq", 'f', ""}, {"a/three", 'f', "3"}});
  ASSERT_TRUE(Unpack(dir.path(), {lower, upper}).ok());
  EXPECT_FALSE(fs::exists(dir.path() / "root/gone"));
  EXPECT_FALSE(fs::exists(dir.path() / "root/a/one"));
  EXPECT_FALSE(fs::exists(dir.path() / "root/a/two"));
  EXPECT_TRUE(fs::exists(dir.path() / "root/a/three"));
  EXPECT_TRUE(fs::exists(dir.path() / "root/b/keep"));
}

TEST(OciTest, HostileLayersAreRejected) {
  struct Case {
    const char* name;
    std::vector<std::vector<uint8_t>> layers;
    const char* escaped;  // a path outside the root that must not appear
  };
  ScopedTempDir outside;
  const std::string victim = (outside.path() / "victim").string();
  std::vector<Case> cases = {
      {"dotdot", {MakeTar({{"../../escape", 'f', "x"}})}, nullptr},
      {"absolute", {MakeTar({{victim, 'f', "x"}})}, nullptr},
      {"symlink escaping", {MakeTar({{"l", 'l', "../../../../etc"}})}, nullptr},
      {"path through symlink",
       {MakeTar({{"l", 'l', outside.path().string()}}), MakeTar({{"l/victim", 'f', "x"}})},
       "victim"},
      {"hardlink outside", {MakeTar({{"h", 'h', "../../etc/passwd"}})}, nullptr},
      {"hardlink to nothing", {MakeTar({{"h", 'h', "missing"}})}, nullptr},
      {"fifo", {MakeTar({{"p", 'p', ""}})}, nullptr},
  };
  for (const auto& c : cases) {
    ScopedTempDir dir;
    auto s = Unpack(dir.path(), c.layers);
    EXPECT_FALSE(s.ok()) << c.name;
    EXPECT_NE(s.message().find("oci.unpack"), std::string::npos) << c.name << ": " << s;
    EXPECT_FALSE(fs::exists(outside.path() / "victim")) << c.name;
  }
}

TEST(OciTest, SetIdBitsAreDroppedAndLinksInsideAreKept) {
  ScopedTempDir dir;
  auto layer = MakeTar({{"bin", 'd', "", 0755},
                        {"bin/tool", 'f', "t", 04755},
                        {"bin/alias", 'l', "tool"},
                        {"bin/abs", 'l', "/bin/tool"},
                        {"bin/hard", 'h', "bin/tool"}});
  ASSERT_TRUE(Unpack(dir.path(), {layer}).ok());
  struct stat st {};
  ASSERT_EQ(stat((dir.path() / "root/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(fs::read_symlink(dir.path() / "root/bin/alias"), "tool");
  EXPECT_EQ(fs::read_symlink(dir.path() / "root/bin/abs"), "/bin/tool");
  EXPECT_EQ(st.st_nlink, 2u);
}

TEST(OciTest, TruncatedLayerFailsCleanly) {
  ScopedTempDir dir;
  auto layer = MakeTar({{"f", 'f', std::string(100000, 'x')}}, /*gzip=*/true);
  std::vector<uint8_t> cut(layer.begin(), layer.begin() + static_cast<long>(layer.size() / 2));
  auto s = Unpack(dir.path(), {cut});  // the descriptor matches the cut blob: unpacking finds it
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace appliance::supervisor
