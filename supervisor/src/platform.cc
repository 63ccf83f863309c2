#include "supervisor/platform.h"

#include <fcntl.h>
#include <linux/sev-guest.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "appliance/v1/evidence.pb.h"
#include "attest/azure/azure.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/snp/cert_table.h"
#include "attest/snp/report.h"
#include "attest/status.h"
#include "attest/tpm/hash_alg.h"
#include "attest/verify_options.h"
#include "snp_signer.h"
#include "supervisor/tpm.h"
#include "tdx_signer.h"

namespace appliance::supervisor {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxBlob = 64 * 1024;
constexpr size_t kSnpReportSize = 1184;

absl::StatusOr<std::vector<uint8_t>> ReadSmallFile(const fs::path& p) {
  int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(p.string(), ": ", std::strerror(errno)));
  std::vector<uint8_t> out;
  uint8_t buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      int err = errno;
      close(fd);
      return absl::UnavailableError(absl::StrCat(p.string(), ": ", std::strerror(err)));
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
    if (out.size() > kMaxBlob) {
      close(fd);
      return absl::OutOfRangeError(absl::StrCat(p.string(), ": more than ", kMaxBlob, " bytes"));
    }
  }
  close(fd);
  return out;
}

absl::Status WriteSmallFile(const fs::path& p, std::span<const uint8_t> data) {
  int fd = open(p.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(p.string(), ": ", std::strerror(errno)));
  ssize_t n = write(fd, data.data(), data.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(data.size())) {
    return absl::UnavailableError(
        absl::StrCat(p.string(), ": ", n < 0 ? std::strerror(err) : "short write"));
  }
  return absl::OkStatus();
}

std::string Trimmed(const std::vector<uint8_t>& b) {
  std::string s(b.begin(), b.end());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void FillSnp(appliance::v1::Evidence& out, std::span<const uint8_t> report,
             const attest::snp::CertTable* certs) {
  auto* snp = out.mutable_snp();
  snp->set_report(report.data(), report.size());
  if (certs == nullptr) return;
  const auto& vek = certs->vlek_der.empty() ? certs->vcek_der : certs->vlek_der;
  snp->set_vek_der(vek.data(), vek.size());
  if (!certs->ask_der.empty()) snp->add_chain_der(certs->ask_der.data(), certs->ask_der.size());
  if (!certs->ark_der.empty()) snp->add_chain_der(certs->ark_der.data(), certs->ark_der.size());
}

class ConfigfsTsmProducer : public EvidenceProducer {
 public:
  ConfigfsTsmProducer(std::string provider, fs::path root)
      : provider_(std::move(provider)), root_(std::move(root)) {}
  std::string name() const override { return "configfs-tsm (" + provider_ + ")"; }

  absl::Status Produce(const ReportData& report_data, appliance::v1::Evidence& out) override {
    std::lock_guard<std::mutex> lock(mu_);
    static std::atomic<uint64_t> counter{0};
    const fs::path entry = root_ / absl::StrCat("appliance-", getpid(), "-", counter.fetch_add(1));
    if (mkdir(entry.c_str(), 0700) != 0) {
      return absl::UnavailableError(
          absl::StrCat("configfs-tsm: mkdir ", entry.string(), ": ", std::strerror(errno)));
    }
    absl::Status status = ProduceIn(entry, report_data, out);
    rmdir(entry.c_str());
    return status;
  }

 private:
  absl::Status ProduceIn(const fs::path& entry, const ReportData& report_data,
                         appliance::v1::Evidence& out) {
    ASSIGN_OR_RETURN(auto provider, ReadSmallFile(entry / "provider"));
    if (Trimmed(provider) != provider_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "configfs-tsm: provider is \"", Trimmed(provider), "\", expected \"", provider_, "\""));
    }
    ASSIGN_OR_RETURN(auto gen0, ReadSmallFile(entry / "generation"));
    RETURN_IF_ERROR(WriteSmallFile(entry / "inblob", report_data));
    ASSIGN_OR_RETURN(auto outblob, ReadSmallFile(entry / "outblob"));
    std::vector<uint8_t> auxblob;
    if (provider_ == "sev_guest") {
      if (auto aux = ReadSmallFile(entry / "auxblob"); aux.ok()) auxblob = std::move(*aux);
    }
    ASSIGN_OR_RETURN(auto gen1, ReadSmallFile(entry / "generation"));
    const std::string g0 = Trimmed(gen0), g1 = Trimmed(gen1);
    if (std::to_string(std::stoull(g0.empty() ? "0" : g0) + 1) != g1) {
      return absl::AbortedError(absl::StrCat("configfs-tsm: generation went from ", g0, " to ", g1,
                                             ": another writer raced this request"));
    }
    if (provider_ == "sev_guest") {
      if (outblob.size() != kSnpReportSize) {
        return absl::InternalError(absl::StrCat("configfs-tsm: SNP report of ", outblob.size(),
                                                " bytes, expected ", kSnpReportSize));
      }
      if (auxblob.empty()) {
        FillSnp(out, outblob, nullptr);
      } else {
        ASSIGN_OR_RETURN(auto certs, attest::snp::ParseCertTable(auxblob));
        FillSnp(out, outblob, &certs);
      }
    } else {
      out.mutable_tdx()->set_quote(outblob.data(), outblob.size());
    }
    return absl::OkStatus();
  }

  std::mutex mu_;
  std::string provider_;
  fs::path root_;
};

