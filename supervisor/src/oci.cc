#include "supervisor/oci.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "attest/encoding.h"
#include "attest/status.h"
#include "nlohmann/json.hpp"

namespace appliance::supervisor {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr size_t kReadChunk = 1 << 20;
constexpr char kManifestType[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kDockerManifestType[] = "application/vnd.docker.distribution.manifest.v2+json";

absl::Status Errno(absl::string_view what, const fs::path& p) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, " ", p.string(), ": ", std::strerror(errno)));
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

absl::StatusOr<std::array<uint8_t, 32>> ParseDigest(const std::string& digest) {
  constexpr absl::string_view kPrefix = "sha256:";
  if (digest.size() != kPrefix.size() + 64 || !absl::StartsWith(digest, kPrefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest \"", digest.substr(0, 80), "\" is not sha256:<64 hex digits>"));
  }
  for (char c : digest.substr(kPrefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return absl::InvalidArgumentError(absl::StrCat("digest ", digest, ": not lowercase hex"));
    }
  }
  ASSIGN_OR_RETURN(auto bytes, attest::HexDecode(digest.substr(kPrefix.size())));
  std::array<uint8_t, 32> out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

absl::StatusOr<OciDescriptor> ParseDescriptor(const json& j, absl::string_view where) {
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, ": not an object"));
  OciDescriptor d;
  auto mt = j.find("mediaType");
  auto dg = j.find("digest");
  auto sz = j.find("size");
  if (mt == j.end() || !mt->is_string() || dg == j.end() || !dg->is_string() || sz == j.end() ||
      !sz->is_number_unsigned()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": a descriptor needs mediaType, digest and an unsigned size"));
  }
  d.media_type = mt->get<std::string>();
  d.digest = dg->get<std::string>();
  d.size = sz->get<uint64_t>();
  auto sha = ParseDigest(d.digest);
  if (!sha.ok())
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", sha.status().message()));
  d.sha256 = *sha;
  return d;
}

fs::path BlobPath(const fs::path& layout, const OciDescriptor& d) {
  return layout / "blobs" / "sha256" / d.digest.substr(7);
}

absl::StatusOr<json> ParseJsonBytes(const std::vector<uint8_t>& bytes, absl::string_view what) {
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, ": not valid JSON"));
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, ": not a JSON object"));
  return j;
}

// Reads a small blob, checking size and digest, and parses it as JSON.
absl::StatusOr<json> ReadVerifiedJson(const fs::path& layout, const OciDescriptor& d,
                                      const OciLimits& limits, absl::string_view what) {
  if (d.size > limits.max_json_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", d.digest, ": ", d.size,
                                                   " bytes, more than ", limits.max_json_bytes));
  }
  const fs::path p = BlobPath(layout, d);
  Fd f(open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (f.fd < 0) return Errno(absl::StrCat(what, ": open"), p);
  std::vector<uint8_t> bytes(d.size + 1);
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = read(f.fd, bytes.data() + got, bytes.size() - got);
    if (n < 0) return Errno(absl::StrCat(what, ": read"), p);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got != d.size) {
    return absl::InvalidArgumentError(absl::StrCat("oci.blob.size: ", what, " ", d.digest, " has ",
                                                   got > d.size ? "more than " : "", got,
                                                   " bytes, descriptor says ", d.size));
  }
  bytes.resize(got);
  std::array<uint8_t, 32> sha{};
  EVP_Digest(bytes.data(), bytes.size(), sha.data(), nullptr, EVP_sha256(), nullptr);
  if (sha != d.sha256) {
    return absl::InvalidArgumentError(absl::StrCat("oci.blob.digest: ", what, " ", d.digest,
                                                   " hashes to sha256:", attest::HexEncode(sha)));
  }
  return ParseJsonBytes(bytes, absl::StrCat(what, " ", d.digest));
}

absl::StatusOr<std::vector<std::string>> StringList(const json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array())
    return absl::InvalidArgumentError(absl::StrCat("config.", key, ": not a list"));
  for (const auto& v : *it) {
    if (!v.is_string())
      return absl::InvalidArgumentError(absl::StrCat("config.", key, ": not strings"));
    out.push_back(v.get<std::string>());
  }
  return out;
}

