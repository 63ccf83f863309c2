// Sealed blobs (issue 10, attest/seal/sealed_blob.h): round trips at every chunk boundary,
// streamed through files, and every way to break one: each byte flipped, each truncation,
// trailing bytes, reordered chunks, another key — each refused, a chunk's failure naming it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/seal/key_file.h"
#include "attest/seal/key_wrap.h"
#include "attest/seal/sealed_blob.h"
#include "attest/seal/sealed_image.h"
#include "supervisor/oci.h"
#include "test_support.h"

namespace attest::seal {
namespace {

std::vector<uint8_t> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

ModelKey Key(uint8_t fill) {
  ModelKey k;
  k.fill(fill);
  return k;
}

TEST(SealedBlobTest, RoundTripsAtEveryChunkBoundary) {
  const ModelKey key = Key(7);
  for (size_t size : {0, 1, 63, 64, 65, 127, 128, 129, 64 * 5 + 3}) {
    SCOPED_TRACE(size);
    const auto plain = Random(size, static_cast<uint32_t>(size));
    auto sealed = Seal(plain, key, 64);
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    auto h = ParseHeader(std::span(*sealed).first(kHeaderSize));
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->plaintext_size, size);
    EXPECT_EQ(h->chunks(), size == 0 ? 1 : (size + 63) / 64);
    EXPECT_EQ(sealed->size(), h->sealed_size());
    auto opened = Open(*sealed, key);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, plain);
  }
  // Two seals of the same bytes differ (random blob id, so another derived key).
  const auto plain = Random(100, 1);
  EXPECT_NE(*Seal(plain, key, 64), *Seal(plain, key, 64));
}

TEST(SealedBlobTest, EveryFlippedByteIsRefusedAndAChunkFailureNamesTheChunk) {
  const ModelKey key = Key(9);
  const auto plain = Random(150, 3);  // chunks of 64, 64, 22
  const auto sealed = *Seal(plain, key, 64);
  ASSERT_EQ(sealed.size(), kHeaderSize + 150 + 3 * kTagSize);
  for (size_t i = 0; i < sealed.size(); ++i) {
    auto t = sealed;
    t[i] ^= 0x01;
    auto r = Open(t, key);
    ASSERT_FALSE(r.ok()) << "byte " << i << " flipped and still opened";
    const std::string msg(r.status().message());
    if (i < 8) {
      EXPECT_TRUE(absl::StrContains(msg, "magic")) << i << ": " << msg;
    } else if (i >= 24 && i < kHeaderSize) {  // the blob id: another derived key
      EXPECT_TRUE(absl::StrContains(msg, "chunk 0 of 3: authentication failed"))
          << i << ": " << msg;
    } else if (i >= kHeaderSize) {
      const size_t chunk = (i - kHeaderSize) / (64 + kTagSize);
      EXPECT_TRUE(
          absl::StrContains(msg, absl::StrCat("chunk ", chunk, " of 3: authentication failed")))
          << i << ": " << msg;
    }
  }
}

TEST(SealedBlobTest, TruncationsTrailingBytesReorderingAndAnotherKeyAreRefused) {
  const ModelKey key = Key(11);
  const auto plain = Random(64 * 3, 5);  // three full chunks
  const auto sealed = *Seal(plain, key, 64);
  for (size_t n = 0; n < sealed.size(); ++n) {
    EXPECT_FALSE(Open(std::span(sealed).first(n), key).ok()) << n;
  }
  auto longer = sealed;
  longer.push_back(0);
  auto r = Open(longer, key);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "where its header")) << r.status();
  // Chunks 0 and 1 swapped (same length): chunk 0 fails.
  auto swapped = sealed;
  const size_t stride = 64 + kTagSize;
  std::swap_ranges(swapped.begin() + kHeaderSize, swapped.begin() + kHeaderSize + stride,
                   swapped.begin() + kHeaderSize + stride);
  r = Open(swapped, key);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "chunk 0 of 3")) << r.status();
  // The last chunk dropped and the header told two chunks: the header is authenticated.
  auto cut = std::vector<uint8_t>(sealed.begin(), sealed.end() - stride);
  cut[23] = 128;  // plaintext_size 192 -> 128
  r = Open(cut, key);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "chunk 0 of 2: authentication failed"))
      << r.status();
  r = Open(sealed, Key(12));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "chunk 0 of 3")) << r.status();
}

