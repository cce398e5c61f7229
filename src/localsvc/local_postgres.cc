#include "localsvc/local_postgres.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "localsvc/launch_support.h"
#include "pg/connection.h"
#include "pg/scram_verifier.h"

namespace pdv::localsvc {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// The newest /usr/lib/postgresql/<major>/bin, or $PDV_PG_BINDIR.
Result<fs::path> PostgresBinDir() {
  if (const char* env = std::getenv("PDV_PG_BINDIR"); env && *env) {
    if (!fs::exists(fs::path(env) / "postgres")) {
      return Status::Error(
          fmt::format("no PostgreSQL server binary at {}/postgres (PDV_PG_BINDIR)", env));
    }
    return fs::path(env);
  }
  fs::path best;
  int best_major = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    int major = std::atoi(e.path().filename().c_str());
    if (major > best_major && fs::exists(e.path() / "bin" / "postgres")) {
      best_major = major;
      best = e.path() / "bin";
    }
  }
  if (best.empty()) {
    return Status::Error(
        "PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install "
        "postgresql, or set PDV_PG_BINDIR)");
  }
  return best;
}

// The shared template is used only if it is ours: a real directory (not a link), owned
// by the account that built it, writable by nobody else. In a world-writable /tmp another
// user could otherwise plant one (its postgresql.conf runs in our server). Ok if absent.
Status CheckTemplateOwnership(const fs::path& dir, uid_t owner) {
  for (const fs::path& p : {dir, dir / "data", dir / "data" / "postgresql.conf"}) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) return Status::Ok();
      return Status::Error(fmt::format("cannot check {}: {}", p.string(), std::strerror(errno)));
    }
    bool is_dir_or_file = S_ISDIR(st.st_mode) || (S_ISREG(st.st_mode) && p.filename() != "data");
    if (!is_dir_or_file || st.st_uid != owner || (st.st_mode & (S_IWGRP | S_IWOTH))) {
      return Status::Error(fmt::format(
          "refusing the PostgreSQL template {}: {} is {}owned by uid {} with mode {:o}, not "
          "ours (uid {}) and private; remove it, or set TMPDIR elsewhere",
          dir.string(), p.string(), S_ISLNK(st.st_mode) ? "a link, " : "", st.st_uid,
          st.st_mode & 07777, owner));
    }
  }
  return Status::Ok();
}

// initdb of <dir>/data (its log in <dir>/initdb.log).
Status Initdb(const fs::path& bindir, const fs::path& dir, const std::optional<RunAs>& run_as) {
  SpawnOptions initdb{
      .argv = {(bindir / "initdb").string(), "-D", (dir / "data").string(), "-U", "postgres", "-A",
               "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"},
      .log_file = (dir / "initdb.log").string()};
  if (run_as) {
    initdb.uid = run_as->uid;
    initdb.gid = run_as->gid;
  }
  if (Status s = RunCommand(initdb, 120s); !s.ok())
    return Status::Error("initdb failed: " + s.message());
  return Status::Ok();
}

// An initdb'd cluster shared by every instance of this user: copying it is much
// faster than running initdb each time. Built once under a lock, then renamed into place.
Result<fs::path> TemplateCluster(const fs::path& bindir, const std::optional<RunAs>& run_as) {
  fs::path tmp = fs::temp_directory_path();
  std::string name =
      fmt::format("pdv-pgtemplate-{}-{}", ::geteuid(), bindir.parent_path().filename().string());
  fs::path ready = tmp / name;
  uid_t owner = run_as ? run_as->uid : ::geteuid();
  if (Status s = CheckTemplateOwnership(ready, owner); !s.ok()) return s;
  if (fs::exists(ready / "data" / "PG_VERSION")) return ready / "data";

  std::string lock_path = (tmp / (name + ".lock")).string();
  int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock < 0 || ::flock(lock, LOCK_EX) != 0) {
    if (lock >= 0) ::close(lock);
    return Status::Error(fmt::format("cannot lock {}", lock_path));
  }
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lock};
  if (Status s = CheckTemplateOwnership(ready, owner); !s.ok()) return s;
  if (fs::exists(ready / "data" / "PG_VERSION")) return ready / "data";

  fs::path building = tmp / (name + ".building." + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(building, ec);
  fs::create_directories(building);
  fs::permissions(building, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  if (Status s = GiveTo(building, run_as); !s.ok()) return s;
  if (Status s = Initdb(bindir, building, run_as); !s.ok()) {
    fs::remove_all(building, ec);
    return s;
  }
  fs::remove_all(ready, ec);
  fs::rename(building, ready, ec);
  if (ec)
    return Status::Error(
        fmt::format("cannot move {} into place: {}", ready.string(), ec.message()));
  return ready / "data";
}

// Every connection authenticates with a password: the local socket too, so that no other
// local account (nor ours without the password) gets in.
constexpr char kScramOnlyHba[] =
    "# Written by pdv: password (SCRAM-SHA-256) authentication only.\n"
    "local all all scram-sha-256\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
    "host all all ::1/128 scram-sha-256\n"
    "host replication all 127.0.0.1/32 scram-sha-256\n"
    "host replication all ::1/128 scram-sha-256\n";
// Added for a server with a `host` address: the hosts of its own networks.
constexpr char kScramSameNetHba[] =
    "host all all samenet scram-sha-256\n"
    "host replication all samenet scram-sha-256\n";

}  // namespace

