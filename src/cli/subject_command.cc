// pdv subject: a member's LGPD rights (src/subject/subject.h): export, forget, verify,
// and reapply (the register's erasures again, after a restore).

#include <fmt/format.h>

#include <iostream>
#include <istream>
#include <iterator>

#include "cli/command.h"
#include "cli/subject_sources.h"
#include "common/cpf.h"
#include "subject/subject.h"

namespace pdv::cli {
namespace {

// `--cpf -`: the CPF from one line of `in` (surrounding whitespace ignored), in any
// spelling --cpf accepts; its 11 digits. Empty input, more than one line or a bad CPF is
// an error that does not repeat the input.
Result<std::string> CpfFromStdin(std::istream& in) {
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) {
    return Status::Error("standard input is empty: give the CPF on one line");
  }
  size_t last = text.find_last_not_of(" \t\r\n");
  std::string line = text.substr(first, last - first + 1);
  if (line.find('\n') != std::string::npos) {
    return Status::Error("standard input has more than one line: give one CPF");
  }
  auto cpf = Cpf::Parse(line);
  if (!cpf.ok()) return Status::Error("standard input: " + cpf.message());
  return cpf->digits();
}

class SubjectCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd = app.add_subcommand(
        "subject", "A member's LGPD rights: their data from every layer, its erasure, its proof");
    cmd->require_subcommand(1);
    export_ = cmd->add_subcommand("export",
                                  "Prints, as one JSON document, everything every "
                                  "layer holds about one person");
    forget_ = cmd->add_subcommand(
        "forget",
        "Erases one person from every layer, registers the erasure (by HMAC) so "
        "nothing comes back, and prints its receipt");
    verify_ = cmd->add_subcommand(
        "verify",
        "Scans every layer for an erasure's subject; prints the proof of absence, "
        "exits 1 if anything remains");
    reapply_ = cmd->add_subcommand(
        "reapply",
        "After a restore of the warehouse (or the OLTP) from a backup: erases again, from every "
        "layer, everyone the erasure register's file (erasure_register) names; idempotent");
    reapply_->add_flag("--rewrite", reapply_options_.rewrite,
                       "VACUUM FULL the tables that held anyone found (as forget --rewrite)");
    reapply_->add_option("--data-dir", reapply_options_.data_dir,
                         "A `pdv up` data directory: the files too, as forget --data-dir");
    for (CLI::App* sub : {export_, forget_}) {
      sub->add_option("--cpf", who_.cpf,
                      "The person's CPF (hashed with cpf_key, never kept). Pass `--cpf -` and "
                      "the CPF on standard input (one line): that is the way to pass one, a "
                      "CPF on the command line shows in `ps` and the shell's history");
      sub->add_option("--cliente-id", who_.cliente_id, "The person's cliente_id");
    }
    forget_->add_flag("--at-source", forget_options_.at_source,
                      "Also delete the row in the OLTP table (the CDC delete then flows)");
    forget_->add_flag("--rewrite", forget_options_.rewrite,
                      "VACUUM FULL the warehouse tables that held the person, so no byte is left "
                      "in their files (writers wait for the rewrite)");
    verify_->add_option("request_id", request_id_, "The erasure's request id (its receipt's)")
        ->required();
    forget_->add_option("--data-dir", forget_options_.data_dir,
                        "A `pdv up` data directory (its pdv.yaml is the configuration): erase the "
                        "person from its files too (table files rewritten, WAL before the "
                        "erasure removed, Redis's AOF rewritten, cpfs.txt), then read every file "
                        "back for the person's values");
    verify_->add_option("--data-dir", verify_options_.data_dir,
                        "Also scan every file under this directory, byte by byte (a `pdv up` data "
                        "directory: its pdv.yaml is the configuration)");
    verify_->add_option("--cpf", verify_options_.cpf,
                        "With --data-dir: the CPF to search the files for (digits, formatted, "
                        "its hash); `-` reads it from standard input");
    for (const char* key : {"oltp_url", "warehouse_url", "redis_url"}) {
      std::string flag = std::string("--") + key;
      for (char& c : flag) c = c == '_' ? '-' : c;
      flags_.Add(cmd, flag, key);
    }
    return cmd;
  }

  int Run(const Config& config, std::stop_token stop) override {
    subject::Sources sources = SubjectSources(config);
    if (reapply_->parsed()) {
      Logger log = MakeLogger(config, "subject");
      auto report = subject::Reapply(sources, reapply_options_, log, stop);
      if (!report.ok()) return Finish("pdv subject reapply", report.status());
      fmt::print("{}\n", report->dump(2));
      return kExitOk;
    }
    if (!verify_->parsed() && who_.cpf.empty() == who_.cliente_id.empty()) {
      fmt::print(stderr, "pdv subject: give exactly one of --cpf and --cliente-id\n");
      return kExitUsage;
    }
    // One subcommand runs: its --cpf is the one that may be `-`.
    std::string& cpf_given = verify_->parsed() ? verify_options_.cpf : who_.cpf;
    if (cpf_given == "-") {
      auto cpf = CpfFromStdin(std::cin);
      if (!cpf.ok()) {
        fmt::print(stderr, "pdv subject: --cpf -: {}\n", cpf.message());
        return kExitUsage;
      }
      cpf_given = std::move(*cpf);
    }
    if (export_->parsed()) {
      auto doc = subject::Export(sources, who_);
      if (!doc.ok()) return Finish("pdv subject export", doc.status());
      fmt::print("{}\n", doc->dump(2));
      return kExitOk;
    }
    if (forget_->parsed()) {
      Logger log = MakeLogger(config, "subject");
      auto receipt = subject::Forget(sources, who_, forget_options_, log, stop);
      if (!receipt.ok()) return Finish("pdv subject forget", receipt.status());
      fmt::print("{}\n", receipt->dump(2));
      return kExitOk;
    }
    auto proof = subject::Verify(sources, request_id_, verify_options_);
    if (!proof.ok()) return Finish("pdv subject verify", proof.status());
    fmt::print("{}\n", proof->dump(2));
    return (*proof)["clean"].get<bool>() ? kExitOk : kExitFailure;
  }

 private:
  CLI::App *export_ = nullptr, *forget_ = nullptr, *verify_ = nullptr, *reapply_ = nullptr;
  subject::Selector who_;
  subject::ForgetOptions forget_options_;
  subject::VerifyOptions verify_options_;
  subject::ReapplyOptions reapply_options_;
  std::string request_id_;
};

}  // namespace

std::unique_ptr<Command> MakeSubjectCommand() { return std::make_unique<SubjectCommand>(); }

}  // namespace pdv::cli