TEST(SealedBlobTest, OpenIntoAPlaceGivesTheSameAndFailsTheSame) {
  const ModelKey key = Key(13);
  const auto plain = Random(64 * 2 + 10, 6);
  const auto sealed = *Seal(plain, key, 64);
  std::vector<uint8_t> out(plain.size() + 5, 0xee);
  auto n = OpenInto(sealed, key, out);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, plain.size());
  EXPECT_TRUE(std::equal(plain.begin(), plain.end(), out.begin()));
  EXPECT_FALSE(OpenInto(sealed, key, std::span(out).first(plain.size() - 1)).ok());
  for (size_t i = 0; i < sealed.size(); ++i) {
    auto t = sealed;
    t[i] ^= 0x80;
    auto r = OpenInto(t, key, out);
    ASSERT_FALSE(r.ok()) << i;
    if (i >= kHeaderSize) {
      const size_t chunk = (i - kHeaderSize) / (64 + kTagSize);
      EXPECT_TRUE(absl::StrContains(r.status().message(), absl::StrCat("chunk ", chunk, " of 3")))
          << i << ": " << r.status();
    }
  }
  for (size_t len = 0; len < sealed.size(); ++len) {
    EXPECT_FALSE(OpenInto(std::span(sealed).first(len), key, out).ok()) << len;
  }
}

TEST(SealedBlobTest, HeaderFieldsAreBounded) {
  SealedHeader h;
  h.plaintext_size = 10;
  auto bytes = SerializeHeader(h);
  EXPECT_TRUE(ParseHeader(bytes).ok());
  auto bad = bytes;
  bad[11] = 2;  // version 2
  EXPECT_TRUE(absl::StrContains(ParseHeader(bad).status().message(), "version 2"));
  bad = bytes;
  std::fill(bad.begin() + 12, bad.begin() + 16, 0);  // chunk size 0
  EXPECT_TRUE(absl::StrContains(ParseHeader(bad).status().message(), "chunk size 0"));
  bad = bytes;
  bad[12] = 0x02;  // chunk size 32 MiB + 1 MiB
  EXPECT_TRUE(absl::StrContains(ParseHeader(bad).status().message(), "chunk size"));
  bad = bytes;
  bad[16] = 0x01;  // plaintext size 2^56 + 10
  EXPECT_TRUE(absl::StrContains(ParseHeader(bad).status().message(), "plaintext size"));
  EXPECT_FALSE(ParseHeader(std::span(bytes).first(39)).ok());
  EXPECT_FALSE(Seal(Random(10, 1), Key(1), 0).ok());
  EXPECT_FALSE(Seal(Random(10, 1), Key(1), kMaxChunkSize + 1).ok());
}

TEST(SealedBlobTest, StreamsThroughFiles) {
  attest::testing::ScopedTempDir tmp;
  const auto plain = Random(3 * (1 << 20) + 12345, 8);
  const auto p_in = tmp.path() / "plain", p_sealed = tmp.path() / "sealed",
             p_out = tmp.path() / "out";
  attest::testing::WriteFileOrDie(p_in, std::string(plain.begin(), plain.end()));
  auto key = NewModelKey();
  ASSERT_TRUE(key.ok());
  int in = open(p_in.c_str(), O_RDONLY),
      out = open(p_sealed.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  auto h = SealFd(in, plain.size(), out, *key);
  close(in);
  close(out);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->chunks(), 4u);
  EXPECT_EQ(std::filesystem::file_size(p_sealed), h->sealed_size());
  in = open(p_sealed.c_str(), O_RDONLY);
  out = open(p_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  auto opened = OpenFd(in, h->sealed_size(), out, *key);
  close(in);
  close(out);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(attest::testing::ReadFileOrDie(p_out), plain);
  // A sealed file shorter than its descriptor says: refused, naming the chunk it ran out in.
  std::filesystem::resize_file(p_sealed, h->sealed_size() - 100);
  in = open(p_sealed.c_str(), O_RDONLY);
  out = open(p_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  opened = OpenFd(in, h->sealed_size(), out, *key);
  close(in);
  close(out);
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(absl::StrContains(opened.status().message(), "chunk 3 of 4: truncated"))
      << opened.status();
}

}  // namespace
}  // namespace attest::seal

