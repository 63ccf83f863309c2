// appliance-verify log: a coordinator's audit of the release channel's transparency log.
//   appliance-verify log --log-key KEY.json --checkpoint CP.json
//       [--entry E --inclusion-proof P] [--old-checkpoint OLD.json --consistency-proof C] [--json]
// Verifies the checkpoint's signature with the log key (TUF key JSON, as log.json lists it), that
// the entry is in the tree the checkpoint heads, and that the checkpoint extends an older one the
// coordinator kept (the log was only appended to). Exit 0 verified, 1 a check failed, 2 bad input.
#include "log_command.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "attest/encoding.h"
#include "attest/files.h"
#include "attest/status.h"
#include "attest/tlog.h"
#include "output.h"

namespace attest::cli {
namespace {

struct LogArgs {
  std::string key, checkpoint, entry, inclusion, old_checkpoint, consistency;
  bool json = false;
};

absl::Status Run(const LogArgs& a, nlohmann::json& out) {
  ASSIGN_OR_RETURN(auto key, ReadLogKey(a.key));
  ASSIGN_OR_RETURN(auto cp_bytes, ReadInput(a.checkpoint, tlog::kMaxCheckpointSize));
  ASSIGN_OR_RETURN(auto cp, tlog::VerifyCheckpoint(cp_bytes, key));
  out["log"] = cp.log;
  out["size"] = cp.size;
  out["root"] = HexEncode(cp.root);
  out["checks"].push_back("tlog.checkpoint.signature");
  if (!a.entry.empty()) {
    ASSIGN_OR_RETURN(auto entry, ReadInput(a.entry, 64 * 1024));
    ASSIGN_OR_RETURN(auto proof_bytes, ReadInput(a.inclusion, tlog::kMaxProofFileSize));
    ASSIGN_OR_RETURN(auto proof, tlog::ParseInclusionProof(proof_bytes));
    RETURN_IF_ERROR(tlog::VerifyEntry(entry, proof, cp));
    out["entry_index"] = proof.index;
    out["checks"].push_back("tlog.inclusion");
  }
  if (!a.old_checkpoint.empty()) {
    ASSIGN_OR_RETURN(auto old_bytes, ReadInput(a.old_checkpoint, tlog::kMaxCheckpointSize));
    ASSIGN_OR_RETURN(auto old, tlog::VerifyCheckpoint(old_bytes, key));
    ASSIGN_OR_RETURN(auto proof_bytes, ReadInput(a.consistency, tlog::kMaxProofFileSize));
    ASSIGN_OR_RETURN(auto proof, tlog::ParseConsistencyProof(proof_bytes));
    RETURN_IF_ERROR(tlog::VerifyExtends(old, cp, proof));
    out["extends_size"] = old.size;
    out["checks"].push_back("tlog.consistency");
  }
  return absl::OkStatus();
}

}  // namespace

void AddLogCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<LogArgs>();
  auto* cmd = app.add_subcommand(
      "log",
      "Verify a transparency-log checkpoint, an entry's inclusion and the log's consistency");
  cmd->add_option("--log-key", a->key, "the log's public key (TUF key JSON, or log.json)")
      ->required();
  cmd->add_option("--checkpoint", a->checkpoint, "the signed checkpoint (tree head)")->required();
  auto* entry = cmd->add_option("--entry", a->entry, "an entry's exact bytes");
  auto* incl = cmd->add_option("--inclusion-proof", a->inclusion, "its inclusion proof");
  entry->needs(incl);
  incl->needs(entry);
  auto* old =
      cmd->add_option("--old-checkpoint", a->old_checkpoint, "an earlier checkpoint you kept");
  auto* cons =
      cmd->add_option("--consistency-proof", a->consistency, "proof from it to --checkpoint");
  old->needs(cons);
  cons->needs(old);
  cmd->add_flag("--json", a->json, "machine-readable output");
  cmd->callback([a, exit_code] {
    *exit_code = RunChecked(
        "log", a->json, [&](nlohmann::json& out) { return Run(*a, out); },
        [](const nlohmann::json& out) {
          std::printf("verified: log '%s', %s entries, root %s\n",
                      out["log"].get<std::string>().c_str(),
                      std::to_string(out["size"].get<uint64_t>()).c_str(),
                      out["root"].get<std::string>().c_str());
        });
  });
}

}  // namespace attest::cli