// Path components of a tar entry name; rejects absolute names and `..`.
absl::StatusOr<std::vector<std::string>> SplitEntryPath(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("empty entry name");
  if (name.front() == '/') {
    return absl::InvalidArgumentError(absl::StrCat("absolute entry name \"", name, "\""));
  }
  std::vector<std::string> parts;
  for (absl::string_view c : absl::StrSplit(name, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..")
      return absl::InvalidArgumentError(absl::StrCat("entry name \"", name, "\" has .."));
    parts.emplace_back(c);
  }
  return parts;
}

// Walks `parts` below `root` without following symlinks, creating missing directories; returns
// an fd of the last directory.
absl::StatusOr<int> OpenDirNoFollow(int root, const std::vector<std::string>& parts, size_t n,
                                    bool create) {
  int cur = dup(root);
  for (size_t i = 0; i < n; ++i) {
    int next = openat(cur, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (mkdirat(cur, parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
        close(cur);
        return absl::InvalidArgumentError(
            absl::StrCat("mkdir ", parts[i], ": ", std::strerror(errno)));
      }
      fchmodat(cur, parts[i].c_str(), 0755, 0);  // whatever the caller's umask
      next = openat(cur, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) {
      int err = errno;
      close(cur);
      return absl::InvalidArgumentError(absl::StrCat("path component \"", parts[i], "\": ",
                                                     err == ELOOP || err == ENOTDIR
                                                         ? "not a directory (a symlink or a file)"
                                                         : std::strerror(err)));
    }
    close(cur);
    cur = next;
  }
  return cur;
}

// Removes a path (recursively for directories) inside `dirfd`.
void RemoveAt(int dirfd, const std::string& name) {
  if (unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return;
  int sub = openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (sub < 0) return;
  std::vector<std::string> children;
  if (DIR* d = fdopendir(dup(sub))) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") children.push_back(n);
    }
    closedir(d);
  }
  for (const auto& c : children) RemoveAt(sub, c);
  close(sub);
  unlinkat(dirfd, name.c_str(), AT_REMOVEDIR);
}

std::string JoinParts(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) absl::StrAppend(&out, i ? "/" : "", parts[i]);
  return out;
}

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

absl::StatusOr<ArchivePtr> OpenTar(int fd, const fs::path& p) {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_fd(a.get(), fd, 1 << 16) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat(p.string(), ": not a tar archive: ", archive_error_string(a.get())));
  }
  return a;
}

// Copies the current entry's data to `out_fd` (sparse holes become seeks).
absl::Status CopyData(archive* a, int out_fd, uint64_t& budget, const std::string& name) {
  const void* buf = nullptr;
  size_t len = 0;
  la_int64_t offset = 0;
  for (;;) {
    int r = archive_read_data_block(a, &buf, &len, &offset);
    if (r == ARCHIVE_EOF) return absl::OkStatus();
    if (r != ARCHIVE_OK) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": ", archive_error_string(a)));
    }
    if (len > budget) return absl::ResourceExhaustedError("unpacked size over the limit");
    budget -= len;
    const auto* p = static_cast<const uint8_t*>(buf);
    size_t done = 0;
    while (done < len) {
      ssize_t n = pwrite(out_fd, p + done, len - done, offset + static_cast<la_int64_t>(done));
      if (n <= 0) return absl::InternalError(absl::StrCat(name, ": write: ", std::strerror(errno)));
      done += static_cast<size_t>(n);
    }
  }
}

// A symlink target, resolved lexically from the link's directory, must stay inside the root.
// Absolute targets resolve against the container's root at run time and are accepted.
absl::Status CheckSymlinkTarget(const std::vector<std::string>& link_parts,
                                absl::string_view target) {
  if (target.empty()) return absl::InvalidArgumentError("empty symlink target");
  if (target.front() == '/') return absl::OkStatus();
  int depth = static_cast<int>(link_parts.size()) - 1;
  for (absl::string_view c : absl::StrSplit(target, '/')) {
    if (c.empty() || c == ".") continue;
    depth += c == ".." ? -1 : 1;
    if (depth < 0) {
      return absl::InvalidArgumentError(absl::StrCat("symlink ",
                                                     JoinParts(link_parts, link_parts.size()),
                                                     " -> ", target, " leaves the root"));
    }
  }
  return absl::OkStatus();
}

