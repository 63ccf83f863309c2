// libFuzzer target: the model-image layer unpacker (libarchive's tar/gzip reader under our path,
// link, whiteout and type rules) on arbitrary layer bytes, into a scratch root.
#include <openssl/evp.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "attest/encoding.h"
#include "supervisor/oci.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  static const fs::path base = [] {
    fs::path p = fs::temp_directory_path() / ("oci-layer-fuzz-" + std::to_string(getpid()));
    fs::create_directories(p / "layout" / "blobs" / "sha256");
    return p;
  }();
  unsigned char md[32];
  EVP_Digest(data, size, md, nullptr, EVP_sha256(), nullptr);
  appliance::supervisor::OciImage image;
  image.layout = base / "layout";
  appliance::supervisor::OciDescriptor d;
  d.digest = "sha256:" + attest::HexEncode(std::span<const uint8_t>(md, 32));
  d.size = size;
  {
    std::ofstream f(image.layout / "blobs" / "sha256" / d.digest.substr(7),
                    std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  image.layers.push_back(d);
  appliance::supervisor::OciLimits limits;
  limits.max_unpacked_bytes = 8 << 20;
  limits.max_entries = 1000;
  std::error_code ec;
  fs::remove_all(base / "root", ec);
  (void)appliance::supervisor::UnpackLayers(image, base / "root", limits);
  fs::remove_all(base / "root", ec);
  fs::remove(image.layout / "blobs" / "sha256" / d.digest.substr(7), ec);
  return 0;
}
