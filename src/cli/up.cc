#include "cli/up.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "common/config.h"
#include "common/random_secret.h"
#include "generate/generate.h"
#include "localsvc/local_postgres.h"
#include "localsvc/scratch_dir.h"
#include "pg/connection.h"

namespace pdv::cli {
namespace fs = std::filesystem;

namespace {

// The data directory's pdv.yaml: written once, owner-only, since it holds the key.
Status WriteInitialConfig(const fs::path& file) {
  auto key = RandomSecretHex(32);
  if (!key.ok()) return key.status();
  auto port = localsvc::FreeLoopbackPort();
  if (!port.ok()) return port.status();
  std::string text = fmt::format(
      "# Written by `pdv up` on first use. Keep it private: cpf_key keys every cpf_hash.\n"
      "oltp_url: postgresql://postgres@127.0.0.1:{}/source_db\n"
      "cpf_key: {}\n",
      *port, *key);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return Status::Error(fmt::format("cannot create {}: {}", file.string(), std::strerror(errno)));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) return Status::Error(fmt::format("cannot write {}", file.string()));
  return Status::Ok();
}

int PortOf(const std::string& url) {
  auto colon = url.rfind(':');
  return colon == std::string::npos ? 0 : std::atoi(url.c_str() + colon + 1);
}

}  // namespace

Status Up(const UpOptions& options, Logger& log, std::stop_token stop) {
  fs::path dir = fs::absolute(options.data_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return Status::Error(
        fmt::format("cannot create data directory {}: {}", dir.string(), ec.message()));
  if (::access(dir.c_str(), W_OK) != 0) {
    return Status::Error(fmt::format("data directory {} is not writable", dir.string()));
  }
  fs::path config_file = dir / "pdv.yaml";
  bool first = !fs::exists(config_file);
  if (first) {
    if (Status s = WriteInitialConfig(config_file); !s.ok()) return s;
  }
  // The file's values win here: the environment must not point `up` at other servers.
  auto config = Config::Load({.file = config_file.string()});
  if (!config.ok()) return config.status();
  auto cpf_key = config->Require("cpf_key");
  if (!cpf_key.ok()) return cpf_key.status();
  std::string oltp_url = *config->Get("oltp_url");

  auto pg = localsvc::LocalPostgres::Start(
      {.dir = dir / "oltp", .port = PortOf(oltp_url), .durable = true});
  if (!pg.ok()) return pg.status();
  if (Status s = (*pg)->EnsureDatabase("source_db"); !s.ok()) return s;
  log.Info("oltp_started", {{"url", oltp_url}, {"data_dir", dir.string()}, {"first_start", first}});

  uint64_t initial = options.initial;
  if (auto conn = pg::Connection::Connect(oltp_url); conn.ok()) {
    auto rows = conn->Exec("SELECT count(*) FROM public.clientes_clube");
    if (rows.ok() && rows->get(0, 0) != "0") initial = 0;  // second `up`: reuse the data
  }
  fmt::print(stderr,
             "pdv up: OLTP PostgreSQL at {} (data in {}); sign-up workload at {} ops/s. "
             "Ctrl-C stops.\n  psql '{}' -c 'SELECT count(*) FROM clientes_clube'\n",
             oltp_url, dir.string(), options.rate, oltp_url);

  generate::GenerateOptions gen{.oltp_url = oltp_url,
                                .cpf_key = *cpf_key,
                                .initial = initial,
                                .rate = options.rate,
                                .cpf_out = (dir / "cpfs.txt").string(),
                                .progress = stderr};
  Status done = generate::Run(gen, log, stop);
  Status stopped = (*pg)->Stop();
  if (!done.ok()) return done;
  return stopped;
}

}  // namespace pdv::cli