// Sealed layouts (attest/seal/sealed_image.h).
namespace attest::seal {
namespace {

namespace fs = std::filesystem;

// A small OCI-shaped layout: oci-layout, index.json and three blobs, one over a chunk.
fs::path MakeLayout(const fs::path& dir) {
  fs::create_directories(dir / "blobs/sha256");
  attest::testing::WriteFileOrDie(dir / "oci-layout",
                                  std::string(R"({"imageLayoutVersion":"1.0.0"})"));
  attest::testing::WriteFileOrDie(dir / "index.json",
                                  std::string(R"({"schemaVersion":2,"manifests":[]})"));
  for (auto [name, size] : {std::pair{"aa", 10}, std::pair{"bb", 200000}, std::pair{"cc", 10}}) {
    const auto bytes = Random(size, static_cast<uint32_t>(size) + name[0]);
    attest::testing::WriteFileOrDie(dir / "blobs/sha256" / (std::string(64, name[0])),
                                    std::string(bytes.begin(), bytes.end()));
  }
  return dir;
}

std::map<std::string, std::vector<uint8_t>> Tree(const fs::path& dir) {
  std::map<std::string, std::vector<uint8_t>> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file())
      out[fs::relative(e.path(), dir).string()] = attest::testing::ReadFileOrDie(e.path());
  }
  return out;
}

class SealedLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    layout_ = MakeLayout(tmp_.path() / "layout");
    sealed_ = tmp_.path() / "sealed";
    auto r = SealLayout(layout_, sealed_, key_, "example-model:1", 4096);
    ASSERT_TRUE(r.ok()) << r.status();
    result_ = *r;
    shm_ = fs::path("/dev/shm") / ("appliance-seal-test-" + std::to_string(getpid()));
    fs::create_directories(shm_);
  }
  void TearDown() override { fs::remove_all(shm_); }

  attest::testing::ScopedTempDir tmp_;
  ModelKey key_ = Key(21);
  fs::path layout_, sealed_, shm_;
  SealResult result_;
};

TEST_F(SealedLayoutTest, UnsealsTheSameTreeIntoMemoryOnly) {
  EXPECT_EQ(result_.toc.files.size(), 5u);
  EXPECT_EQ(result_.model.blobs.size(), 5u);
  // Nothing of the plaintext is in the sealed folder, not even a name.
  for (const auto& [path, bytes] : Tree(sealed_)) {
    EXPECT_FALSE(absl::StrContains(path, std::string(64, 'a'))) << path;
    EXPECT_FALSE(absl::StrContains(std::string(bytes.begin(), bytes.end()), "imageLayoutVersion"))
        << path;
  }
  auto r = UnsealLayout(sealed_, key_, shm_ / "plain");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_id, "example-model:1");
  EXPECT_EQ(r->files, 5u);
  EXPECT_EQ(Tree(shm_ / "plain"), Tree(layout_));
  EXPECT_EQ(fs::status(shm_ / "plain").permissions() & fs::perms::all, fs::perms::owner_all);
  // On a persistent filesystem: refused before anything is written.
  auto disk = UnsealLayout(sealed_, key_, tmp_.path() / "plain");
  ASSERT_FALSE(disk.ok());
  EXPECT_TRUE(absl::StrContains(disk.status().message(), "not tmpfs or ramfs")) << disk.status();
  EXPECT_FALSE(fs::exists(tmp_.path() / "plain"));
}

TEST_F(SealedLayoutTest, SealingFailsWholeOrNotAtAll) {
  // A layout with a symlink cannot be sealed; nothing of the attempt stays.
  std::filesystem::create_symlink("index.json", layout_ / "link");
  auto r = SealLayout(layout_, tmp_.path() / "sealed2", key_, "m", 4096);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "symlink")) << r.status();
  EXPECT_FALSE(fs::exists(tmp_.path() / "sealed2"));
  // Into an existing folder: refused, the folder untouched.
  std::filesystem::remove(layout_ / "link");
  r = SealLayout(layout_, sealed_, key_, "m", 4096);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(fs::exists(sealed_ / "sealed-model.json"));
  EXPECT_FALSE(SealLayout(layout_, tmp_.path() / "sealed3", key_, "bad id/", 4096).ok());
}

