#include "azure_paravisor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "attest/azure/azure.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"
#include "hcl_builder.h"
#include "snp_signer.h"
#include "tdx_signer.h"
#include "test_support.h"

namespace attest::testing {
namespace {

constexpr uint32_t kCcNvReadPublic = 0x169, kCcNvRead = 0x14E, kCcNvWrite = 0x137;
constexpr int kPollMs = 100;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void Put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
void Put32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

int Listen(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 4) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Waits until `fd` is readable (true), or the stop flag / peer end (false).
bool WaitReadable(int fd, const std::atomic<bool>& stop) {
  while (!stop) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, kPollMs);
    if (r < 0) return false;
    if (r > 0) return true;
  }
  return false;
}

bool ReadFull(int fd, uint8_t* buf, size_t n, const std::atomic<bool>& stop) {
  size_t got = 0;
  while (got < n) {
    if (!WaitReadable(fd, stop)) return false;
    ssize_t r = read(fd, buf + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

bool WriteFull(int fd, const std::vector<uint8_t>& v) {
  size_t done = 0;
  while (done < v.size()) {
    ssize_t w = write(fd, v.data() + done, v.size() - done);
    if (w <= 0) return false;
    done += static_cast<size_t>(w);
  }
  return true;
}

// One TPM command or response: the 10-byte header says its size (bounded: 8 KiB).
bool ReadMessage(int fd, std::vector<uint8_t>& out, const std::atomic<bool>& stop) {
  out.resize(10);
  if (!ReadFull(fd, out.data(), 10, stop)) return false;
  uint32_t size = Be32(out.data() + 2);
  if (size < 10 || size > 8192) return false;
  out.resize(size);
  return ReadFull(fd, out.data() + 10, size - 10, stop);
}

std::vector<uint8_t> ErrorResponse(uint32_t rc) {
  std::vector<uint8_t> r;
  Put16(r, TPM2_ST_NO_SESSIONS);
  Put32(r, 10);
  Put32(r, rc);
  return r;
}

}  // namespace

struct AzureParavisor::Impl {
  Options options;
  std::unique_ptr<SoftwareSnpSigner> signer;
  SoftwareVek vek;
  int port = 0;
  int listen_fd = -1, ctrl_listen_fd = -1;
  std::atomic<bool> stop{false}, frozen{false};
  std::atomic<int> reports{0};
  std::mutex mu;
  std::vector<uint8_t> hcl;                    // the current HCL report (under mu)
  std::optional<tpm::AkPublicKey> runtime_ak;  // under mu
  std::thread data_thread, ctrl_thread;

  ~Impl() {
    stop = true;
    if (data_thread.joinable()) data_thread.join();
    if (ctrl_thread.joinable()) ctrl_thread.join();
    if (listen_fd >= 0) close(listen_fd);
    if (ctrl_listen_fd >= 0) close(ctrl_listen_fd);
  }

  absl::Status MakeReport(std::span<const uint8_t> user_data) {
    std::string runtime;
    {
      std::lock_guard<std::mutex> lock(mu);
      runtime = AzureRuntimeData(runtime_ak ? *runtime_ak : options.ak, user_data);
    }
    if (options.tdx) {
      // TDREPORT: REPORTMACSTRUCT (REPORTDATA at 128), TEE_TCB_INFO at 256, TDINFO at 512
      // (ATTRIBUTES, XFAM, MRTD, ...).
      std::vector<uint8_t> tdreport(1024, 0);
      const auto rd = HclReportData(runtime);
      std::copy(rd.begin(), rd.end(), tdreport.begin() + 128);
      const uint64_t attributes = 1ull << 28;  // SEPT_VE_DISABLE, not DEBUG
      for (int i = 0; i < 8; ++i)
        tdreport[512 + static_cast<size_t>(i)] = static_cast<uint8_t>(attributes >> (8 * i));
      std::copy(options.measurement.begin(), options.measurement.end(), tdreport.begin() + 528);
      ASSIGN_OR_RETURN(auto built, BuildHclReport(azure::kReportTypeTdx, tdreport, runtime));
      std::lock_guard<std::mutex> lock(mu);
      hcl = std::move(built);
      ++reports;
      return absl::OkStatus();
    }
    snp::TcbVersion tcb{};
    tcb.bl = 3;
    tcb.snp = 8;
    tcb.ucode = 115;
    auto fields = MakeReportFields(signer->product(), 3, tcb, {});
    fields.policy = snp::DecodeGuestPolicy(0x30000);
    fields.report_data = HclReportData(runtime);
    fields.measurement = options.measurement;
    fields.signing_key = snp::SigningKey::kVcek;
    fields.vmpl = 0;
    ASSIGN_OR_RETURN(auto report, signer->SignReport(fields, vek));
    ASSIGN_OR_RETURN(auto built, BuildHclReport(azure::kReportTypeSnp, report, runtime));
    std::lock_guard<std::mutex> lock(mu);
    hcl = std::move(built);
    ++reports;
    return absl::OkStatus();
  }

  // The served index's public area and its Name (nameAlg || SHA-256(TPMS_NV_PUBLIC)).
  std::pair<std::vector<uint8_t>, std::vector<uint8_t>> NvPublic(uint16_t size) const {
    TPMS_NV_PUBLIC pub{};
    pub.nvIndex = azure::kHclReportNvIndex;
    pub.nameAlg = TPM2_ALG_SHA256;
    pub.attributes = TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA | TPMA_NV_WRITTEN |
                     TPMA_NV_PPWRITE | TPMA_NV_PLATFORMCREATE;
    pub.dataSize = size;
    std::vector<uint8_t> body(sizeof(TPMS_NV_PUBLIC));
    size_t off = 0;
    Tss2_MU_TPMS_NV_PUBLIC_Marshal(&pub, body.data(), body.size(), &off);
    body.resize(off);
    std::vector<uint8_t> name;
    Put16(name, TPM2_ALG_SHA256);
    auto digest = tpm::Hash(tpm::kAlgSha256, body);
    name.insert(name.end(), digest->begin(), digest->end());
    std::vector<uint8_t> tpm2b;
    Put16(tpm2b, static_cast<uint16_t>(body.size()));
    tpm2b.insert(tpm2b.end(), body.begin(), body.end());
    return {tpm2b, name};
  }

  // Answers a command for the served index, or returns false to forward it.
  bool Serve(const std::vector<uint8_t>& cmd, std::vector<uint8_t>& rsp) {
    const uint16_t tag = Be16(cmd.data());
    const uint32_t cc = Be32(cmd.data() + 6);
    std::lock_guard<std::mutex> lock(mu);
    if (cc == kCcNvReadPublic && cmd.size() >= 14 &&
        Be32(cmd.data() + 10) == azure::kHclReportNvIndex) {
      auto [pub, name] = NvPublic(static_cast<uint16_t>(hcl.size()));
      rsp.clear();
      Put16(rsp, TPM2_ST_NO_SESSIONS);
      Put32(rsp, 0);
      Put32(rsp, TPM2_RC_SUCCESS);
      rsp.insert(rsp.end(), pub.begin(), pub.end());
      Put16(rsp, static_cast<uint16_t>(name.size()));
      rsp.insert(rsp.end(), name.begin(), name.end());
    } else if (cc == kCcNvRead && tag == TPM2_ST_SESSIONS && cmd.size() >= 22 &&
               Be32(cmd.data() + 14) == azure::kHclReportNvIndex) {
      // handles (2), authorizationSize, one password session, then size and offset.
      const uint32_t auth_size = Be32(cmd.data() + 18);
      const size_t params = 22 + static_cast<size_t>(auth_size);
      if (params + 4 > cmd.size() || auth_size < 9) {
        rsp = ErrorResponse(TPM2_RC_AUTHSIZE);
        return true;
      }
      const uint8_t* session = cmd.data() + 22;
      const uint16_t nonce_size = Be16(session + 4);
      const uint8_t attrs = session[6 + nonce_size];
      const uint16_t size = Be16(cmd.data() + params), offset = Be16(cmd.data() + params + 2);
      if (static_cast<size_t>(offset) + size > hcl.size()) {
        rsp = ErrorResponse(TPM2_RC_NV_RANGE);
        return true;
      }
      rsp.clear();
      Put16(rsp, TPM2_ST_SESSIONS);
      Put32(rsp, 0);
      Put32(rsp, TPM2_RC_SUCCESS);
      Put32(rsp, 2u + size);  // parameterSize
      Put16(rsp, size);
      rsp.insert(rsp.end(), hcl.begin() + offset, hcl.begin() + offset + size);
      Put16(rsp, 0);  // nonceTPM
      rsp.push_back(static_cast<uint8_t>(attrs & TPMA_SESSION_CONTINUESESSION));
      Put16(rsp, 0);  // hmac (password session)
    } else {
      return false;
    }
    const uint32_t n = static_cast<uint32_t>(rsp.size());
    for (int i = 0; i < 4; ++i)
      rsp[2 + static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (24 - 8 * i));
    return true;
  }

  // The user data of a TPM2_NV_Write to 0x01400002 (64 bytes at offset 0), if it is one.
  static std::optional<std::vector<uint8_t>> UserDataWrite(const std::vector<uint8_t>& cmd) {
    if (cmd.size() < 22 || Be32(cmd.data() + 6) != kCcNvWrite ||
        Be32(cmd.data() + 14) != azure::kUserDataNvIndex) {
      return std::nullopt;
    }
    const size_t params = 22 + static_cast<size_t>(Be32(cmd.data() + 18));
    if (params + 2 > cmd.size()) return std::nullopt;
    const uint16_t size = Be16(cmd.data() + params);
    if (params + 2 + size + 2 > cmd.size() || size != azure::kUserDataSize ||
        Be16(cmd.data() + params + 2 + size) != 0) {
      return std::nullopt;
    }
    return std::vector<uint8_t>(cmd.begin() + static_cast<std::ptrdiff_t>(params + 2),
                                cmd.begin() + static_cast<std::ptrdiff_t>(params + 2 + size));
  }

  void ServeClient(int client) {
    int tpm = Connect(options.swtpm_port);
    std::vector<uint8_t> cmd, rsp;
    while (tpm >= 0 && !stop && ReadMessage(client, cmd, stop)) {
      if (!Serve(cmd, rsp)) {
        if (!WriteFull(tpm, cmd) || !ReadMessage(tpm, rsp, stop)) break;
        auto user = UserDataWrite(cmd);
        if (user && rsp.size() >= 10 && Be32(rsp.data() + 6) == TPM2_RC_SUCCESS && !frozen) {
          if (auto st = MakeReport(*user); !st.ok()) rsp = ErrorResponse(TPM2_RC_FAILURE);
        }
      }
      if (!WriteFull(client, rsp)) break;
    }
    if (tpm >= 0) close(tpm);
  }

  // The control channel (swtpm's port + 1) is relayed byte for byte.
  void RelayControl(int client) {
    int peer = Connect(options.swtpm_port + 1);
    uint8_t buf[4096];
    while (peer >= 0 && !stop) {
      pollfd p[2] = {{client, POLLIN, 0}, {peer, POLLIN, 0}};
      if (poll(p, 2, kPollMs) < 0) break;
      bool done = false;
      for (int i = 0; i < 2 && !done; ++i) {
        if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        ssize_t n = read(p[i].fd, buf, sizeof(buf));
        done = n <= 0 || write(p[1 - i].fd, buf, static_cast<size_t>(n)) != n;
      }
      if (done) break;
    }
    if (peer >= 0) close(peer);
  }

  void Accept(int listen_on, bool control) {
    while (!stop) {
      if (!WaitReadable(listen_on, stop)) break;
      int client = accept4(listen_on, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      if (control) {
        RelayControl(client);
      } else {
        ServeClient(client);
      }
      close(client);
    }
  }
};

AzureParavisor::AzureParavisor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AzureParavisor::~AzureParavisor() = default;

absl::StatusOr<std::unique_ptr<AzureParavisor>> AzureParavisor::Start(const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  ASSIGN_OR_RETURN(impl->signer, SoftwareSnpSigner::Create(snp::Product::kGenoa, 2048));
  VekOptions vek;
  vek.tcb.bl = 3;
  vek.tcb.snp = 8;
  vek.tcb.ucode = 115;
  ASSIGN_OR_RETURN(impl->vek, impl->signer->IssueVek(vek));
  // At boot the paravisor has a report with zero user data.
  RETURN_IF_ERROR(impl->MakeReport(std::vector<uint8_t>(azure::kUserDataSize, 0)));
  for (int attempt = 0; attempt < 20 && impl->listen_fd < 0; ++attempt) {
    int port = 20000 + static_cast<int>((static_cast<unsigned>(getpid()) * 7919u +
                                         static_cast<unsigned>(attempt) * 104729u) %
                                        30000u);
    int data = Listen(port), ctrl = data >= 0 ? Listen(port + 1) : -1;
    if (data >= 0 && ctrl >= 0) {
      impl->port = port;
      impl->listen_fd = data;
      impl->ctrl_listen_fd = ctrl;
    } else {
      if (data >= 0) close(data);
    }
  }
  if (impl->listen_fd < 0) return absl::UnavailableError("paravisor proxy: no free port pair");
  Impl* raw = impl.get();
  impl->data_thread = std::thread([raw] { raw->Accept(raw->listen_fd, false); });
  impl->ctrl_thread = std::thread([raw] { raw->Accept(raw->ctrl_listen_fd, true); });
  return std::unique_ptr<AzureParavisor>(new AzureParavisor(std::move(impl)));
}

std::string AzureParavisor::tcti() const {
  return absl::StrCat("swtpm:host=127.0.0.1,port=", impl_->port);
}
const std::vector<uint8_t>& AzureParavisor::vcek_der() const { return impl_->vek.cert_der; }
const std::vector<uint8_t>& AzureParavisor::ark_der() const { return impl_->signer->ark_der(); }
std::vector<std::vector<uint8_t>> AzureParavisor::chain_der() const {
  return impl_->signer->Chain(snp::SigningKey::kVcek);
}
void AzureParavisor::set_frozen(bool frozen) { impl_->frozen = frozen; }
void AzureParavisor::set_runtime_ak(std::optional<tpm::AkPublicKey> ak) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->runtime_ak = std::move(ak);
}
int AzureParavisor::reports_made() const { return impl_->reports; }

absl::StatusOr<std::vector<uint8_t>> QuoteTdReport(const SoftwareTdxSigner& signer,
                                                   std::span<const uint8_t> td_report) {
  if (td_report.size() != 1024) return absl::InvalidArgumentError("TDREPORT: not 1024 bytes");
  auto spec = DefaultTestQuoteSpec();
  std::copy(td_report.begin() + 128, td_report.begin() + 192, spec.body.report_data.begin());
  std::copy(td_report.begin() + 528, td_report.begin() + 576, spec.body.mrtd.begin());
  uint64_t attributes = 0;
  for (int i = 7; i >= 0; --i)
    attributes = attributes << 8 | td_report[512 + static_cast<size_t>(i)];
  spec.body.td_attributes = attributes;
  return signer.SignQuote(spec);
}

absl::StatusOr<tpm::AkPublicKey> CreateAzureAk(const std::string& swtpm_tcti,
                                               const std::string& work_dir) {
  const std::string ctx = work_dir + "/azure-ak.ctx", pem = work_dir + "/azure-ak.pem";
  auto run = [&](std::vector<std::string> argv) -> absl::Status {
    argv[0] = "/usr/bin/" + argv[0];  // RunProcess execs a path
    argv.insert(argv.begin() + 1, {"-T", swtpm_tcti});
    auto r = RunProcess(argv, 60);
    if (r.exit_code != 0) {
      return absl::InternalError(absl::StrCat(argv[0], " failed: ", r.err));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(
      run({"tpm2_createprimary", "-C", "e", "-G", "rsa2048:rsassa-sha256:null", "-a",
           "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign", "-c", ctx}));
  RETURN_IF_ERROR(run({"tpm2_evictcontrol", "-C", "o", "-c", ctx,
                       absl::StrCat("0x", absl::Hex(azure::kAkPersistentHandle))}));
  RETURN_IF_ERROR(
      run({"tpm2_readpublic", "-c", absl::StrCat("0x", absl::Hex(azure::kAkPersistentHandle)), "-f",
           "pem", "-o", pem}));
  ASSIGN_OR_RETURN(auto bytes, ReadFileBounded(pem, 64 * 1024));
  return tpm::ParseAkPem(bytes);
}

}  // namespace attest::testing
