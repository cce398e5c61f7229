#include "cli/supervisor.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <string_view>

#include "common/child_environment.h"

namespace pdv::cli {

using Clock = std::chrono::steady_clock;

// A stage's configuration and credentials are in its own file: a caller's
// DBT_ENV_SECRET_*, cloud keys or PDV_* settings never reach a stage, nor a dbt package
// it runs (common/child_environment.h says what does).
std::vector<std::string> StageEnvironment(char** environment) {
  return FilterEnvironment(environment, StageMayInherit);
}

Status Supervisor::Launch(Stage& stage, bool restart) {
  const auto& argv =
      restart && stage.spec.restart_argv ? *stage.spec.restart_argv : stage.spec.argv;
  auto child = localsvc::ChildProcess::Spawn({.argv = argv,
                                              .log_file = LogFile(stage.spec.name).string(),
                                              .env = StageEnvironment(environ),
                                              .parent_death_signal = SIGTERM});
  if (!child.ok()) {
    return Status::Error(
        fmt::format("cannot start stage {}: {}", stage.spec.name, child.message()));
  }
  stage.child.emplace(std::move(*child));
  stage.started = Clock::now();
  stage.restart_at.reset();
  log_.Info("stage_started", {{"stage", stage.spec.name},
                              {"pid", static_cast<int64_t>(stage.child->pid())},
                              {"log", LogFile(stage.spec.name).string()}});
  return Status::Ok();
}

Status Supervisor::Start(StageSpec spec) {
  stages_.push_back(Stage{.spec = std::move(spec)});
  return Launch(stages_.back(), false);
}

void Supervisor::Tick() {
  auto now = Clock::now();
  for (auto& stage : stages_) {
    if (stage.child && stage.child->Running()) {
      if (now - stage.started > std::chrono::seconds(30)) stage.backoff.Reset();
      continue;
    }
    if (stage.child) {
      int code = stage.child->Wait(std::chrono::milliseconds(0)).value_or(-1);
      stage.child.reset();
      stage.restart_at = now + stage.backoff.delay();
      log_.Error(
          "stage_crashed",
          {{"stage", stage.spec.name},
           {"exit", code > 128 ? fmt::format("signal {}", code - 128) : std::to_string(code)},
           {"restart_in_ms", static_cast<int64_t>(stage.backoff.delay().count())},
           {"log", LogFile(stage.spec.name).string()}});
      stage.backoff.Grow();
    }
    if (stage.restart_at && now >= *stage.restart_at) {
      ++stage.restarts;
      if (Status s = Launch(stage, true); !s.ok()) {
        log_.Error("stage_restart_failed", {{"stage", stage.spec.name}, {"error", s.message()}});
        stage.restart_at = now + stage.backoff.delay();
        stage.backoff.Grow();
      }
    }
  }
}

void Supervisor::StopAll(const std::vector<std::string>& order) {
  std::vector<Stage*> sequence;
  for (const auto& name : order) {
    for (auto& s : stages_) {
      if (s.spec.name == name) sequence.push_back(&s);
    }
  }
  for (auto& s : stages_) {
    if (std::find(sequence.begin(), sequence.end(), &s) == sequence.end()) sequence.push_back(&s);
  }
  for (Stage* s : sequence) {
    s->restart_at.reset();
    if (!s->child) continue;
    if (s->child->Running()) {
      s->child->Signal(SIGTERM);
      if (!s->child->Wait(std::chrono::seconds(10))) {
        log_.Warn("stage_kill",
                  {{"stage", s->spec.name}, {"reason", "no exit 10 s after SIGTERM"}});
        s->child->Kill();
      }
    }
    s->child.reset();
  }
}

pid_t Supervisor::Pid(const std::string& name) const {
  for (const auto& s : stages_) {
    if (s.spec.name == name && s.child) return s.child->pid();
  }
  return -1;
}

int Supervisor::Restarts(const std::string& name) const {
  for (const auto& s : stages_) {
    if (s.spec.name == name) return s.restarts;
  }
  return 0;
}

}  // namespace pdv::cli