TEST_F(SealedLayoutTest, AnotherKeyTamperingAndSwapsAreRefusedAndNothingIsLeft) {
  auto r = UnsealLayout(sealed_, Key(22), shm_ / "plain");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(),
                                "table of contents: chunk 0 of 1: authentication failed"))
      << r.status();
  // A flipped byte in the big blob's third chunk: named by file and chunk; nothing left behind.
  std::string big;
  for (const auto& f : result_.toc.files) {
    if (f.size == 200000) big = f.blob;
  }
  const fs::path big_path = sealed_ / "blobs" / big.substr(7);
  auto bytes = attest::testing::ReadFileOrDie(big_path);
  auto tampered = bytes;
  tampered[kHeaderSize + 2 * (4096 + kTagSize) + 5] ^= 1;
  attest::testing::WriteFileOrDie(big_path, std::string(tampered.begin(), tampered.end()));
  r = UnsealLayout(sealed_, key_, shm_ / "plain");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(),
                                "blobs/sha256/" + std::string(64, 'b') + ": chunk 2 of 49"))
      << r.status();
  EXPECT_FALSE(fs::exists(shm_ / "plain"));
  attest::testing::WriteFileOrDie(big_path, std::string(bytes.begin(), bytes.end()));
  // Two sealed blobs of the same size swapped: each opens (same key) but lands at the wrong
  // path: the table's SHA-256 catches it.
  std::vector<std::string> small;
  for (const auto& f : result_.toc.files) {
    if (f.size == 10) small.push_back(f.blob.substr(7));
  }
  ASSERT_EQ(small.size(), 2u);
  fs::rename(sealed_ / "blobs" / small[0], sealed_ / "blobs/x");
  fs::rename(sealed_ / "blobs" / small[1], sealed_ / "blobs" / small[0]);
  fs::rename(sealed_ / "blobs/x", sealed_ / "blobs" / small[1]);
  r = UnsealLayout(sealed_, key_, shm_ / "plain");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "the table says")) << r.status();
  EXPECT_FALSE(fs::exists(shm_ / "plain"));
  // A missing blob, and one longer than listed.
  fs::remove(sealed_ / "blobs" / small[0]);
  r = UnsealLayout(sealed_, key_, shm_ / "plain");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), small[0])) << r.status();
}

TEST(SealedModelJsonTest, ParsersAreStrict) {
  SealedModel m;
  m.model_id = "m";
  m.toc = {"sha256:" + std::string(64, 'a'), 100};
  m.blobs = {{"sha256:" + std::string(64, 'b'), 200}};
  const std::string good = SerializeSealedModel(m);
  auto span = [](const std::string& s) {
    return std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  ASSERT_TRUE(ParseSealedModel(span(good)).ok());
  for (size_t n = 0; n + 1 < good.size(); ++n) {
    EXPECT_FALSE(ParseSealedModel(span(good.substr(0, n))).ok()) << n;
  }
  for (auto [from, to] : std::initializer_list<std::pair<const char*, const char*>>{
           {"\"version\": 1", "\"version\": 2"},
           {"\"model_id\": \"m\"", "\"model_id\": \"m/../x\""},
           {"\"size\": 100", "\"size\": 10"},
           {"\"size\": 200", "\"size\": -1"},
           {"aaaa", "AAAA"},
           {"\"blobs\"", "\"extra\": 1, \"blobs\""}}) {
    std::string t = good;
    t.replace(t.find(from), std::strlen(from), to);
    EXPECT_FALSE(ParseSealedModel(span(t)).ok()) << to;
  }
  Toc toc;
  toc.model_id = "m";
  toc.files = {{"index.json", "sha256:" + std::string(64, 'c'), 5, std::string(64, 'd')}};
  const std::string good_toc = SerializeToc(toc);
  ASSERT_TRUE(ParseToc(span(good_toc)).ok());
  for (const char* path : {"../x", "/abs", "a//b", "a/./b", "a b", "a/b/c/d/e", ""}) {
    Toc t = toc;
    t.files[0].path = path;
    EXPECT_FALSE(ParseToc(span(SerializeToc(t))).ok()) << path;
  }
  Toc dup = toc;
  dup.files.push_back(toc.files[0]);
  dup.files[1].blob = "sha256:" + std::string(64, 'e');
  EXPECT_FALSE(ParseToc(span(SerializeToc(dup))).ok());
  Toc nested = toc;
  nested.files.push_back(
      {"index.json/x", "sha256:" + std::string(64, 'f'), 1, std::string(64, 'd')});
  EXPECT_FALSE(ParseToc(span(SerializeToc(nested))).ok());
}

}  // namespace
}  // namespace attest::seal