class SevGuestProducer : public EvidenceProducer {
 public:
  explicit SevGuestProducer(int fd) : fd_(fd) {}
  ~SevGuestProducer() override { close(fd_); }
  std::string name() const override { return "/dev/sev-guest"; }

  absl::Status Produce(const ReportData& report_data, appliance::v1::Evidence& out) override {
    std::lock_guard<std::mutex> lock(mu_);
    snp_ext_report_req ext{};
    std::memcpy(ext.data.user_data, report_data.data(), report_data.size());
    std::vector<uint8_t> certs(16 * 4096);
    std::vector<uint8_t> resp(sizeof(snp_report_resp));
    snp_guest_request_ioctl req{};
    req.msg_version = 1;
    req.req_data = reinterpret_cast<uint64_t>(&ext);
    req.resp_data = reinterpret_cast<uint64_t>(resp.data());
    ext.certs_address = reinterpret_cast<uint64_t>(certs.data());
    ext.certs_len = static_cast<uint32_t>(certs.size());
    bool with_certs = ioctl(fd_, SNP_GET_EXT_REPORT, &req) == 0;
    if (!with_certs) {
      // No certificates from the host (or an old host): a plain report.
      snp_report_req plain{};
      std::memcpy(plain.user_data, report_data.data(), report_data.size());
      req = {};
      req.msg_version = 1;
      req.req_data = reinterpret_cast<uint64_t>(&plain);
      req.resp_data = reinterpret_cast<uint64_t>(resp.data());
      if (ioctl(fd_, SNP_GET_REPORT, &req) != 0) {
        return absl::UnavailableError(
            absl::StrCat("/dev/sev-guest SNP_GET_REPORT: ", std::strerror(errno), " (exitinfo2 0x",
                         absl::Hex(req.exitinfo2), ")"));
      }
    }
    // MSG_REPORT_RSP: status u32, report_size u32, 24 reserved bytes, then the report.
    uint32_t status = 0, size = 0;
    std::memcpy(&status, resp.data(), 4);
    std::memcpy(&size, resp.data() + 4, 4);
    if (status != 0 || size != kSnpReportSize || resp.size() < 32 + kSnpReportSize) {
      return absl::InternalError(
          absl::StrCat("/dev/sev-guest: report status ", status, ", size ", size));
    }
    std::span<const uint8_t> report(resp.data() + 32, kSnpReportSize);
    if (with_certs) {
      size_t table_len = std::min<size_t>(ext.certs_len, certs.size());
      ASSIGN_OR_RETURN(auto table, attest::snp::ParseCertTable(std::span(certs.data(), table_len)));
      FillSnp(out, report, &table);
    } else {
      FillSnp(out, report, nullptr);
    }
    return absl::OkStatus();
  }

 private:
  std::mutex mu_;
  int fd_;
};

class SoftwareSnpProducer : public EvidenceProducer {
 public:
  SoftwareSnpProducer(std::unique_ptr<attest::testing::SoftwareSnpSigner> signer,
                      attest::testing::SoftwareVek vek, SoftwareSnpOptions options)
      : signer_(std::move(signer)), vek_(std::move(vek)), options_(std::move(options)) {}
  std::string name() const override { return "SoftwareSnpSigner (TEST, not AMD)"; }

