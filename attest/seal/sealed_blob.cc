#include "attest/seal/sealed_blob.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/openssl_util.h"
#include "seal/aead.h"

namespace attest::seal {
namespace {

constexpr char kMagic[8] = {'A', 'P', 'P', 'L', 'S', 'E', 'A', 'L'};
constexpr char kHkdfInfo[] = "appliance-sealed-blob-v1";

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | p[i];
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, ossl::Deleter<EVP_CIPHER_CTX_free>>;

// The per-blob key and one reusable AES-256-GCM context. The key is wiped on destruction.
class ChunkCipher {
 public:
  static absl::StatusOr<ChunkCipher> Create(const ModelKey& model_key, const SealedHeader& h,
                                            bool encrypt) {
    ChunkCipher c;
    c.header_ = SerializeHeader(h);
    c.chunks_ = h.chunks();
    auto key = aead::HkdfSha256(model_key, h.blob_id, kHkdfInfo);
    if (!key.ok()) return key.status();
    c.key_ = *key;
    OPENSSL_cleanse(key->data(), key->size());
    c.ctx_.reset(EVP_CIPHER_CTX_new());
    if (!c.ctx_) return absl::InternalError("EVP_CIPHER_CTX_new failed");
    const int ok =
        encrypt
            ? EVP_EncryptInit_ex(c.ctx_.get(), EVP_aes_256_gcm(), nullptr, c.key_.data(), nullptr)
            : EVP_DecryptInit_ex(c.ctx_.get(), EVP_aes_256_gcm(), nullptr, c.key_.data(), nullptr);
    if (ok != 1) return absl::InternalError("AES-256-GCM init: " + ossl::LastError());
    c.encrypt_ = encrypt;
    return c;
  }
  ChunkCipher(ChunkCipher&&) = default;
  ChunkCipher& operator=(ChunkCipher&&) = default;
  ~ChunkCipher() { OPENSSL_cleanse(key_.data(), key_.size()); }

  // Encrypts (or decrypts and authenticates) chunk `index` from `in` to `out` (may be the same);
  // `tag` is written (or read).
  absl::Status Process(uint64_t index, const uint8_t* in, uint8_t* out, size_t len, uint8_t* tag) {
    std::array<uint8_t, 12> nonce{};
    PutU32(nonce.data() + 7, static_cast<uint32_t>(index));
    nonce[11] = index + 1 == chunks_ ? 1 : 0;
    int out_len = 0;
    if (encrypt_) {
      if (EVP_EncryptInit_ex(ctx_.get(), nullptr, nullptr, nullptr, nonce.data()) != 1 ||
          EVP_EncryptUpdate(ctx_.get(), nullptr, &out_len, header_.data(), header_.size()) != 1 ||
          (len > 0 &&
           EVP_EncryptUpdate(ctx_.get(), out, &out_len, in, static_cast<int>(len)) != 1) ||
          EVP_EncryptFinal_ex(ctx_.get(), out + len, &out_len) != 1 ||
          EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, tag) != 1) {
        return absl::InternalError(
            absl::StrCat("chunk ", index, ": AES-256-GCM: ", ossl::LastError()));
      }
      return absl::OkStatus();
    }
    if (EVP_DecryptInit_ex(ctx_.get(), nullptr, nullptr, nullptr, nonce.data()) != 1 ||
        EVP_DecryptUpdate(ctx_.get(), nullptr, &out_len, header_.data(), header_.size()) != 1 ||
        (len > 0 && EVP_DecryptUpdate(ctx_.get(), out, &out_len, in, static_cast<int>(len)) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag) != 1 ||
        EVP_DecryptFinal_ex(ctx_.get(), out + len, &out_len) != 1) {
      ERR_clear_error();
      OPENSSL_cleanse(out, len);  // nothing of an unauthenticated chunk leaves
      return absl::DataLossError(absl::StrCat("chunk ", index, " of ", chunks_,
                                              ": authentication failed (tampered, reordered, or "
                                              "another key)"));
    }
    return absl::OkStatus();
  }