// Model keys at rest (attest/seal/key_file.h).
namespace attest::seal {
namespace {

TEST(ModelKeyFileTest, RoundTripWrongPassphraseAndTamperedFields) {
  attest::testing::ScopedTempDir tmp;
  const ModelKey key = Key(31);
  const auto file = tmp.path() / "m.key.json";
  ASSERT_TRUE(WriteModelKeyFile(file, key, "example-model:1", "correct horse").ok());
  EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_TRUE(
      absl::IsAlreadyExists(WriteModelKeyFile(file, key, "example-model:1", "correct horse")));
  const auto text = attest::testing::ReadFileOrDie(file);
  EXPECT_EQ(std::search(text.begin(), text.end(), key.begin(), key.end()), text.end());
  std::string id;
  auto back = ReadModelKeyFile(file, "correct horse", &id);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, key);
  EXPECT_EQ(id, "example-model:1");
  EXPECT_TRUE(absl::IsPermissionDenied(ReadModelKeyFile(file, "wrong horse").status()));
  EXPECT_FALSE(EncryptModelKey(key, "m", "short").ok());

  const std::string good(text.begin(), text.end());
  auto json = nlohmann::json::parse(good);
  auto parse = [](const nlohmann::json& j) {
    const std::string s = j.dump();
    return DecryptModelKey(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()),
                           "correct horse");
  };
  ASSERT_TRUE(parse(json).ok());
  auto t = json;
  t["model_id"] = "another-model";  // the id is authenticated
  EXPECT_TRUE(absl::IsPermissionDenied(parse(t).status())) << parse(t).status();
  t = json;
  t["kdf"]["n"] = 16384;  // another derived key
  EXPECT_TRUE(absl::IsPermissionDenied(parse(t).status()));
  t = json;
  t["kdf"]["n"] = 1 << 18;  // bounded before any work
  EXPECT_TRUE(absl::IsInvalidArgument(parse(t).status()));
  t = json;
  auto ct = *attest::Base64Decode(json["ciphertext"].get<std::string>());
  ct[3] ^= 1;
  t["ciphertext"] = attest::Base64Encode(ct);
  EXPECT_TRUE(absl::IsPermissionDenied(parse(t).status()));
  t = json;
  t["extra"] = 1;
  EXPECT_TRUE(absl::IsInvalidArgument(parse(t).status()));
  t = json;
  t["nonce"] = attest::Base64Encode(std::vector<uint8_t>(11));
  EXPECT_TRUE(absl::IsInvalidArgument(parse(t).status()));
  for (size_t n = 0; n + 2 < good.size(); n += 7) {
    EXPECT_FALSE(DecryptModelKey(std::span(text).first(n), "correct horse").ok()) << n;
  }
}

}  // namespace
}  // namespace attest::seal