Result<std::unique_ptr<LocalPostgres>> LocalPostgres::Start(LocalPostgresOptions options) {
  auto bindir = PostgresBinDir();
  if (!bindir.ok()) return bindir.status();
  auto account = ServerAccount();
  if (!account.ok()) return account.status();

  std::unique_ptr<LocalPostgres> pg(new LocalPostgres());
  pg->options_ = options;
  pg->run_as_ = *account;
  auto password = PasswordOrRandom(options.password);
  if (!password.ok()) return password.status();
  pg->password_ = *password;
  if (options.dir) {
    if (Status s = CheckReachable(fs::absolute(*options.dir), pg->run_as_, "postgres"); !s.ok())
      return s;
  }
  auto dir = OpenServerDir(options.dir, "pdv-pg", &pg->scratch_);
  if (!dir.ok()) return dir.status();
  pg->dir_ = *dir;

  if (!fs::exists(pg->dir_ / "data" / "PG_VERSION") && options.standby_of) {
    if (!options.password) return Status::Error("a standby needs its primary's password");
    if (Status s = GiveTo(pg->dir_, pg->run_as_); !s.ok()) return s;
    // The password in an owner-only passfile (the standby's primary_conninfo names it),
    // never on a command line.
    fs::path passfile = pg->dir_ / "pgpass";
    if (Status s = WritePrivateFile(
            passfile,
            fmt::format("127.0.0.1:{}:*:postgres:{}\n", *options.standby_of, *options.password),
            pg->run_as_);
        !s.ok()) {
      return s;
    }
    SpawnOptions backup{.argv = {(*bindir / "pg_basebackup").string(), "-d",
                                 fmt::format("host=127.0.0.1 port={} user=postgres passfile={}",
                                             *options.standby_of, passfile.string()),
                                 "-D", (pg->dir_ / "data").string(), "-R", "-X", "stream",
                                 "--no-sync", "--checkpoint=fast"},
                        .log_file = (pg->dir_ / "basebackup.log").string()};
    if (pg->run_as_) {
      backup.uid = pg->run_as_->uid;
      backup.gid = pg->run_as_->gid;
    }
    if (Status s = RunCommand(backup, 300s); !s.ok()) return s;
  } else if (options.own_initdb && !fs::exists(pg->dir_ / "data" / "PG_VERSION")) {
    if (Status s = GiveTo(pg->dir_, pg->run_as_); !s.ok()) return s;
    if (Status s = Initdb(*bindir, pg->dir_, pg->run_as_); !s.ok()) return s;
  } else if (!fs::exists(pg->dir_ / "data" / "PG_VERSION")) {
    auto templ = TemplateCluster(*bindir, pg->run_as_);
    if (!templ.ok()) return templ.status();
    // cp -a keeps the owner and the 0700 mode PostgreSQL insists on.
    Status copied = RunCommand({.argv = {"cp", "-a", templ->string(), (pg->dir_ / "data").string()},
                                .log_file = (pg->dir_ / "cp.log").string()},
                               60s);
    if (!copied.ok()) return copied;
  }
  if (Status s = GiveTo(pg->dir_, pg->run_as_); !s.ok()) return s;
  if (Status s = pg->RequirePasswords(); !s.ok()) return s;

  auto port = LaunchOnPort(options.port, [&](int p) {
    pg->port_ = p;
    return pg->Launch();
  });
  if (!port.ok()) return port.status();
  return pg;
}