 private:
  ChunkCipher() = default;
  std::array<uint8_t, kHeaderSize> header_{};
  std::array<uint8_t, kKeySize> key_{};
  uint64_t chunks_ = 0;
  CipherCtx ctx_;
  bool encrypt_ = true;
};

using ReadFn = std::function<absl::Status(uint8_t*, size_t)>;  // exactly n bytes
using WriteFn = std::function<absl::Status(const uint8_t*, size_t)>;

absl::StatusOr<SealedHeader> SealStream(const ReadFn& read, uint64_t size, const WriteFn& write,
                                        const ModelKey& key, uint32_t chunk_size) {
  SealedHeader h;
  h.chunk_size = chunk_size;
  h.plaintext_size = size;
  if (chunk_size == 0 || chunk_size > kMaxChunkSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk size ", chunk_size, " is outside 1..", kMaxChunkSize));
  }
  if (size > kMaxPlaintextSize || h.chunks() > 0xffffffffull) {
    return absl::InvalidArgumentError(
        absl::StrCat("blob of ", size, " bytes in chunks of ", chunk_size, " is over the limits"));
  }
  if (RAND_bytes(h.blob_id.data(), static_cast<int>(h.blob_id.size())) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  auto cipher = ChunkCipher::Create(key, h, true);
  if (!cipher.ok()) return cipher.status();
  const auto header = SerializeHeader(h);
  if (auto st = write(header.data(), header.size()); !st.ok()) return st;
  std::vector<uint8_t> buf(
      static_cast<size_t>(std::min<uint64_t>(chunk_size, std::max<uint64_t>(size, 1))) + kTagSize);
  uint64_t left = size;
  for (uint64_t i = 0; i < h.chunks(); ++i) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(left, chunk_size));
    if (auto st = read(buf.data(), len); !st.ok()) return st;
    if (auto st = cipher->Process(i, buf.data(), buf.data(), len, buf.data() + len); !st.ok())
      return st;
    if (auto st = write(buf.data(), len + kTagSize); !st.ok()) return st;
    left -= len;
  }
  OPENSSL_cleanse(buf.data(), buf.size());
  return h;
}

absl::Status CheckHoldsHeader(uint64_t sealed_size) {
  if (sealed_size >= kHeaderSize) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "sealed blob: ", sealed_size, " bytes, shorter than its ", kHeaderSize, "-byte header"));
}

// The header, parsed and checked against the blob's whole size (as its descriptor states it).
absl::StatusOr<SealedHeader> HeaderOfBlob(std::span<const uint8_t> header_bytes,
                                          uint64_t sealed_size) {
  auto h = ParseHeader(header_bytes);
  if (!h.ok()) return h.status();
  if (h->sealed_size() != sealed_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("sealed blob: ", sealed_size, " bytes where its header (", h->plaintext_size,
                     " bytes in ", h->chunks(), " chunks) makes ", h->sealed_size()));
  }
  return h;
}

absl::StatusOr<Opened> OpenStream(const ReadFn& read, uint64_t sealed_size, const WriteFn& write,
                                  const ModelKey& key) {
  if (auto st = CheckHoldsHeader(sealed_size); !st.ok()) return st;
  std::array<uint8_t, kHeaderSize> header_bytes{};
  if (auto st = read(header_bytes.data(), header_bytes.size()); !st.ok()) return st;
  auto h = HeaderOfBlob(header_bytes, sealed_size);
  if (!h.ok()) return h.status();
  auto cipher = ChunkCipher::Create(key, *h, false);
  if (!cipher.ok()) return cipher.status();
  std::vector<uint8_t> buf(static_cast<size_t>(std::min<uint64_t>(
                               h->chunk_size, std::max<uint64_t>(h->plaintext_size, 1))) +
                           kTagSize);
  uint64_t left = h->plaintext_size;
  for (uint64_t i = 0; i < h->chunks(); ++i) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(left, h->chunk_size));
    if (auto st = read(buf.data(), len + kTagSize); !st.ok()) {
      return absl::Status(st.code(),
                          absl::StrCat("chunk ", i, " of ", h->chunks(), ": ", st.message()));
    }
    if (auto st = cipher->Process(i, buf.data(), buf.data(), len, buf.data() + len); !st.ok())
      return st;
    if (auto st = write(buf.data(), len); !st.ok()) return st;
    left -= len;
  }
  OPENSSL_cleanse(buf.data(), buf.size());
  return Opened{*h, h->plaintext_size};
}

absl::Status ReadExactFd(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return absl::InternalError(absl::StrCat("read: ", std::strerror(errno)));
    if (r == 0)
      return absl::InvalidArgumentError(absl::StrCat("truncated: ", n, " more bytes expected"));
    p += r;
    n -= static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

absl::Status WriteAllFd(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return absl::InternalError(absl::StrCat("write: ", std::strerror(errno)));
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t SealedHeader::chunks() const {
  if (chunk_size == 0) return 0;
  return plaintext_size == 0 ? 1 : (plaintext_size + chunk_size - 1) / chunk_size;
}

uint64_t SealedHeader::sealed_size() const {
  return kHeaderSize + plaintext_size + chunks() * kTagSize;
}

std::array<uint8_t, kHeaderSize> SerializeHeader(const SealedHeader& h) {
  std::array<uint8_t, kHeaderSize> out{};
  std::memcpy(out.data(), kMagic, sizeof kMagic);
  PutU32(out.data() + 8, h.version);
  PutU32(out.data() + 12, h.chunk_size);
  PutU64(out.data() + 16, h.plaintext_size);
  std::memcpy(out.data() + 24, h.blob_id.data(), h.blob_id.size());
  return out;
}

absl::StatusOr<SealedHeader> ParseHeader(std::span<const uint8_t> b) {
  if (b.size() != kHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("sealed blob header: ", b.size(), " bytes, expected ", kHeaderSize));
  }
  if (std::memcmp(b.data(), kMagic, sizeof kMagic) != 0) {
    return absl::InvalidArgumentError("sealed blob header: magic is not APPLSEAL");
  }
  SealedHeader h;
  h.version = GetU32(b.data() + 8);
  h.chunk_size = GetU32(b.data() + 12);
  h.plaintext_size = GetU64(b.data() + 16);
  std::memcpy(h.blob_id.data(), b.data() + 24, h.blob_id.size());
  if (h.version != kVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("sealed blob header: version ", h.version, ", expected ", kVersion));
  }
  if (h.chunk_size == 0 || h.chunk_size > kMaxChunkSize) {
    return absl::InvalidArgumentError(absl::StrCat("sealed blob header: chunk size ", h.chunk_size,
                                                   " is outside 1..", kMaxChunkSize));
  }
  if (h.plaintext_size > kMaxPlaintextSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sealed blob header: plaintext size ", h.plaintext_size, " is over ", kMaxPlaintextSize));
  }
  if (h.chunks() > 0xffffffffull) {
    return absl::InvalidArgumentError("sealed blob header: more than 2^32 chunks");
  }
  return h;
}