  absl::Status Produce(const ReportData& report_data, appliance::v1::Evidence& out) override {
    attest::snp::TcbVersion tcb{};
    tcb.bl = 3;
    tcb.snp = 8;
    tcb.ucode = 115;
    // A VLEK report does not reveal the chip: its chip id is zero.
    const std::array<uint8_t, 64> chip =
        vek_.kind == attest::snp::SigningKey::kVlek ? std::array<uint8_t, 64>{} : chip_id_;
    auto fields = attest::testing::MakeReportFields(signer_->product(), 3, tcb, chip);
    fields.policy = attest::snp::DecodeGuestPolicy(options_.policy);
    fields.report_data = report_data;
    fields.measurement = options_.measurement;
    fields.host_data = options_.host_data;
    fields.signing_key = vek_.kind;
    ASSIGN_OR_RETURN(auto report, signer_->SignReport(fields, vek_));
    auto* snp = out.mutable_snp();
    snp->set_report(report.data(), report.size());
    snp->set_vek_der(vek_.cert_der.data(), vek_.cert_der.size());
    for (const auto& c : signer_->Chain(vek_.kind)) {
      snp->add_chain_der(c.data(), c.size());
    }
    return absl::OkStatus();
  }

  std::array<uint8_t, 64> chip_id_{};

 private:
  std::unique_ptr<attest::testing::SoftwareSnpSigner> signer_;
  attest::testing::SoftwareVek vek_;
  SoftwareSnpOptions options_;
};

class SoftwareTdxProducer : public EvidenceProducer {
 public:
  SoftwareTdxProducer(std::unique_ptr<attest::testing::SoftwareTdxSigner> signer,
                      SoftwareTdxOptions options)
      : signer_(std::move(signer)), options_(std::move(options)) {}
  std::string name() const override { return "SoftwareTdxSigner (TEST, not Intel)"; }

  static attest::testing::SoftwareTdxSigner::QuoteSpec Spec() {
    return attest::testing::DefaultTestQuoteSpec();
  }

  absl::Status Produce(const ReportData& report_data, appliance::v1::Evidence& out) override {
    auto spec = Spec();
    spec.body.td_attributes = (1ull << 28) | (options_.debug ? 1ull : 0ull);  // SEPT_VE_DISABLE
    spec.body.mrtd = options_.mrtd;
    spec.body.mrconfigid = options_.mrconfigid;
    spec.body.report_data = report_data;
    if (options_.rtmr3) {
      auto values = options_.rtmr3->values();
      auto reg = values.find(RuntimeLog::kRuntimePcr);
      if (reg != values.end() && reg->second.count(attest::tpm::kAlgSha384)) {
        const auto& v = reg->second.at(attest::tpm::kAlgSha384);
        std::copy(v.begin(), v.end(), spec.body.rtmr[3].begin());
      }
    }
    ASSIGN_OR_RETURN(auto quote, signer_->SignQuote(spec));
    out.mutable_tdx()->set_quote(quote.data(), quote.size());
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<attest::testing::SoftwareTdxSigner> signer_;
  SoftwareTdxOptions options_;
};

class AzureProducer : public EvidenceProducer {
 public:
  explicit AzureProducer(AzureOptions options) : o_(std::move(options)) {}
  std::string name() const override { return "Azure paravisor (vTPM NV 0x01400001/0x01400002)"; }

