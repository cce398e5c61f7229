#include "subject/disk_erasure.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "common/unique_fd.h"
#include "pg/reconnect.h"

namespace pdv::subject {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// "field:value" of an INFO section.
std::string InfoField(std::string_view info, std::string_view field) {
  std::string key = std::string(field) + ":";
  size_t at = info.find(key);
  if (at == std::string_view::npos) return "";
  size_t end = info.find_first_of("\r\n", at);
  return std::string(info.substr(at + key.size(), end - at - key.size()));
}

Result<std::string> One(pg::Connection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  if (!r.ok()) return r.status();
  return r->rows() > 0 && !r->is_null(0, 0) ? r->str(0, 0) : std::string();
}

}  // namespace

Result<nlohmann::json> RemoveWalBeforeNow(pg::Connection& warehouse, std::chrono::seconds bound,
                                          std::stop_token stop) {
  auto started = Clock::now();
  auto recycle = One(warehouse, "SHOW wal_recycle");
  if (!recycle.ok()) return recycle.status();
  auto at = One(warehouse, "SELECT pg_walfile_name(pg_current_wal_lsn())");
  if (!at.ok()) return at.status();
  int checkpoints = 0;
  std::string oldest;
  while (true) {
    // A switch ends the segment the erasure is in; the checkpoint after it moves the redo
    // point past it, and removes what lies before (what no slot or wal_keep_size keeps).
    for (const char* sql : {"SELECT pg_switch_wal()", "CHECKPOINT"}) {
      if (auto r = warehouse.Exec(sql); !r.ok()) return r.status();
    }
    ++checkpoints;
    auto min = One(warehouse, "SELECT min(name) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'");
    if (!min.ok()) return min.status();
    oldest = *min;
    if (oldest > *at) break;
    if (Clock::now() - started > bound) {
      return Status::Error(fmt::format(
          "the warehouse still keeps WAL segment {} (the erasure is in {}) after {} s: {}", oldest,
          *at, bound.count(),
          *recycle == "on" ? "wal_recycle is on (segments are renamed and kept: set it off)"
                           : "a replication slot, wal_keep_size or archiving holds it"));
    }
    if (!pg::SleepFor(std::chrono::milliseconds(100), stop)) {
      return Status::Error("stopped while the warehouse's WAL was being removed");
    }
  }
  return nlohmann::json{{"wal_segment_at_erasure", *at},
                        {"oldest_segment_now", oldest},
                        {"checkpoints", checkpoints},
                        {"seconds", std::chrono::duration<double>(Clock::now() - started).count()}};
}

Result<nlohmann::json> RewriteAppendOnlyFile(redis::Client& redis, std::chrono::seconds bound,
                                             std::stop_token stop) {
  auto started = Clock::now();
  auto info = [&]() -> Result<std::string> {
    auto r = redis.Command({"INFO", "persistence"});
    if (!r.ok()) return r.status();
    return std::string(r->str());
  };
  auto before = info();
  if (!before.ok()) return before.status();
  if (InfoField(*before, "aof_enabled") != "1") {
    return nlohmann::json{{"rewritten", false}, {"reason", "the server keeps no append-only file"}};
  }
  std::string rewrites_before = InfoField(*before, "aof_rewrites");
  // A rewrite already under way began before the erasure: this one is scheduled after it.
  auto r = redis.Command({"BGREWRITEAOF"});
  if (!r.ok()) return r.status();
  while (true) {
    auto now = info();
    if (!now.ok()) return now.status();
    bool done = InfoField(*now, "aof_rewrite_in_progress") == "0" &&
                InfoField(*now, "aof_rewrite_scheduled") == "0" &&
                InfoField(*now, "aof_rewrites") != rewrites_before;
    if (done) {
      if (InfoField(*now, "aof_last_bgrewrite_status") != "ok") {
        return Status::Error("redis: the append-only file's rewrite failed (see its log)");
      }
      break;
    }
    if (Clock::now() - started > bound) {
      return Status::Error(fmt::format(
          "redis: the append-only file's rewrite did not end within {} s", bound.count()));
    }
    if (!pg::SleepFor(std::chrono::milliseconds(20), stop)) {
      return Status::Error("stopped while Redis rewrote its append-only file");
    }
  }
  return nlohmann::json{{"rewritten", true},
                        {"seconds", std::chrono::duration<double>(Clock::now() - started).count()}};
}

Result<int> RemoveLinesHolding(const fs::path& file, const std::vector<std::string>& values) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return 0;
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::Error(fmt::format("cannot read {}", file.string()));
  std::string kept, line;
  int removed = 0;
  while (std::getline(in, line)) {
    bool holds = false;
    for (const auto& v : values) holds = holds || (!v.empty() && line.find(v) != std::string::npos);
    if (holds) {
      ++removed;
    } else {
      kept += line + "\n";
    }
  }
  if (removed == 0) return 0;
  fs::path tmp = file;
  tmp += ".erasing";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777));
  if (!fd) return Status::Error(fmt::format("cannot write {}", tmp.string()));
  bool written = ::write(fd.get(), kept.data(), kept.size()) == static_cast<ssize_t>(kept.size()) &&
                 ::fsync(fd.get()) == 0;
  fd.Reset();
  if (!written || ::rename(tmp.c_str(), file.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::Error(fmt::format("cannot rewrite {}", file.string()));
  }
  return removed;
}

}  // namespace pdv::subject