// appliance-release seal-model, end to end: the unsealed layout verifies like the original and
// its manifest digest — what the runtime log records and reference values pin — is unchanged.
namespace attest::seal {
namespace {

TEST(SealModelCliTest, TheMeasuredDigestIsThePlainManifestsDigest) {
  const std::filesystem::path model = std::filesystem::path(APPLIANCE_BUILD_DIR) / "example-model";
  if (!std::filesystem::exists(model / "oci/index.json")) {
    GTEST_SKIP() << "no example model OCI layout at " << model << " (a gRPC build makes it)";
  }
  attest::testing::ScopedTempDir tmp;
  const auto sealed = tmp.path() / "sealed", key_file = tmp.path() / "model.key.json";
  auto r = attest::testing::RunProcess(
      {"/usr/bin/env", "APPLIANCE_KEYD_PASSPHRASE=store passphrase", APPLIANCE_RELEASE_BIN,
       "seal-model", "--image", (model / "oci").string(), "--output", sealed.string(), "--model-id",
       "example-model:1", "--key-out", key_file.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["model_id"], "example-model:1");
  // Again into the same places: refused, nothing overwritten (exit 2).
  r = attest::testing::RunProcess(
      {"/usr/bin/env", "APPLIANCE_KEYD_PASSPHRASE=store passphrase", APPLIANCE_RELEASE_BIN,
       "seal-model", "--image", (model / "oci").string(), "--output", sealed.string(), "--model-id",
       "example-model:1", "--key-out", key_file.string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;

  auto key = ReadModelKeyFile(key_file, "store passphrase");
  ASSERT_TRUE(key.ok()) << key.status();
  const auto shm =
      std::filesystem::path("/dev/shm") / ("appliance-seal-cli-" + std::to_string(getpid()));
  std::filesystem::create_directories(shm);
  auto unsealed = UnsealLayout(sealed, *key, shm / "layout");
  ASSERT_TRUE(unsealed.ok()) << unsealed.status();
  auto image = appliance::supervisor::VerifyOciLayout(shm / "layout");
  ASSERT_TRUE(image.ok()) << image.status();
  const auto digest = attest::testing::ReadFileOrDie(model / "digest");
  std::string expected(digest.begin(), digest.end());
  expected.erase(expected.find_last_not_of(" \n") + 1);
  EXPECT_EQ(image->manifest.digest, expected);
  std::filesystem::remove_all(shm);
}

}  // namespace
}  // namespace attest::seal

// Key release wrapping (attest/seal/key_wrap.h).
namespace attest::seal {
namespace {

TEST(KeyWrapTest, OnlyTheKeyRequestKeyUnwrapsForItsModel) {
  const ModelKey key = Key(41);
  auto request = KeyRequestKey::Generate();
  ASSERT_TRUE(request.ok()) << request.status();
  auto wrapped = WrapForKeyRequest(key, request->spki_der(), "example-model:1");
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  auto back = request->Unwrap(*wrapped, "example-model:1");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, key);
  // Another model's context, another key-request key: refused.
  EXPECT_TRUE(absl::IsPermissionDenied(request->Unwrap(*wrapped, "example-model:2").status()));
  auto other = KeyRequestKey::Generate();
  EXPECT_TRUE(absl::IsPermissionDenied(other->Unwrap(*wrapped, "example-model:1").status()));
  // Every byte of the nonce and ciphertext, and the ephemeral key swapped: refused.
  for (size_t i = 0; i < wrapped->nonce.size() + wrapped->ciphertext.size(); ++i) {
    WrappedKey t = *wrapped;
    if (i < t.nonce.size()) {
      t.nonce[i] ^= 1;
    } else {
      t.ciphertext[i - t.nonce.size()] ^= 1;
    }
    EXPECT_FALSE(request->Unwrap(t, "example-model:1").ok()) << i;
  }
  WrappedKey t = *wrapped;
  t.ephemeral_spki_der = other->spki_der();
  EXPECT_TRUE(absl::IsPermissionDenied(request->Unwrap(t, "example-model:1").status()));
  t.ephemeral_spki_der.pop_back();
  EXPECT_TRUE(absl::IsInvalidArgument(request->Unwrap(t, "example-model:1").status()));
  // Two wraps of the same key differ (ephemeral key, nonce).
  EXPECT_NE(WrapForKeyRequest(key, request->spki_der(), "m")->ciphertext,
            WrapForKeyRequest(key, request->spki_der(), "m")->ciphertext);
  // Not a P-256 SubjectPublicKeyInfo: refused, naming it.
  auto bad = WrapForKeyRequest(key, std::vector<uint8_t>(91, 0x30), "m");
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  auto ed25519 = attest::testing::RunProcess({"/bin/sh", "-c",
                                              "openssl genpkey -algorithm ed25519 2>/dev/null | "
                                              "openssl pkey -pubout -outform DER | base64 -w0"});
  ASSERT_EQ(ed25519.exit_code, 0);
  auto ed = WrapForKeyRequest(key, *attest::Base64Decode(ed25519.out), "m");
  ASSERT_FALSE(ed.ok());
  EXPECT_TRUE(absl::StrContains(ed.status().message(), "P-256 EC key expected")) << ed.status();
}

}  // namespace
}  // namespace attest::seal
