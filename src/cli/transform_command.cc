// pdv transform: the dbt-style runner (seed, run, test, build, compile, ls) and watch.

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "cdc/cdc.h"
#include "cli/command.h"
#include "common/erasure.h"
#include "transform/packages.h"
#include "transform/transform.h"

namespace pdv::cli {
namespace {

namespace fs = std::filesystem;

// The platform's own project: the configured folder, else the one installed beside the
// binary (share/pdv/transform), else the source tree's.
std::string PlatformProjectDir(const Config& config) {
  std::string configured = config.Get("transform.project_dir").value_or("");
  if (!configured.empty()) return configured;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path installed = exe.parent_path().parent_path() / "share" / "pdv" / "transform";
    if (fs::exists(installed / "dbt_project.yml")) return installed.string();
  }
  return std::string(PDV_SOURCE_DIR) + "/transform";
}

class TransformCommand : public Command {
 public:
  CLI::App* Register(CLI::App& app) override {
    CLI::App* cmd = app.add_subcommand(
        "transform",
        "Runs a dbt-style project (default: the platform's transform/ against the warehouse)");
    cmd->require_subcommand(1);
    struct Sub {
      const char* name;
      const char* help;
    };
    for (Sub s :
         {Sub{"seed", "Loads the seeds/ CSV files"}, Sub{"run", "Builds the selected models"},
          Sub{"test", "Runs the data tests"}, Sub{"build", "Seeds, models and tests in DAG order"},
          Sub{"compile", "Writes (and with --select prints) the compiled SQL"},
          Sub{"ls", "Lists the selected nodes"},
          Sub{"snapshot", "Records the snapshots' history (snapshots/, type-2 by unique_key)"},
          Sub{"watch",
              "Runs the models on every CDC commit (NOTIFY pdv_raw), then "
              "notifies the cache stage"}}) {
      AddOptions(cmd->add_subcommand(s.name, s.help));
    }
    CLI::App* source = cmd->add_subcommand("source", "Source commands");
    source->require_subcommand(1);
    AddOptions(
        source->add_subcommand("freshness",
                               "Checks each source's newest loaded_at_field against its freshness; "
                               "writes target/sources.json"));
    CLI::App* docs = cmd->add_subcommand("docs", "Documentation artifacts");
    docs->require_subcommand(1);
    AddOptions(
        docs->add_subcommand("generate",
                             "Writes target/manifest.json and target/catalog.json (the warehouse's "
                             "catalog of the project's relations)"));
    deps_ = cmd->add_subcommand("deps",
                                "Installs packages.yml / dependencies.yml packages into "
                                "dbt_packages/ (local:, git:, and hub packages from "
                                "--packages-dir)");
    deps_->add_option("--project-dir", deps_options_.project_dir,
                      "dbt project folder (default: the current folder)");
    deps_->add_option("--packages-dir", deps_options_.packages_dir,
                      "folder of hub packages (<name>/ or <owner>/<name>/, a package or a git "
                      "repository with version tags); default $PDV_DBT_PACKAGES_DIR");
    return cmd;
  }

  int Run(const Config& config, std::stop_token stop) override {
    if (deps_->parsed()) {
      auto installed = transform::InstallPackages(deps_options_);
      if (!installed.ok()) return Finish("pdv transform deps", installed.status());
      return kExitOk;
    }
    for (CLI::App* sub : subs_) {
      if (sub->parsed()) options_.command = sub->get_name();
    }
    if (options_.command == "generate") options_.command = "docs";  // docs generate
    bool explicit_project = !options_.project_dir.empty();
    if (!explicit_project && !platform_ && fs::exists("dbt_project.yml")) {
      options_.project_dir = ".";
    } else if (!explicit_project) {
      options_.project_dir = PlatformProjectDir(config);
      options_.warehouse_url = *config.Get("warehouse_url");
    }
    // Models' writes and `pdv subject forget` never race (common/erasure.h).
    options_.begin_sql = kSubjectWriteLockSql;
    if (options_.command == "watch") {
      Logger log = MakeLogger(config, "transform");
      options_.command = "run";
      log.Info("transform_watch_start",
               {{"project", options_.project_dir}, {"channel", cdc::kRawChannel}});
      return Finish("pdv transform watch", transform::Watch(options_, cdc::kRawChannel, log, stop));
    }
    auto r = transform::RunCommand(options_);
    if (!r.ok()) return Finish("pdv transform " + options_.command, r.status());
    return r->ok() ? kExitOk : kExitFailure;
  }

 private:
  // The options every project command takes.
  void AddOptions(CLI::App* sub) {
    subs_.push_back(sub);
    sub->add_option("--project-dir", options_.project_dir,
                    "dbt project folder (default: the current folder if it has a "
                    "dbt_project.yml, else the platform's project)");
    sub->add_option("--profiles-dir", options_.profiles_dir,
                    "folder of profiles.yml (default: the project folder, then ~/.dbt)");
    sub->add_option("--target,-t", options_.target, "profiles.yml target");
    sub->add_option("--target-path", options_.target_path,
                    "folder of the artifacts and compiled SQL (default: the project's "
                    "target-path)");
    sub->add_option("--select,-s,--models,-m", options_.select, "node selection (dbt syntax)")
        ->expected(1, -1);
    sub->add_option("--exclude", options_.exclude,
                    "nodes to leave out, with their tests (dbt syntax)")
        ->expected(1, -1);
    sub->add_option("--selector", options_.selector,
                    "a selection defined in the project's selectors.yml (instead of "
                    "--select/--exclude)");
    sub->add_option("--state", options_.state,
                    "folder of an earlier run's manifest.json, run_results.json and "
                    "sources.json, for the state:, result: and source_status: methods");
    sub->add_option("--indirect-selection", options_.indirect_selection,
                    "which tests of the selected nodes run too: eager (any parent "
                    "selected, the default), cautious (all), buildable, empty");
    sub->add_option("--vars", options_.vars, "YAML mapping of project variables");
    sub->add_option("--env-var", options_.env_vars,
                    "an environment variable models may read with env_var() (besides "
                    "DBT_ENV_*); repeatable; never a secret");
    sub->add_flag("--platform", platform_,
                  "the platform's project against warehouse_url, even in a folder with a "
                  "dbt_project.yml");
    sub->add_option("--threads", options_.threads,
                    "nodes run at once, each on its own connection (default: the target's "
                    "threads)");
    sub->add_flag("--full-refresh", options_.full_refresh,
                  "rebuild incremental models from scratch");
    sub->add_option("--event-time-start", options_.event_time_start,
                    "microbatch models: build the batches from this time (UTC)");
    sub->add_option("--event-time-end", options_.event_time_end,
                    "microbatch models: build the batches up to this time (UTC)");
    flags_.Add(sub, "--warehouse-url", "warehouse_url");
  }

  transform::TransformOptions options_;
  std::vector<CLI::App*> subs_;
  CLI::App* deps_ = nullptr;
  transform::DepsOptions deps_options_;
  bool platform_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeTransformCommand() { return std::make_unique<TransformCommand>(); }

}  // namespace pdv::cli
