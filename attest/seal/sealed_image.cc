#include "attest/seal/sealed_image.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "common/openssl_util.h"
#include "nlohmann/json.hpp"

namespace attest::seal {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

absl::Status Bad(absl::string_view what, absl::string_view detail) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", detail));
}

bool IsDigest(const std::string& d) {
  if (d.size() != 71 || d.rfind("sha256:", 0) != 0) return false;
  for (size_t i = 7; i < d.size(); ++i) {
    const char c = d[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status OnlyKeys(const json& j, std::initializer_list<const char*> keys,
                      absl::string_view what) {
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (const char* k : keys) known = known || key == k;
    if (!known) return Bad(what, absl::StrCat("unknown key '", key, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> String(const json& j, const char* key, absl::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return Bad(what, absl::StrCat(key, " must be a string"));
  return it->get<std::string>();
}

absl::StatusOr<uint64_t> Unsigned(const json& j, const char* key, absl::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) {
    return Bad(what, absl::StrCat(key, " must be a non-negative integer"));
  }
  return it->get<uint64_t>();
}

absl::StatusOr<uint32_t> Version(const json& j, absl::string_view what) {
  auto v = Unsigned(j, "version", what);
  if (!v.ok()) return v.status();
  if (*v != 1) return Bad(what, absl::StrCat("version ", *v, ", expected 1"));
  return 1u;
}

absl::StatusOr<json> ParseObject(std::span<const uint8_t> bytes, absl::string_view what) {
  if (bytes.size() > kMaxSealedModelJson) {
    return Bad(what, absl::StrCat(bytes.size(), " bytes, at most ", kMaxSealedModelJson));
  }
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (!j.is_object()) return Bad(what, "a JSON object expected");
  return j;
}

absl::StatusOr<SealedDescriptor> Descriptor(const json& j, absl::string_view what) {
  if (!j.is_object()) return Bad(what, "an object expected");
  if (auto st = OnlyKeys(j, {"digest", "size"}, what); !st.ok()) return st;
  SealedDescriptor d;
  auto digest = String(j, "digest", what);
  if (!digest.ok()) return digest.status();
  if (!IsDigest(*digest)) return Bad(what, "digest must be sha256:<64 lowercase hex>");
  auto size = Unsigned(j, "size", what);
  if (!size.ok()) return size.status();
  if (*size < kHeaderSize)
    return Bad(what, absl::StrCat("size ", *size, " is smaller than a sealed header"));
  d.digest = *digest;
  d.size = *size;
  return d;
}

absl::Status CheckPath(const std::string& path) {
  if (path.empty() || path.size() > 512) return Bad("path", "1..512 characters");
  std::vector<std::string> parts = absl::StrSplit(path, '/');
  if (parts.size() > 4) return Bad("path", absl::StrCat("'", path, "' is deeper than 4"));
  for (const auto& p : parts) {
    if (p.empty() || p == "." || p == "..")
      return Bad("path", absl::StrCat("'", path, "' has an empty, . or .. component"));
    for (unsigned char c : p) {
      if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
        return Bad("path", absl::StrCat("'", path, "' has character 0x", absl::Hex(c)));
      }
    }
  }
  return absl::OkStatus();
}

std::string DigestOfFile(const fs::path& p, absl::Status* st) {
  auto d = Sha256OfFile(p);
  if (!d.ok()) {
    *st = d.status();
    return "";
  }
  return HexEncode(*d);
}

absl::StatusOr<int> OpenRead(const fs::path& p) {
  const int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(p.string(), ": ", std::strerror(errno)));
  return fd;
}

absl::StatusOr<int> OpenWriteNew(const fs::path& p) {
  const int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat(p.string(), ": ", std::strerror(errno)));
  return fd;
}

// Seals one file into out_dir/blobs/<digest>; returns its descriptor.
absl::StatusOr<SealedDescriptor> SealFile(const fs::path& in, uint64_t size, const fs::path& blobs,
                                          const ModelKey& key, uint32_t chunk_size) {
  auto in_fd = OpenRead(in);
  if (!in_fd.ok()) return in_fd.status();
  absl::Cleanup close_in = [fd = *in_fd] { close(fd); };
  const fs::path tmp = blobs / ".sealing";
  auto out_fd = OpenWriteNew(tmp);
  if (!out_fd.ok()) return out_fd.status();
  auto h = SealFd(*in_fd, size, *out_fd, key, chunk_size);
  const bool synced = h.ok() && fsync(*out_fd) == 0;
  close(*out_fd);
  if (!h.ok() || !synced) {
    fs::remove(tmp);
    return h.ok() ? absl::InternalError("fsync failed") : h.status();
  }
  absl::Status st;
  const std::string hex = DigestOfFile(tmp, &st);
  if (!st.ok()) return st;
  std::error_code ec;
  fs::rename(tmp, blobs / hex, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename sealed blob: ", ec.message()));
  return SealedDescriptor{"sha256:" + hex, h->sealed_size()};
}

}  // namespace

absl::Status CheckModelId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return Bad("model id", "1..128 characters");
  for (unsigned char c : id) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-') {
      return Bad("model id", absl::StrCat("character 0x", absl::Hex(c),
                                          " (allowed: letters, digits, . _ : -)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SealedModel> ParseSealedModel(std::span<const uint8_t> bytes) {
  constexpr absl::string_view kWhat = "sealed-model.json";
  auto j = ParseObject(bytes, kWhat);
  if (!j.ok()) return j.status();
  if (auto st = OnlyKeys(*j, {"version", "model_id", "toc", "blobs"}, kWhat); !st.ok()) return st;
  SealedModel m;
  if (auto v = Version(*j, kWhat); !v.ok()) return v.status();
  auto id = String(*j, "model_id", kWhat);
  if (!id.ok()) return id.status();
  if (auto st = CheckModelId(*id); !st.ok()) return st;
  m.model_id = *id;
  auto toc = j->find("toc");
  if (toc == j->end()) return Bad(kWhat, "no toc");
  auto d = Descriptor(*toc, "sealed-model.json toc");
  if (!d.ok()) return d.status();
  m.toc = *d;
  auto blobs = j->find("blobs");
  if (blobs == j->end() || !blobs->is_array()) return Bad(kWhat, "blobs must be a list");
  if (blobs->size() > kMaxFiles)
    return Bad(kWhat, absl::StrCat(blobs->size(), " blobs, at most ", kMaxFiles));
  std::set<std::string> seen = {m.toc.digest};
  for (size_t i = 0; i < blobs->size(); ++i) {
    auto b = Descriptor((*blobs)[i], absl::StrCat("sealed-model.json blobs[", i, "]"));
    if (!b.ok()) return b.status();
    if (!seen.insert(b->digest).second)
      return Bad(kWhat, absl::StrCat(b->digest, " is listed twice"));
    m.blobs.push_back(*b);
  }
  return m;
}

absl::StatusOr<Toc> ParseToc(std::span<const uint8_t> bytes) {
  constexpr absl::string_view kWhat = "table of contents";
  auto j = ParseObject(bytes, kWhat);
  if (!j.ok()) return j.status();
  if (auto st = OnlyKeys(*j, {"version", "model_id", "files"}, kWhat); !st.ok()) return st;
  Toc t;
  if (auto v = Version(*j, kWhat); !v.ok()) return v.status();
  auto id = String(*j, "model_id", kWhat);
  if (!id.ok()) return id.status();
  if (auto st = CheckModelId(*id); !st.ok()) return st;
  t.model_id = *id;
  auto files = j->find("files");
  if (files == j->end() || !files->is_array() || files->empty())
    return Bad(kWhat, "files must be a non-empty list");
  if (files->size() > kMaxFiles)
    return Bad(kWhat, absl::StrCat(files->size(), " files, at most ", kMaxFiles));
  std::set<std::string> paths, blobs;
  for (size_t i = 0; i < files->size(); ++i) {
    const json& f = (*files)[i];
    const std::string at = absl::StrCat("table of contents files[", i, "]");
    if (!f.is_object()) return Bad(at, "an object expected");
    if (auto st = OnlyKeys(f, {"path", "blob", "size", "sha256"}, at); !st.ok()) return st;
    TocEntry e;
    auto path = String(f, "path", at);
    if (!path.ok()) return path.status();
    if (auto st = CheckPath(*path); !st.ok()) return Bad(at, st.message());
    auto blob = String(f, "blob", at);
    if (!blob.ok()) return blob.status();
    if (!IsDigest(*blob)) return Bad(at, "blob must be sha256:<64 lowercase hex>");
    auto size = Unsigned(f, "size", at);
    if (!size.ok()) return size.status();
    if (*size > kMaxPlaintextSize) return Bad(at, "size over the limit");
    auto sha = String(f, "sha256", at);
    if (!sha.ok()) return sha.status();
    if (!IsDigest("sha256:" + *sha)) return Bad(at, "sha256 must be 64 lowercase hex digits");
    if (!paths.insert(*path).second)
      return Bad(at, absl::StrCat("path '", *path, "' listed twice"));
    if (!blobs.insert(*blob).second) return Bad(at, absl::StrCat(*blob, " listed twice"));
    e.path = *path;
    e.blob = *blob;
    e.size = *size;
    e.sha256 = *sha;
    t.files.push_back(std::move(e));
  }
  // A file and a directory of the same name cannot both exist.
  for (const auto& p : paths) {
    if (paths.count(p + "/") || std::any_of(paths.begin(), paths.end(), [&](const std::string& q) {
          return q.size() > p.size() && q.compare(0, p.size(), p) == 0 && q[p.size()] == '/';
        })) {
      return Bad(kWhat, absl::StrCat("'", p, "' is both a file and a directory"));
    }
  }
  return t;
}

std::string SerializeSealedModel(const SealedModel& m) {
  json j = {{"version", m.version},
            {"model_id", m.model_id},
            {"toc", {{"digest", m.toc.digest}, {"size", m.toc.size}}},
            {"blobs", json::array()}};
  for (const auto& b : m.blobs) j["blobs"].push_back({{"digest", b.digest}, {"size", b.size}});
  return j.dump(2) + "\n";
}

std::string SerializeToc(const Toc& t) {
  json j = {{"version", t.version}, {"model_id", t.model_id}, {"files", json::array()}};
  for (const auto& f : t.files) {
    j["files"].push_back(
        {{"path", f.path}, {"blob", f.blob}, {"size", f.size}, {"sha256", f.sha256}});
  }
  return j.dump();
}

absl::StatusOr<bool> IsMemoryBacked(const fs::path& dir) {
  struct statfs s {};
  if (statfs(dir.c_str(), &s) != 0) {
    return absl::NotFoundError(absl::StrCat(dir.string(), ": ", std::strerror(errno)));
  }
  return s.f_type == TMPFS_MAGIC || s.f_type == RAMFS_MAGIC;
}

absl::StatusOr<SealResult> SealLayout(const fs::path& layout, const fs::path& out_dir,
                                      const ModelKey& key, const std::string& model_id,
                                      uint32_t chunk_size) {
  if (auto st = CheckModelId(model_id); !st.ok()) return st;
  std::error_code ec;
  if (!fs::is_regular_file(layout / "oci-layout", ec) ||
      !fs::is_regular_file(layout / "index.json", ec)) {
    return Bad("seal", absl::StrCat(layout.string(),
                                    " is not an OCI image layout (oci-layout, index.json)"));
  }
  if (fs::exists(out_dir, ec)) return Bad("seal", absl::StrCat(out_dir.string(), " exists"));
  fs::create_directories(out_dir / "blobs", ec);
  if (ec) return absl::InternalError(absl::StrCat(out_dir.string(), ": ", ec.message()));
  // A half-sealed model is of no use: whatever fails, nothing of it stays.
  bool done = false;
  absl::Cleanup remove_on_failure = [&] {
    std::error_code ignored;
    if (!done) fs::remove_all(out_dir, ignored);
  };
  SealResult r;
  r.toc.model_id = r.model.model_id = model_id;
  std::vector<std::pair<std::string, fs::path>> files;
  for (auto it = fs::recursive_directory_iterator(layout, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_symlink()) return Bad("seal", absl::StrCat(it->path().string(), " is a symlink"));
    if (it->is_directory()) continue;
    if (!it->is_regular_file())
      return Bad("seal", absl::StrCat(it->path().string(), " is not a regular file"));
    const std::string rel = fs::relative(it->path(), layout).generic_string();
    if (auto st = CheckPath(rel); !st.ok()) return st;
    files.emplace_back(rel, it->path());
  }
  if (ec) return absl::InternalError(absl::StrCat(layout.string(), ": ", ec.message()));
  if (files.size() > kMaxFiles)
    return Bad("seal", absl::StrCat(files.size(), " files, at most ", kMaxFiles));
  std::sort(files.begin(), files.end());
  for (const auto& [rel, path] : files) {
    const uint64_t size = fs::file_size(path);
    absl::Status st;
    const std::string plain_sha = DigestOfFile(path, &st);
    if (!st.ok()) return st;
    auto d = SealFile(path, size, out_dir / "blobs", key, chunk_size);
    if (!d.ok()) return d.status();
    r.toc.files.push_back(TocEntry{rel, d->digest, size, plain_sha});
    r.model.blobs.push_back(*d);
    r.plaintext_bytes += size;
  }
  // The table of contents, sealed like the files.
  const std::string toc = SerializeToc(r.toc);
  auto sealed_toc =
      Seal(std::span(reinterpret_cast<const uint8_t*>(toc.data()), toc.size()), key, chunk_size);
  if (!sealed_toc.ok()) return sealed_toc.status();
  const std::string toc_hex = HexEncode(ossl::Sha256(*sealed_toc));
  if (auto st = WriteFileAtomically(out_dir / "blobs" / toc_hex, *sealed_toc); !st.ok()) return st;
  r.model.toc = SealedDescriptor{"sha256:" + toc_hex, sealed_toc->size()};
  if (auto st = WriteFileAtomically(out_dir / "sealed-model.json", SerializeSealedModel(r.model));
      !st.ok()) {
    return st;
  }
  done = true;
  return r;
}

absl::StatusOr<UnsealResult> UnsealLayout(const fs::path& sealed_dir, const ModelKey& key,
                                          const fs::path& out_dir, const UnsealOptions& options) {
  auto model_bytes = ReadFileBounded(sealed_dir / "sealed-model.json", kMaxSealedModelJson);
  if (!model_bytes.ok()) return model_bytes.status();
  auto model = ParseSealedModel(*model_bytes);
  if (!model.ok()) return model.status();
  // A sealed blob is read only if the public list names it with this size: the host cannot make
  // the appliance read anything else, or more.
  auto blob_path = [&](const SealedDescriptor& d) {
    return sealed_dir / "blobs" / d.digest.substr(7);
  };
  auto check_blob = [&](const SealedDescriptor& d) -> absl::Status {
    std::error_code ec;
    const uint64_t size = fs::file_size(blob_path(d), ec);
    if (ec) return absl::NotFoundError(absl::StrCat("sealed blob ", d.digest, ": ", ec.message()));
    if (size != d.size) {
      return absl::InvalidArgumentError(
          absl::StrCat("sealed blob ", d.digest, ": ", size, " bytes, listed as ", d.size));
    }
    return absl::OkStatus();
  };
  if (auto st = check_blob(model->toc); !st.ok()) return st;
  auto sealed_toc =
      ReadFileBounded(blob_path(model->toc), kMaxSealedModelJson + kHeaderSize + 64 * kTagSize);
  if (!sealed_toc.ok()) return sealed_toc.status();
  auto toc_bytes = Open(*sealed_toc, key);
  if (!toc_bytes.ok())
    return absl::Status(toc_bytes.status().code(),
                        absl::StrCat("table of contents: ", toc_bytes.status().message()));
  auto toc = ParseToc(*toc_bytes);
  if (!toc.ok()) return toc.status();
  if (toc->model_id != model->model_id) {
    return absl::InvalidArgumentError(absl::StrCat("table of contents is of model '", toc->model_id,
                                                   "', sealed-model.json names '", model->model_id,
                                                   "'"));
  }
  std::map<std::string, SealedDescriptor> listed;
  for (const auto& b : model->blobs) listed.emplace(b.digest, b);
  uint64_t total = 0;
  for (const auto& f : toc->files) {
    auto it = listed.find(f.blob);
    if (it == listed.end())
      return absl::InvalidArgumentError(
          absl::StrCat(f.path, ": its blob ", f.blob, " is not listed"));
    total += f.size;
    if (total > options.max_total_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("the model is over ", options.max_total_bytes, " bytes"));
    }
  }

  std::error_code ec;
  if (fs::exists(out_dir, ec))
    return absl::InvalidArgumentError(absl::StrCat(out_dir.string(), " exists"));
  if (options.require_memory_backed) {
    auto mem = IsMemoryBacked(out_dir.parent_path());
    if (!mem.ok()) return mem.status();
    if (!*mem) {
      return absl::FailedPreconditionError(
          absl::StrCat(out_dir.parent_path().string(),
                       " is not tmpfs or ramfs: plaintext would reach persistent storage"));
    }
  }
  if (mkdir(out_dir.c_str(), 0700) != 0) {
    return absl::InternalError(absl::StrCat(out_dir.string(), ": ", std::strerror(errno)));
  }
  bool done = false;
  absl::Cleanup remove_on_failure = [&] {
    if (!done) fs::remove_all(out_dir, ec);
  };
  UnsealResult r;
  r.model_id = toc->model_id;
  for (const auto& f : toc->files) {
    const SealedDescriptor& d = listed.at(f.blob);
    if (auto st = check_blob(d); !st.ok()) return st;
    const fs::path dst = out_dir / f.path;
    fs::create_directories(dst.parent_path(), ec);
    if (ec)
      return absl::InternalError(absl::StrCat(dst.parent_path().string(), ": ", ec.message()));
    auto in_fd = OpenRead(blob_path(d));
    if (!in_fd.ok()) return in_fd.status();
    absl::Cleanup close_in = [fd = *in_fd] { close(fd); };
    auto out_fd = OpenWriteNew(dst);
    if (!out_fd.ok()) return out_fd.status();
    auto opened = OpenFd(*in_fd, d.size, *out_fd, key);
    close(*out_fd);
    if (!opened.ok()) {
      return absl::Status(opened.status().code(),
                          absl::StrCat(f.path, ": ", opened.status().message()));
    }
    if (opened->plaintext_size != f.size) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.path, ": ", opened->plaintext_size, " bytes, the table says ", f.size));
    }
    absl::Status st;
    const std::string sha = DigestOfFile(dst, &st);
    if (!st.ok()) return st;
    if (sha != f.sha256) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.path, ": SHA-256 ", sha, ", the table says ", f.sha256));
    }
    r.plaintext_bytes += f.size;
    ++r.files;
  }
  done = true;
  return r;
}

}  // namespace attest::seal
