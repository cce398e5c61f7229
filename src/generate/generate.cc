#include "generate/generate.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>

#include "common/cpf.h"
#include "generate/bulk_loader.h"
#include "generate/oltp_schema.h"
#include "generate/reference_data.h"
#include "generate/workload.h"
#include "pg/reconnect.h"

namespace pdv::generate {
namespace {

// Appends lines to the --cpf-out file, readable by its owner only.
class CpfFile {
 public:
  static pdv::Result<std::unique_ptr<CpfFile>> Open(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Status::Error(fmt::format("--cpf-out {}: {}", path, std::strerror(errno)));
    }
    return std::unique_ptr<CpfFile>(new CpfFile(fd, path));
  }
  ~CpfFile() { ::close(fd_); }
  Status Write(std::string_view text) {
    while (!text.empty()) {
      ssize_t n = ::write(fd_, text.data(), text.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::Error(fmt::format("--cpf-out {}: {}", path_, std::strerror(errno)));
      text.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }

 private:
  CpfFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace

Status Run(const GenerateOptions& options, Logger& log, std::stop_token stop) {
  auto data = ReferenceData::Load();
  if (!data.ok()) return data.status();
  std::unique_ptr<CpfFile> cpf_out;
  if (options.cpf_out) {
    auto file = CpfFile::Open(*options.cpf_out);
    if (!file.ok()) return file.status();
    cpf_out = std::move(*file);
  }

  auto retry = std::chrono::milliseconds(static_cast<int64_t>(options.retry_timeout_s * 1000));
  auto conn = pg::ConnectWithRetry(options.oltp_url, log, retry, stop);
  if (!conn.ok()) return conn.status();
  if (Status s = EnsureOltpSchema(*conn); !s.ok()) return s;
  log.Info("oltp_schema_ready", {{"url", options.oltp_url}});

  uint64_t initial = options.initial;
  if (initial > 0 && options.initial_only_if_empty) {
    // The monitor's marker customer may already be there: it is not a customer.
    auto rows = conn->ExecParams(
        "SELECT EXISTS (SELECT 1 FROM public.clientes_clube WHERE cliente_id <> $1::uuid)",
        {kProbeClienteId});
    if (!rows.ok()) return rows.status();
    if (rows->get(0, 0) == "t") {
      log.Info("initial_load_skipped", {{"reason", "the table already has customers"}});
      initial = 0;
    }
  }
  if (initial > 0) {
    BulkLoadOptions load{.count = initial,
                         .seed = options.seed,
                         .cpf_key = options.cpf_key,
                         .as_of_us = options.as_of_us.value_or(
                             std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count()),
                         .threads = options.threads,
                         .progress = options.progress,
                         .want_cpfs = cpf_out != nullptr};
    while (true) {
      auto loaded = BulkLoad(*conn, *data, load, stop);
      if (loaded.ok()) {
        log.Info("initial_load_done",
                 {{"rows", loaded->rows},
                  {"seconds", loaded->seconds},
                  {"rows_per_s", loaded->seconds > 0 ? loaded->rows / loaded->seconds : 0.0},
                  {"rebuilt_indexes", loaded->rebuilt_indexes}});
        if (cpf_out) {
          if (Status s = cpf_out->Write(loaded->cpfs); !s.ok()) return s;
        }
        break;
      }
      if (!pg::IsConnectionLost(loaded.status()) || stop.stop_requested()) {
        return loaded.status();
      }
      // The transaction rolled back with the connection: load it again.
      log.Warn("initial_load_retry", {{"error", loaded.message()}});
      auto again = pg::ConnectWithRetry(options.oltp_url, log, retry, stop);
      if (!again.ok()) return again.status();
      conn.value() = std::move(*again);
    }
  }

  if (options.rate <= 0 || stop.stop_requested()) return Status::Ok();
  Status write_status;
  WorkloadOptions work{.oltp_url = options.oltp_url,
                       .cpf_key = options.cpf_key,
                       .seed = options.seed,
                       .rate = options.rate,
                       .duration_s = options.duration_s,
                       .delete_share = options.delete_share,
                       .retry_timeout_s = options.retry_timeout_s};
  if (cpf_out) {
    work.on_signup = [&](const std::string& cpf) {
      if (write_status.ok()) write_status = cpf_out->Write(cpf + "\n");
    };
  }
  auto stats = RunWorkload(*data, work, log, stop);
  if (!stats.ok()) return stats.status();
  return write_status;
}

}  // namespace pdv::generate