absl::Status UnpackLayer(int root, const fs::path& blob, const OciLimits& limits, uint64_t& budget,
                         size_t& entries) {
  Fd f(open(blob.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (f.fd < 0) return Errno("open layer", blob);
  ASSIGN_OR_RETURN(ArchivePtr a, OpenTar(f.fd, blob));
  std::set<std::string> created;  // paths this layer wrote (an opaque whiteout spares them)
  archive_entry* e = nullptr;
  for (;;) {
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", blob.filename().string(), ": ", archive_error_string(a.get())));
    }
    if (++entries > limits.max_entries) return absl::ResourceExhaustedError("too many entries");
    const char* raw_name = archive_entry_pathname(e);
    const std::string name = raw_name ? raw_name : "";
    auto parts_or = SplitEntryPath(name);
    if (!parts_or.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("oci.unpack: ", parts_or.status().message()));
    }
    auto parts = *parts_or;
    if (parts.empty()) continue;  // "./"
    const std::string base = parts.back();
    auto fail = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("oci.unpack: entry \"", name, "\": ", why));
    };
    auto parent_or = OpenDirNoFollow(root, parts, parts.size() - 1, /*create=*/true);
    if (!parent_or.ok()) return fail(parent_or.status().message());
    Fd parent(*parent_or);
    const std::string rel = JoinParts(parts, parts.size());

    if (base == ".wh..wh..opq") {  // opaque: hide everything lower layers put in this directory
      const std::string dir = JoinParts(parts, parts.size() - 1);
      std::vector<std::string> children;
      if (DIR* d = fdopendir(dup(parent.fd))) {
        while (dirent* de = readdir(d)) {
          std::string n = de->d_name;
          if (n != "." && n != ".." && !created.count(dir.empty() ? n : dir + "/" + n))
            children.push_back(n);
        }
        closedir(d);
      }
      for (const auto& c : children) RemoveAt(parent.fd, c);
      continue;
    }
    if (absl::StartsWith(base, ".wh.")) {  // whiteout: delete the lower layers' entry
      RemoveAt(parent.fd, base.substr(4));
      continue;
    }

    const char* hardlink = archive_entry_hardlink(e);
    const mode_t type = archive_entry_filetype(e);
    const mode_t perm = archive_entry_perm(e) & 0777;  // no set-id, no sticky bits
    if (hardlink != nullptr) {
      auto target_or = SplitEntryPath(hardlink);
      if (!target_or.ok() || target_or->empty()) return fail("hard link target leaves the root");
      auto tdir_or = OpenDirNoFollow(root, *target_or, target_or->size() - 1, false);
      if (!tdir_or.ok())
        return fail(absl::StrCat("hard link target: ", tdir_or.status().message()));
      Fd tdir(*tdir_or);
      struct stat st {};
      if (fstatat(tdir.fd, target_or->back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISREG(st.st_mode)) {
        return fail("hard link target is not a regular file of this image");
      }
      unlinkat(parent.fd, base.c_str(), 0);
      if (linkat(tdir.fd, target_or->back().c_str(), parent.fd, base.c_str(), 0) != 0) {
        return fail(absl::StrCat("link: ", std::strerror(errno)));
      }
    } else if (type == AE_IFDIR) {
      struct stat st {};
      if (fstatat(parent.fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
        unlinkat(parent.fd, base.c_str(), 0);
      }
      if (mkdirat(parent.fd, base.c_str(), perm | 0700) != 0 && errno != EEXIST) {
        return fail(absl::StrCat("mkdir: ", std::strerror(errno)));
      }
      fchmodat(parent.fd, base.c_str(), perm | 0700, 0);
    } else if (type == AE_IFREG) {
      RemoveAt(parent.fd, base);
      Fd out(openat(parent.fd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    perm));
      if (out.fd < 0) return fail(absl::StrCat("create: ", std::strerror(errno)));
      RETURN_IF_ERROR(CopyData(a.get(), out.fd, budget, name));
      if (archive_entry_size_is_set(e) && ftruncate(out.fd, archive_entry_size(e)) != 0) {
        return fail(absl::StrCat("truncate: ", std::strerror(errno)));
      }
      fchmod(out.fd, perm);
    } else if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(e);
      if (target == nullptr) return fail("symlink without a target");
      if (auto s = CheckSymlinkTarget(parts, target); !s.ok()) return fail(s.message());
      RemoveAt(parent.fd, base);
      if (symlinkat(target, parent.fd, base.c_str()) != 0) {
        return fail(absl::StrCat("symlink: ", std::strerror(errno)));
      }
    } else {
      return fail("device nodes, fifos and sockets are not allowed in a model image");
    }
    created.insert(rel);
  }
  return absl::OkStatus();
}