absl::StatusOr<ModelKey> NewModelKey() {
  ModelKey k{};
  if (RAND_priv_bytes(k.data(), static_cast<int>(k.size())) != 1) {
    return absl::InternalError("RAND_priv_bytes failed");
  }
  return k;
}

absl::StatusOr<SealedHeader> SealFd(int in_fd, uint64_t size, int out_fd, const ModelKey& key,
                                    uint32_t chunk_size) {
  return SealStream([in_fd](uint8_t* p, size_t n) { return ReadExactFd(in_fd, p, n); }, size,
                    [out_fd](const uint8_t* p, size_t n) { return WriteAllFd(out_fd, p, n); }, key,
                    chunk_size);
}

absl::StatusOr<Opened> OpenFd(int in_fd, uint64_t sealed_size, int out_fd, const ModelKey& key) {
  return OpenStream([in_fd](uint8_t* p, size_t n) { return ReadExactFd(in_fd, p, n); }, sealed_size,
                    [out_fd](const uint8_t* p, size_t n) { return WriteAllFd(out_fd, p, n); }, key);
}

absl::StatusOr<std::vector<uint8_t>> Seal(std::span<const uint8_t> plaintext, const ModelKey& key,
                                          uint32_t chunk_size) {
  std::vector<uint8_t> out;
  out.reserve(kHeaderSize + plaintext.size() +
              (plaintext.size() / std::max<uint32_t>(chunk_size, 1) + 1) * kTagSize);
  size_t at = 0;
  auto h = SealStream(
      [&](uint8_t* p, size_t n) {
        if (n > 0) std::memcpy(p, plaintext.data() + at, n);
        at += n;
        return absl::OkStatus();
      },
      plaintext.size(),
      [&](const uint8_t* p, size_t n) {
        out.insert(out.end(), p, p + n);
        return absl::OkStatus();
      },
      key, chunk_size);
  if (!h.ok()) return h.status();
  return out;
}

absl::StatusOr<std::vector<uint8_t>> Open(std::span<const uint8_t> sealed, const ModelKey& key) {
  if (auto st = CheckHoldsHeader(sealed.size()); !st.ok()) return st;
  auto h = HeaderOfBlob(sealed.first(kHeaderSize), sealed.size());
  if (!h.ok()) return h.status();
  std::vector<uint8_t> out(static_cast<size_t>(h->plaintext_size));
  auto opened = OpenInto(sealed, key, out);
  if (!opened.ok()) {
    OPENSSL_cleanse(out.data(), out.size());
    return opened.status();
  }
  return out;
}

absl::StatusOr<uint64_t> OpenInto(std::span<const uint8_t> sealed, const ModelKey& key,
                                  std::span<uint8_t> out) {
  if (auto st = CheckHoldsHeader(sealed.size()); !st.ok()) return st;
  auto h = HeaderOfBlob(sealed.first(kHeaderSize), sealed.size());
  if (!h.ok()) return h.status();
  if (out.size() < h->plaintext_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("output: ", out.size(), " bytes, the plaintext has ", h->plaintext_size));
  }
  auto cipher = ChunkCipher::Create(key, *h, false);
  if (!cipher.ok()) return cipher.status();
  // One pass: each chunk decrypted straight from the sealed bytes into its place in `out`.
  const uint8_t* in = sealed.data() + kHeaderSize;
  uint8_t* dst = out.data();
  uint64_t left = h->plaintext_size;
  std::array<uint8_t, kTagSize> tag{};
  for (uint64_t i = 0; i < h->chunks(); ++i) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(left, h->chunk_size));
    std::memcpy(tag.data(), in + len, kTagSize);
    if (auto st = cipher->Process(i, in, dst, len, tag.data()); !st.ok()) return st;
    in += len + kTagSize;
    dst += len;
    left -= len;
  }
  return h->plaintext_size;
}

}  // namespace attest::seal
