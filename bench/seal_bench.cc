// Sealed-model benchmark (issue 10): opening (authenticating and decrypting, chunk by chunk) a
// 1 GiB sealed blob from one memfd into another — what the supervisor does with a model layer —
// beside OpenSSL's raw AES-256-GCM decryption of the same bytes in memory, on one core (goal:
// >= 0.8x). Sealing is measured too. One run, figures and ratios printed; no pass/fail.
#include <openssl/evp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "attest/seal/sealed_blob.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kSize = 1ull << 30;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int Memfd(const char* name) {
  const int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) {
    std::perror("memfd_create");
    std::exit(1);
  }
  return fd;
}

// OpenSSL's AES-256-GCM over `data` in 1 MiB updates (one IV, one tag): the raw cost.
double RawGcmSeconds(std::vector<uint8_t>& data, bool decrypt) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const uint8_t key[32] = {1}, iv[12] = {2};
  uint8_t tag[16] = {};
  int len = 0;
  const auto start = Clock::now();
  if (decrypt) {
    EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key, iv);
  } else {
    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key, iv);
  }
  for (size_t at = 0; at < data.size(); at += 1 << 20) {
    if (decrypt) {
      EVP_DecryptUpdate(ctx, data.data() + at, &len, data.data() + at, 1 << 20);
    } else {
      EVP_EncryptUpdate(ctx, data.data() + at, &len, data.data() + at, 1 << 20);
    }
  }
  if (!decrypt) {
    EVP_EncryptFinal_ex(ctx, tag, &len);
    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag);
  }
  const double s = Seconds(start);
  EVP_CIPHER_CTX_free(ctx);
  return s;
}

}  // namespace

int main() {
  std::vector<uint8_t> plain(kSize);
  for (size_t i = 0; i < plain.size(); i += 4096) plain[i] = static_cast<uint8_t>(i >> 12);
  const int plain_fd = Memfd("plain"), sealed_fd = Memfd("sealed"), out_fd = Memfd("out");
  if (write(plain_fd, plain.data(), plain.size()) != static_cast<ssize_t>(plain.size())) return 1;
  lseek(plain_fd, 0, SEEK_SET);
  auto key = attest::seal::NewModelKey();
  if (!key.ok()) return 1;

  auto start = Clock::now();
  auto header = attest::seal::SealFd(plain_fd, kSize, sealed_fd, *key);
  const double seal_s = Seconds(start);
  if (!header.ok()) {
    std::fprintf(stderr, "seal: %s\n", std::string(header.status().message()).c_str());
    return 1;
  }
  lseek(sealed_fd, 0, SEEK_SET);
  start = Clock::now();
  auto opened = attest::seal::OpenFd(sealed_fd, header->sealed_size(), out_fd, *key);
  const double open_s = Seconds(start);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", std::string(opened.status().message()).c_str());
    return 1;
  }
  // The same in memory (the cipher path alone).
  std::vector<uint8_t> sealed(header->sealed_size());
  if (pread(sealed_fd, sealed.data(), sealed.size(), 0) != static_cast<ssize_t>(sealed.size()))
    return 1;
  std::vector<uint8_t> out(kSize, 1);  // touched: the raw peer's buffer is warm too
  start = Clock::now();
  auto in_memory = attest::seal::OpenInto(sealed, *key, out);
  const double open_mem_s = Seconds(start);
  if (!in_memory.ok() || *in_memory != kSize || out != plain) return 1;
  out.clear();
  out.shrink_to_fit();
  sealed.clear();
  sealed.shrink_to_fit();
  // The I/O floor of the memfd path: the same bytes copied memfd to memfd in 1 MiB pieces.
  const int copy_fd = Memfd("copy");
  std::vector<uint8_t> buf(1 << 20);
  lseek(sealed_fd, 0, SEEK_SET);
  start = Clock::now();
  for (uint64_t left = kSize; left > 0; left -= buf.size()) {
    if (read(sealed_fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size()) ||
        write(copy_fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) {
      return 1;
    }
  }
  const double copy_s = Seconds(start);
  const double raw_enc = RawGcmSeconds(plain, false);
  const double raw_dec = RawGcmSeconds(plain, true);
  const double gib = static_cast<double>(kSize) / (1 << 30);
  std::printf("\nSealed model blobs (one run, one core, 1 GiB, %u-byte chunks, memfd to memfd):\n",
              attest::seal::kDefaultChunkSize);
  std::printf(
      "  open in memory (authenticate + decrypt) %.2f GiB/s  vs  OpenSSL AES-256-GCM raw "
      "decrypt %.2f GiB/s: %.2fx (goal >= 0.8x)\n",
      gib / open_mem_s, gib / raw_dec, raw_dec / open_mem_s);
  std::printf(
      "  open memfd to memfd %.2f GiB/s  vs  a plain memfd-to-memfd copy %.2f GiB/s: %.2fx "
      "(the supervisor's path; the copy is its I/O floor)\n",
      gib / open_s, gib / copy_s, copy_s / open_s);
  std::printf("  seal %.2f GiB/s  vs  raw encrypt %.2f GiB/s: %.2fx\n", gib / seal_s, gib / raw_enc,
              raw_enc / seal_s);
  return 0;
}