// Extracts an oci-archive (regular files and directories only) into `dest`.
absl::Status ExtractOciArchive(const fs::path& tar, const fs::path& dest, const OciLimits& limits) {
  Fd f(open(tar.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) return Errno("open oci-archive", tar);
  ASSIGN_OR_RETURN(ArchivePtr a, OpenTar(f.fd, tar));
  Fd root(open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.fd < 0) return Errno("open", dest);
  uint64_t budget = limits.max_total_bytes + limits.max_json_bytes * 3;
  size_t entries = 0;
  archive_entry* e = nullptr;
  for (;;) {
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) return absl::OkStatus();
    if (r != ARCHIVE_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("oci-archive: ", archive_error_string(a.get())));
    }
    if (++entries > limits.max_layers + 16) {
      return absl::ResourceExhaustedError(
          "oci-archive: more entries than an image of at most "
          "max_layers layers has");
    }
    const std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    auto parts = SplitEntryPath(name);
    if (!parts.ok())
      return absl::InvalidArgumentError(absl::StrCat("oci-archive: ", parts.status().message()));
    if (parts->empty()) continue;
    const mode_t type = archive_entry_filetype(e);
    auto dir_or = OpenDirNoFollow(root.fd, *parts,
                                  type == AE_IFDIR ? parts->size() : parts->size() - 1, true);
    if (!dir_or.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("oci-archive: ", name, ": ", dir_or.status().message()));
    Fd dir(*dir_or);
    if (type == AE_IFDIR) continue;
    if (type != AE_IFREG || archive_entry_hardlink(e) != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("oci-archive: entry \"", name, "\" is not a regular file or directory"));
    }
    Fd out(openat(dir.fd, parts->back().c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (out.fd < 0) return Errno(absl::StrCat("oci-archive: create ", name, " in"), dest);
    RETURN_IF_ERROR(CopyData(a.get(), out.fd, budget, name));
  }
}

}  // namespace

absl::StatusOr<std::array<uint8_t, 32>> Sha256File(const fs::path& path, uint64_t expected_size) {
  Fd f(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (f.fd < 0) return Errno("open blob", path);
  struct stat st {};
  if (fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) != expected_size) {
    return absl::InvalidArgumentError(absl::StrCat("oci.blob.size: ", path.filename().string(),
                                                   " has ", st.st_size, " bytes, descriptor says ",
                                                   expected_size));
  }
  posix_fadvise(f.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<uint8_t> buf(kReadChunk);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = read(f.fd, buf.data(), buf.size());
    if (n < 0) return Errno("read blob", path);
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > expected_size) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
  }
  if (total != expected_size) {
    return absl::InvalidArgumentError(absl::StrCat("oci.blob.size: ", path.filename().string(),
                                                   " changed size while it was read"));
  }
  std::array<uint8_t, 32> out{};
  EVP_DigestFinal_ex(ctx.get(), out.data(), nullptr);
  return out;
}