  absl::Status Produce(const ReportData& report_data, appliance::v1::Evidence& out) override {
    namespace azure = attest::azure;
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(bool defined, o_.tpm->NvDefined(azure::kUserDataNvIndex));
    if (!defined) {
      auto st = o_.tpm->NvDefineOwner(azure::kUserDataNvIndex, azure::kUserDataSize);
      if (!st.ok() && !absl::IsAlreadyExists(st)) return st;
    }
    RETURN_IF_ERROR(o_.tpm->NvWriteOwner(azure::kUserDataNvIndex, report_data));
    std::string last;
    for (int i = 0; i < o_.max_polls; ++i) {
      if (i > 0) usleep(static_cast<useconds_t>(o_.poll_interval_ms) * 1000);
      ASSIGN_OR_RETURN(auto bytes, o_.tpm->NvReadOwner(azure::kHclReportNvIndex, kMaxBlob));
      auto hcl = azure::ParseHclReport(bytes);
      if (!hcl.ok()) return absl::InternalError(absl::StrCat("Azure: ", hcl.status().message()));
      // Only the user data is looked at here; the verifier checks the binding and the chain.
      auto user_data = azure::RuntimeUserData(*hcl);
      if (!user_data.ok())
        return absl::InternalError(absl::StrCat("Azure: ", user_data.status().message()));
      if (!std::equal(user_data->begin(), user_data->end(), report_data.begin(),
                      report_data.end())) {
        last = attest::HexEncode(*user_data);
        continue;  // not refreshed yet
      }
      auto* az = out.mutable_azure();
      az->set_hcl_report(bytes.data(), bytes.size());
      if (hcl->report_type == azure::kReportTypeSnp) {
        if (!o_.vcek_der.empty()) az->set_vek_der(o_.vcek_der.data(), o_.vcek_der.size());
        for (const auto& c : o_.chain_der) az->add_chain_der(c.data(), c.size());
      } else {
        if (!o_.td_quote_service) {
          return absl::FailedPreconditionError("Azure TDX: no TD quote service configured");
        }
        ASSIGN_OR_RETURN(auto quote, o_.td_quote_service->Quote(hcl->hardware_report));
        az->set_td_quote(quote.data(), quote.size());
      }
      return absl::OkStatus();
    }
    return absl::UnavailableError(absl::StrCat("Azure: the HCL report was not refreshed after ",
                                               o_.max_polls, " reads (its user data is ",
                                               last.empty() ? std::string("absent") : last,
                                               "): the paravisor did not answer the request"));
  }

 private:
  std::mutex mu_;
  AzureOptions o_;
};

class VtpmOnlyProducer : public EvidenceProducer {
 public:
  std::string name() const override { return "vtpm-only (no hardware report)"; }
  absl::Status Produce(const ReportData&, appliance::v1::Evidence& out) override {
    out.mutable_vtpm_only();
    return absl::OkStatus();
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<EvidenceProducer>> MakeConfigfsTsmProducer(std::string provider,
                                                                          fs::path root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::UnavailableError(absl::StrCat("configfs-tsm: ", root.string(),
                                               " is not there (kernel < 6.7 or configfs not "
                                               "mounted)"));
  }
  return std::make_unique<ConfigfsTsmProducer>(std::move(provider), std::move(root));
}

absl::StatusOr<std::unique_ptr<EvidenceProducer>> MakeSevGuestProducer(fs::path device) {
  int fd = open(device.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(device.string(), ": ", std::strerror(errno)));
  }
  return std::make_unique<SevGuestProducer>(fd);
}

absl::StatusOr<std::unique_ptr<EvidenceProducer>> ProbeSnpProducer() {
  auto tsm = MakeConfigfsTsmProducer("sev_guest");
  if (tsm.ok()) return tsm;
  auto ioctl = MakeSevGuestProducer();
  if (ioctl.ok()) return ioctl;
  return absl::UnavailableError(absl::StrCat("no SEV-SNP guest interface: ", tsm.status().message(),
                                             "; ", ioctl.status().message()));
}

absl::StatusOr<std::unique_ptr<EvidenceProducer>> MakeSoftwareSnpProducer(
    const SoftwareSnpOptions& options) {
  ASSIGN_OR_RETURN(auto signer, attest::testing::SoftwareSnpSigner::Create(
                                    attest::snp::Product::kGenoa, options.rsa_bits));
  attest::testing::VekOptions vek_options;
  vek_options.tcb.bl = 3;
  vek_options.tcb.snp = 8;
  vek_options.tcb.ucode = 115;
  if (options.vlek) {
    vek_options.kind = attest::snp::SigningKey::kVlek;
    vek_options.csp_id = "CN=software-snp-signer.test (AWS-style VLEK, TEST)";
  }
  ASSIGN_OR_RETURN(auto vek, signer->IssueVek(vek_options));
  if (!options.roots_out_dir.empty()) {
    ASSIGN_OR_RETURN(std::string pem, attest::CertificatesToPem({signer->ark_der()}));
    RETURN_IF_ERROR(attest::WriteFileAtomically(options.roots_out_dir / "snp_ark.pem", pem));
  }
  return std::make_unique<SoftwareSnpProducer>(std::move(signer), std::move(vek), options);
}

absl::StatusOr<std::unique_ptr<EvidenceProducer>> MakeSoftwareTdxProducer(
    const SoftwareTdxOptions& options) {
  ASSIGN_OR_RETURN(auto signer, attest::testing::SoftwareTdxSigner::Create());
  if (!options.roots_out_dir.empty()) {
    RETURN_IF_ERROR(attest::testing::WriteTestTdxRoots(*signer, SoftwareTdxProducer::Spec(),
                                                       options.roots_out_dir));
  }
  return std::make_unique<SoftwareTdxProducer>(std::move(signer), options);
}

absl::StatusOr<std::unique_ptr<EvidenceProducer>> MakeAzureProducer(AzureOptions options) {
  if (!options.tpm) return absl::FailedPreconditionError("platform azure needs the vTPM");
  if (options.max_polls < 1) options.max_polls = 1;
  // The paravisor is there: its HCL report index reads and parses (the paravisor answers for
  // this index itself; it need not appear in the vTPM's handle list).
  auto bytes = options.tpm->NvReadOwner(attest::azure::kHclReportNvIndex, kMaxBlob);
  if (!bytes.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "Azure: no HCL report in vTPM NV index 0x01400001 (not an Azure confidential VM?): ",
        bytes.status().message()));
  }
  auto hcl = attest::azure::ParseHclReport(*bytes);
  if (!hcl.ok()) return absl::UnavailableError(absl::StrCat("Azure: ", hcl.status().message()));
  if (hcl->report_type == attest::azure::kReportTypeSnp && options.vcek_der.empty() &&
      options.snp_chain) {
    ASSIGN_OR_RETURN(auto certs, options.snp_chain());
    if (!certs.empty()) {
      options.vcek_der = std::move(certs.front());
      options.chain_der.assign(std::make_move_iterator(certs.begin() + 1),
                               std::make_move_iterator(certs.end()));
    }
  }
  return std::make_unique<AzureProducer>(std::move(options));
}

