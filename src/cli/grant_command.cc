// pdv grant: the stage roles and users of a deployment other than `pdv up` (compose).

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "cli/up_access.h"
#include "monitor/monitor.h"

namespace pdv::cli {
namespace {

class GrantCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd = app.add_subcommand(
        "grant",
        "Least privilege outside `pdv up`: creates each stage's PostgreSQL role (passwords "
        "from --passwords DIR, one file per role) on oltp_url and warehouse_url, which must "
        "be administrators; or prints the Redis ACL file; or the monitor's probe hash");
    cmd->add_option("--passwords", passwords_,
                    "Directory of password files named after the roles and users "
                    "(pdv_generate, pdv_cdc, pdv_transform, pdv_cache, pdv_monitor, pdv-cache, "
                    "pdv-serve, pdv-monitor)");
    cmd->add_option("--redis-acl", redis_admin_file_,
                    "Print the Redis ACL file instead, its default user's password read from "
                    "this file");
    cmd->add_flag("--probe-hash", probe_hash_,
                  "Print the monitor's probe cpf_hash (monitor.probe_cpf_hash) for cpf_key");
    flags_.Add(cmd, "--oltp-url", "oltp_url");
    flags_.Add(cmd, "--warehouse-url", "warehouse_url");
    return cmd;
  }

  int Run(const Config& config, std::stop_token) override {
    if (probe_hash_) {
      auto key = config.Require("cpf_key");
      if (!key.ok()) return Finish("pdv grant", key.status());
      fmt::print("{}\n", monitor::ProbeCpfHash(*key));
      return kExitOk;
    }
    if (passwords_.empty()) {
      return Finish("pdv grant", Status::Error("--passwords DIR is required"));
    }
    auto secrets = ReadStageSecrets(passwords_);
    if (!secrets.ok()) return Finish("pdv grant", secrets.status());
    if (!redis_admin_file_.empty()) {
      std::ifstream in(redis_admin_file_);
      std::string admin;
      std::getline(in, admin);
      if (admin.empty()) {
        return Finish("pdv grant", Status::Error("no password in " + redis_admin_file_));
      }
      fmt::print("{}", RedisAclFile(admin, *secrets));
      return kExitOk;
    }
    if (Status s = GrantOltpAccess(*config.Get("oltp_url"), *secrets); !s.ok()) {
      return Finish("pdv grant", Status::Error("OLTP: " + s.message()));
    }
    if (Status s = GrantWarehouseAccess(*config.Get("warehouse_url"), *secrets); !s.ok()) {
      return Finish("pdv grant", Status::Error("warehouse: " + s.message()));
    }
    fmt::print("pdv grant: stage roles ready on both servers\n");
    return kExitOk;
  }

 private:
  std::string passwords_, redis_admin_file_;
  bool probe_hash_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeGrantCommand() { return std::make_unique<GrantCommand>(); }

}  // namespace pdv::cli