absl::StatusOr<OciImage> VerifyOciLayout(const fs::path& dir, const OciLimits& limits) {
  OciImage image;
  image.layout = dir;
  // oci-layout and index.json are not content-addressed: they only lead to the manifest, whose
  // digest is what gets measured.
  {
    std::error_code ec;
    if (!fs::is_regular_file(dir / "oci-layout", ec)) {
      return absl::InvalidArgumentError(absl::StrCat(dir.string(), ": no oci-layout file"));
    }
  }
  const fs::path index_path = dir / "index.json";
  std::vector<uint8_t> index_bytes;
  {
    Fd f(open(index_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (f.fd < 0) return Errno("open", index_path);
    index_bytes.resize(limits.max_json_bytes + 1);
    size_t got = 0;
    for (;;) {
      ssize_t n = read(f.fd, index_bytes.data() + got, index_bytes.size() - got);
      if (n < 0) return Errno("read", index_path);
      if (n == 0) break;
      got += static_cast<size_t>(n);
      if (got == index_bytes.size()) return absl::InvalidArgumentError("index.json too large");
    }
    index_bytes.resize(got);
  }
  ASSIGN_OR_RETURN(json index, ParseJsonBytes(index_bytes, "index.json"));
  auto manifests = index.find("manifests");
  if (manifests == index.end() || !manifests->is_array() || manifests->empty()) {
    return absl::InvalidArgumentError("index.json: no manifests");
  }
  const json* chosen = nullptr;
  if (manifests->size() == 1) {
    chosen = &(*manifests)[0];
  } else {
    for (const auto& m : *manifests) {
      auto p = m.find("platform");
      if (p != m.end() && p->is_object() && p->value("os", "") == "linux" &&
          p->value("architecture", "") == "amd64") {
        if (chosen != nullptr)
          return absl::InvalidArgumentError("index.json: two linux/amd64 manifests");
        chosen = &m;
      }
    }
    if (chosen == nullptr) return absl::InvalidArgumentError("index.json: no linux/amd64 manifest");
  }
  ASSIGN_OR_RETURN(image.manifest, ParseDescriptor(*chosen, "index.json manifest"));
  if (image.manifest.media_type != kManifestType &&
      image.manifest.media_type != kDockerManifestType) {
    return absl::InvalidArgumentError(
        absl::StrCat("index.json: manifest media type ", image.manifest.media_type));
  }
  ASSIGN_OR_RETURN(json manifest, ReadVerifiedJson(dir, image.manifest, limits, "manifest"));
  auto cfg = manifest.find("config");
  auto layers = manifest.find("layers");
  if (cfg == manifest.end() || layers == manifest.end() || !layers->is_array()) {
    return absl::InvalidArgumentError("manifest: needs config and layers");
  }
  ASSIGN_OR_RETURN(image.config, ParseDescriptor(*cfg, "manifest config"));
  if (layers->size() > limits.max_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest: ", layers->size(), " layers, more than ", limits.max_layers));
  }
  uint64_t total = image.manifest.size + image.config.size;
  for (size_t i = 0; i < layers->size(); ++i) {
    ASSIGN_OR_RETURN(auto d, ParseDescriptor((*layers)[i], absl::StrCat("manifest layer ", i)));
    total += d.size;
    if (d.size > limits.max_total_bytes || total > limits.max_total_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("manifest: blobs exceed ", limits.max_total_bytes, " bytes"));
    }
    image.layers.push_back(std::move(d));
  }
  ASSIGN_OR_RETURN(json config, ReadVerifiedJson(dir, image.config, limits, "config"));
  if (auto c = config.find("config"); c != config.end() && c->is_object()) {
    ASSIGN_OR_RETURN(auto entry, StringList(*c, "Entrypoint"));
    ASSIGN_OR_RETURN(auto cmd, StringList(*c, "Cmd"));
    ASSIGN_OR_RETURN(image.env, StringList(*c, "Env"));
    image.argv = entry;
    image.argv.insert(image.argv.end(), cmd.begin(), cmd.end());
    if (auto w = c->find("WorkingDir"); w != c->end() && w->is_string()) image.working_dir = *w;
  }

  // Every layer blob, in parallel: the first failure (by layer order) is reported.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const unsigned threads = std::min<unsigned>(limits.threads ? limits.threads : cores,
                                              std::max<size_t>(1, image.layers.size()));
  std::vector<absl::Status> results(image.layers.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next.fetch_add(1); i < image.layers.size(); i = next.fetch_add(1)) {
      const auto& d = image.layers[i];
      auto sha = Sha256File(BlobPath(dir, d), d.size);
      if (!sha.ok()) {
        results[i] = sha.status();
      } else if (*sha != d.sha256) {
        results[i] =
            absl::InvalidArgumentError(absl::StrCat("oci.blob.digest: layer ", i, " ", d.digest,
                                                    " hashes to sha256:", attest::HexEncode(*sha)));
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  for (const auto& s : results) RETURN_IF_ERROR(s);
  image.blob_bytes = total;
  return image;
}

absl::StatusOr<OciImage> LoadOciImage(const fs::path& image, const fs::path& work_dir,
                                      const OciLimits& limits) {
  std::error_code ec;
  if (fs::is_directory(image, ec)) return VerifyOciLayout(image, limits);
  if (!fs::is_regular_file(image, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(image.string(), ": no such image"));
  }
  const fs::path layout = work_dir / "layout";
  fs::remove_all(layout, ec);
  if (mkdir(layout.c_str(), 0700) != 0) return Errno("mkdir", layout);
  RETURN_IF_ERROR(ExtractOciArchive(image, layout, limits));
  return VerifyOciLayout(layout, limits);
}

absl::Status UnpackLayers(const OciImage& image, const fs::path& rootfs, const OciLimits& limits) {
  if (mkdir(rootfs.c_str(), 0755) != 0) return Errno("mkdir", rootfs);
  Fd root(open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.fd < 0) return Errno("open", rootfs);
  // The supervisor's unit runs with UMask=0077; the model's (dynamic) user must still read its
  // root.
  if (fchmod(root.fd, 0755) != 0) return Errno("chmod", rootfs);
  uint64_t budget = limits.max_unpacked_bytes;
  size_t entries = 0;
  for (const auto& layer : image.layers) {
    RETURN_IF_ERROR(UnpackLayer(root.fd, BlobPath(image.layout, layer), limits, budget, entries));
  }
  return absl::OkStatus();
}

}  // namespace appliance::supervisor