// Sets the superuser's password in single-user mode (no listener exists meanwhile), then
// makes pg_hba.conf password-only. Done once per cluster: a cluster whose pg_hba.conf is
// already ours keeps the password it has.
Status LocalPostgres::RequirePasswords() {
  fs::path hba = dir_ / "data" / "pg_hba.conf";
  std::ifstream in(hba);
  std::stringstream current;
  current << in.rdbuf();
  const std::string wanted =
      std::string(kScramOnlyHba) + (options_.host.empty() ? "" : kScramSameNetHba);
  if (current.str() == wanted) return Status::Ok();
  auto bindir = PostgresBinDir();
  if (!bindir.ok()) return bindir.status();
  // The session's input file holds a SCRAM verifier, never the password itself.
  auto verifier = pg::ScramSha256Verifier(password_);
  if (!verifier.ok()) return verifier.status();
  fs::path sql = dir_ / "set-password.sql";
  if (Status s = WritePrivateFile(
          sql, fmt::format("ALTER ROLE postgres PASSWORD '{}';\n", *verifier), run_as_);
      !s.ok()) {
    return s;
  }
  SpawnOptions single{
      .argv = {(*bindir / "postgres").string(), "--single", "-D", (dir_ / "data").string(), "-c",
               "password_encryption=scram-sha-256", "-c", "log_statement=none", "postgres"},
      .log_file = (dir_ / "single-user.log").string(),
      .stdin_file = sql.string()};
  if (run_as_) {
    single.uid = run_as_->uid;
    single.gid = run_as_->gid;
  }
  Status set = RunCommand(single, 120s);
  std::error_code ec;
  fs::remove(sql, ec);
  if (!set.ok()) return Status::Error("cannot set the PostgreSQL password: " + set.message());
  return WritePrivateFile(hba, wanted, run_as_);
}

Status LocalPostgres::Launch() {
  auto bindir = PostgresBinDir();
  if (!bindir.ok()) return bindir.status();
  fs::path log = dir_ / "server.log";
  std::vector<std::string> argv = {
      (*bindir / "postgres").string(), "-D", (dir_ / "data").string(), "-c",
      "listen_addresses=127.0.0.1" + (options_.host.empty() ? "" : "," + options_.host), "-c",
      fmt::format("port={}", port_), "-c", "unix_socket_directories=" + dir_.string(),
      // Owner-only, as every file of ours: the socket and any log file the server writes.
      "-c", "unix_socket_permissions=0700", "-c", "log_file_mode=0600", "-c", "wal_level=logical",
      "-c", "max_replication_slots=10", "-c", "max_wal_senders=10", "-c", "max_connections=200",
      "-c", "password_encryption=scram-sha-256"};
  if (!options_.durable) {
    for (const char* s : {"fsync=off", "full_page_writes=off"}) {
      argv.push_back("-c");
      argv.push_back(s);
    }
  }
  for (const auto& s : options_.settings) {
    argv.push_back("-c");
    argv.push_back(s);
  }
  SpawnOptions spawn{.argv = argv, .log_file = log.string(), .parent_death_signal = SIGQUIT};
  if (run_as_) {
    spawn.uid = run_as_->uid;
    spawn.gid = run_as_->gid;
  }
  auto child = ChildProcess::Spawn(spawn);
  if (!child.ok()) return child.status();
  server_.emplace(std::move(*child));

  std::string url = Url();
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (PQping(url.c_str()) == PQPING_OK) return Status::Ok();
    if (!server_->Running()) {
      return Status::Error(
          fmt::format("postgres on port {} exited during start-up: {}", port_, FileTail(log, 500)));
    }
    std::this_thread::sleep_for(10ms);
  }
  server_->Kill();
  return Status::Error(fmt::format("postgres on port {} did not accept connections within 60 s: {}",
                                   port_, FileTail(log, 500)));
}

std::string LocalPostgres::Url(const std::string& database) const {
  return UrlAs("postgres", password_, database);
}

std::string LocalPostgres::UrlAs(const std::string& user, const std::string& password,
                                 const std::string& database) const {
  return fmt::format("postgresql://{}:{}@{}:{}/{}", user, password, Address(), port_, database);
}

Status LocalPostgres::CreateDatabase(const std::string& name) {
  auto conn = pg::Connection::Connect(Url());
  Status created =
      conn.ok() ? conn->Exec("CREATE DATABASE " + conn->Identifier(name)).status() : conn.status();
  if (!created.ok()) {
    return Status::Error(fmt::format("create database {}: {}", name, created.message()));
  }
  return Status::Ok();
}

Status LocalPostgres::EnsureDatabase(const std::string& name) {
  auto conn = pg::Connection::Connect(Url());
  if (conn.ok()) {
    auto found = conn->ExecParams("SELECT 1 FROM pg_database WHERE datname = $1", {name});
    if (found.ok() && found->rows() == 1) return Status::Ok();
  }
  return CreateDatabase(name);
}

Status LocalPostgres::Stop() {
  // SIGINT: fast shutdown.
  return StopServer(server_, SIGINT, 60s,
                    fmt::format("postgres on port {} did not stop within 60 s", port_));
}

Status LocalPostgres::Restart() {
  if (Status s = Stop(); !s.ok()) return s;
  return Launch();
}

LocalPostgres::~LocalPostgres() { (void)Stop(); }

}  // namespace pdv::localsvc