absl::StatusOr<std::string> ProbePlatform(Tpm* tpm, const fs::path& tsm_root,
                                          const fs::path& sev_guest) {
  std::vector<std::string> tried;
  if (tpm != nullptr) {
    auto bytes = tpm->NvReadOwner(attest::azure::kHclReportNvIndex, kMaxBlob);
    if (bytes.ok() && attest::azure::ParseHclReport(*bytes).ok()) return std::string("azure");
    tried.push_back("no Azure HCL report in vTPM NV 0x01400001");
  } else {
    tried.push_back("no vTPM (so no Azure paravisor)");
  }
  std::error_code ec;
  if (fs::is_directory(tsm_root, ec)) {
    static std::atomic<uint64_t> counter{0};
    const fs::path entry =
        tsm_root / absl::StrCat("appliance-probe-", getpid(), "-", counter.fetch_add(1));
    if (mkdir(entry.c_str(), 0700) == 0) {
      auto provider = ReadSmallFile(entry / "provider");
      rmdir(entry.c_str());
      if (provider.ok()) {
        const std::string p = Trimmed(*provider);
        if (p == "sev_guest") return std::string("snp");
        if (p == "tdx_guest") return std::string("tdx");
        tried.push_back(absl::StrCat("configfs-tsm provider \"", p, "\" is not SEV-SNP or TDX"));
      } else {
        tried.push_back(std::string(provider.status().message()));
      }
    } else {
      tried.push_back(absl::StrCat("configfs-tsm: mkdir: ", std::strerror(errno)));
    }
  } else {
    tried.push_back(absl::StrCat("no configfs-tsm at ", tsm_root.string()));
  }
  if (fs::exists(sev_guest, ec)) return std::string("snp");
  tried.push_back(absl::StrCat("no ", sev_guest.string()));
  return absl::NotFoundError(absl::StrCat("platform auto: no confidential platform found (",
                                          absl::StrJoin(tried, "; "), ")"));
}

std::unique_ptr<EvidenceProducer> MakeVtpmOnlyProducer() {
  return std::make_unique<VtpmOnlyProducer>();
}

}  // namespace appliance::supervisor
