// `pdv up` / `pdv down` end to end: the whole platform from an empty data directory, a
// lookup answered, status, the status page in headless Chromium, a stage killed and
// restarted with nothing lost (reconcile), a second `up` on the same data, and start-up
// failures that leave nothing running.

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "localsvc/local_postgres.h"
#include "localsvc/scratch_dir.h"
#include "test_support.h"

namespace pdv::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class UpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = localsvc::ScratchDir::Create("pdv-test-up");
    ASSERT_TRUE(dir.ok()) << dir.message();
    scratch_.emplace(std::move(*dir));
    data_ = scratch_->path() / "data";
    auto port = localsvc::FreeLoopbackPort();
    ASSERT_TRUE(port.ok());
    port_ = *port;
  }

  std::unique_ptr<PdvProcess> StartUp(const std::string& log_name, int initial = 300) {
    return std::make_unique<PdvProcess>(
        std::vector<std::string>{"up", "--data-dir", data_.string(), "--initial",
                                 std::to_string(initial), "--rate", "20", "--listen",
                                 fmt::format("127.0.0.1:{}", port_)},
        scratch_->path() / log_name);
  }
  // Waits for `text` in the process's output.
  static bool WaitFor(PdvProcess& p, const std::string& text, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (p.Output().find(text) != std::string::npos) return true;
      if (!p.Running()) return false;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  std::string Key() { return ReadFile(data_ / "api-key").substr(0, 68); }
  std::string Lookup(const std::string& cpf) {
    return HttpRaw(port_, fmt::format("GET /v1/clientes/{} HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\n"
                                      "Connection: close\r\n\r\n",
                                      cpf, Key()));
  }
  int64_t OltpCount() {
    std::string yaml = ReadFile(data_ / "pdv.yaml");
    std::smatch m;
    std::regex re("oltp_url: (\\S+)");
    if (!std::regex_search(yaml, m, re)) return -1;
    auto conn = Connect(m[1]);
    return ScalarInt(conn, "SELECT count(*) FROM clientes_clube");
  }
  static int LastPid(const std::string& output, const std::string& stage) {
    std::regex re("event=stage_started stage=" + stage + " pid=(\\d+)");
    int pid = -1;
    for (auto it = std::sregex_iterator(output.begin(), output.end(), re);
         it != std::sregex_iterator(); ++it) {
      pid = std::stoi((*it)[1]);
    }
    return pid;
  }

  std::optional<localsvc::ScratchDir> scratch_;
  fs::path data_;
  int port_ = 0;
};

TEST_F(UpTest, WholePlatformUpLookupKillRestartReconcileDownAndUpAgain) {
  auto up = StartUp("up1.log");
  ASSERT_TRUE(WaitFor(*up, "pdv up: the platform is running", 180s)) << up->Output();
  std::string out = up->Output();
  // The banner: address, the key (shown this once), a curl that works as printed.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("/v1/clientes/(\\d{11})"))) << out;
  std::string cpf = m[1];
  EXPECT_NE(out.find(Key()), std::string::npos);
  EXPECT_NE(out.find("(shown once;"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat((data_ / "api-key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((data_ / "pdv.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string answer = Lookup(cpf);
  EXPECT_EQ(HttpStatus(answer), 200) << answer;
  EXPECT_NE(HttpBody(answer).find("\"cliente_id\""), std::string::npos);
  std::string curl = RunCommandOutput(
      {"bash", "-c",
       out.substr(out.find("curl -s"), out.find('\n', out.find("curl -s")) - out.find("curl -s"))});
  EXPECT_NE(curl.find("\"elegivel_promocao\""), std::string::npos) << curl;

  // Status: every stage healthy and the probe measured freshness.
  nlohmann::json status;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  bool healthy = false;
  while (!healthy && std::chrono::steady_clock::now() < deadline) {
    auto r = RunPdv({"status", "--data-dir", data_.string(), "--json"});
    status = nlohmann::json::parse(r.output, nullptr, false);
    healthy =
        r.exit_code == 0 && status.is_object() && status["freshness"].value("samples", 0) >= 3;
    for (const auto& s : status.is_object() ? status["stages"] : nlohmann::json::array()) {
      healthy &= s["health"] == "ok";
    }
  }
  ASSERT_TRUE(healthy) << status.dump(2);
  EXPECT_EQ(status["stages"].size(), 5u);
  EXPECT_GT(status["freshness"]["p99_ms"].get<double>(), 0);
  auto text = RunPdv({"status", "--data-dir", data_.string()});
  EXPECT_NE(text.output.find("freshness (OLTP commit → API answer): p50"), std::string::npos)
      << text.output;
  EXPECT_NE(HttpBody(HttpGet(port_, "/metrics")).find("pdv_freshness_p99_seconds"),
            std::string::npos);

  // The status page, rendered by a real browser.
  fs::path shot = fs::path(PDV_ARTIFACTS_DIR) / "status-page.png";
  fs::create_directories(shot.parent_path());
  std::string url = fmt::format("http://127.0.0.1:{}/status", port_);
  // Chromium as the machine notes advise: no background connections on a closed network.
  std::vector<std::string> chromium = {
      "chromium",
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--user-data-dir=" + (scratch_->path() / "chromium").string(),
      "--virtual-time-budget=4000"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = chromium;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };
  // Headless Chromium now and then exits printing no DOM at all (seen once in a clean-clone
  // CI run, the screenshot right after it worked): a run that printed no page is repeated.
  std::string dom;
  for (int attempt = 0; attempt < 3 && dom.find("</html>") == std::string::npos; ++attempt) {
    dom = RunCommandOutput(with({"--dump-dom", url}));
  }
  EXPECT_NE(dom.find("id=\"stage-cdc\""), std::string::npos) << dom.substr(0, 2000);
  EXPECT_NE(dom.find("class=\"stage ok\" id=\"stage-serve\""), std::string::npos);
  EXPECT_TRUE(std::regex_search(dom, std::regex("id=\"p99\"[^>]*>[0-9.,]+ ms<")))
      << dom.substr(0, 4000);
  // The charts of the last 15 minutes, drawn in the page: a line per series.
  for (const char* chart : {"chart-freshness", "chart-rate", "chart-lag"}) {
    EXPECT_TRUE(std::regex_search(
        dom, std::regex(std::string("id=\"") + chart + "\"[^>]*>.*?<polyline class=\"series\"")))
        << chart << ": " << dom.substr(0, 4000);
  }
  // Each stage's instances: one active with its lease token (pdv up runs one of each).
  EXPECT_NE(dom.find("active (lease "), std::string::npos);
  RunCommandOutput(
      with({"--hide-scrollbars", "--window-size=1280,1300", "--screenshot=" + shot.string(), url}));
  EXPECT_GT(fs::exists(shot) ? fs::file_size(shot) : 0, 10'000u) << "no screenshot at " << shot;

  // Stages killed with SIGKILL are restarted, and nothing is lost or doubled.
  for (const std::string stage : {"cdc", "transform", "cache"}) {
    int pid = LastPid(up->Output(), stage);
    ASSERT_GT(pid, 0) << stage;
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    ASSERT_TRUE(WaitFor(*up, "event=stage_crashed stage=" + stage + " exit=\"signal 9\"", 10s))
        << up->Output();
    deadline = std::chrono::steady_clock::now() + 20s;
    while (LastPid(up->Output(), stage) == pid && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(100ms);
    }
    EXPECT_NE(LastPid(up->Output(), stage), pid) << stage << " was not restarted\n" << up->Output();
  }
  // Source columns whose names need quoting (issue 11): CDC, RAW and reconcile take them.
  {
    std::string yaml = ReadFile(data_ / "pdv.yaml");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(yaml, m, std::regex("oltp_url: (\\S+)")));
    auto oltp = Connect(m[1]);
    ASSERT_TRUE(oltp.Exec("ALTER TABLE clientes_clube ADD COLUMN \"a, b\" text, ADD COLUMN "
                          "\"x\"\"y\" text; UPDATE clientes_clube SET \"a, b\" = 'ab', "
                          "\"x\"\"y\" = 'xy' WHERE cliente_id IN (SELECT cliente_id FROM "
                          "clientes_clube LIMIT 5)")
                    .ok());
  }
  auto reconcile = RunPdv({"reconcile", "--data-dir", data_.string(), "--wait", "60"});
  EXPECT_EQ(reconcile.exit_code, 0) << reconcile.output;
  EXPECT_NE(reconcile.output.find("clean: no differences"), std::string::npos) << reconcile.output;

  // Other commands find the platform by its data directory.
  auto keys = RunPdv({"apikey", "list", "--data-dir", data_.string()});
  EXPECT_NE(keys.output.find("pdv-up\t"), std::string::npos) << keys.output;

  auto down = RunPdv({"down", "--data-dir", data_.string()});
  EXPECT_EQ(down.exit_code, 0) << down.output;
  EXPECT_EQ(up->Wait(60s), 0) << up->Output();
  EXPECT_FALSE(PortAccepts(port_));
  EXPECT_FALSE(fs::exists(data_ / "up.pid"));

  // A second `up` reuses the data: same key (not shown again), no second initial load.
  auto again = StartUp("up2.log");
  ASSERT_TRUE(WaitFor(*again, "pdv up: the platform is running", 180s)) << again->Output();
  EXPECT_EQ(again->Output().find("(shown once;"), std::string::npos);
  EXPECT_EQ(HttpStatus(Lookup(cpf)), 200);
  int64_t customers = OltpCount();
  EXPECT_GT(customers, 250);
  EXPECT_LT(customers, 600) << "the initial load ran twice";
  EXPECT_EQ(RunPdv({"down", "--data-dir", data_.string()}).exit_code, 0);
  EXPECT_EQ(again->Wait(60s), 0);
  EXPECT_EQ(RunPdv({"down", "--data-dir", data_.string()}).output,
            fmt::format("pdv down: no pdv up is running for {}\n", data_.string()));
}

// argv as another local account (nobody) when we are root, else as us: either way with
// none of the platform's passwords.
std::vector<std::string> AsOtherUser(std::vector<std::string> argv) {
  if (::geteuid() == 0) argv.insert(argv.begin(), {"runuser", "-u", "nobody", "--"});
  return argv;
}

std::string YamlValue(const std::string& yaml, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(yaml, m, std::regex("(^|\n) *" + key + ": (\\S+)"))) return "";
  return m[2];
}

// Issue 11: no server of ours lets in a local user without its password, and each stage
// holds only its own credentials, with only the privileges it needs.
TEST_F(UpTest, ServersRefuseOtherLocalUsersAndEachStageHoldsOnlyItsOwnAccess) {
  ::unsetenv("PGPASSWORD");
  auto up = StartUp("up.log");
  ASSERT_TRUE(WaitFor(*up, "pdv up: the platform is running", 180s)) << up->Output();
  std::string yaml = ReadFile(data_ / "pdv.yaml");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      yaml, m, std::regex("oltp_url: postgresql://postgres:[0-9a-f]+@127.0.0.1:(\\d+)")));
  std::string oltp_port = m[1];
  ASSERT_TRUE(std::regex_search(
      yaml, m, std::regex("warehouse_url: postgresql://postgres:[0-9a-f]+@127.0.0.1:(\\d+)")));
  std::string warehouse_port = m[1];
  ASSERT_TRUE(std::regex_search(
      yaml, m, std::regex("redis_url: redis://default:[0-9a-f]+@127.0.0.1:(\\d+)")));
  std::string redis_port = m[1];

  // PostgreSQL: no password, a wrong one, or the local socket: all refused.
  for (const auto& [port, db] :
       {std::pair{oltp_port, "source_db"}, {warehouse_port, "warehouse"}}) {
    std::string out = RunCommandOutput(AsOtherUser({"psql", "-w", "-h", "127.0.0.1", "-p", port,
                                                    "-U", "postgres", "-d", db, "-c", "SELECT 1"}));
    EXPECT_NE(out.find("no password supplied"), std::string::npos) << out;
    out = RunCommandOutput(AsOtherUser({"env", "PGPASSWORD=guess", "psql", "-w", "-h", "127.0.0.1",
                                        "-p", port, "-U", "postgres", "-d", db, "-c", "SELECT 1"}));
    EXPECT_NE(out.find("password authentication failed"), std::string::npos) << out;
  }
  std::string socket_try =
      RunCommandOutput(AsOtherUser({"psql", "-w", "-h", (data_ / "oltp").string(), "-p", oltp_port,
                                    "-U", "postgres", "-d", "source_db", "-c", "SELECT 1"}));
  EXPECT_EQ(socket_try.find("(1 row)"), std::string::npos) << socket_try;

  // Redis: nothing without a password; the API's user reads but cannot write.
  std::string noauth = RunCommandOutput(AsOtherUser(
      {"redis-cli", "-h", "127.0.0.1", "-p", redis_port, "HSET", "pdv:apikey:x", "name", "x"}));
  EXPECT_NE(noauth.find("NOAUTH"), std::string::npos) << noauth;
  std::string serve_yaml = ReadFile(data_ / "stages" / "serve.yaml");
  ASSERT_TRUE(std::regex_search(serve_yaml, m, std::regex("redis://pdv-serve:([0-9a-f]+)@")))
      << serve_yaml;
  std::string serve_pw = m[1];
  auto as_serve = [&](std::vector<std::string> cmd) {
    std::vector<std::string> argv = {
        "redis-cli", "--no-auth-warning", "--user", "pdv-serve", "--pass", serve_pw,
        "-h",        "127.0.0.1",         "-p",     redis_port};
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    return RunCommandOutput(argv);
  };
  EXPECT_NE(as_serve({"HSET", "pdv:apikey:x", "name", "x"}).find("NOPERM"), std::string::npos);
  EXPECT_NE(as_serve({"SET", "pdv:meta", "x"}).find("NOPERM"), std::string::npos);
  EXPECT_NE(as_serve({"FLUSHALL"}).find("NOPERM"), std::string::npos);
  // Issue 30 (8): of pdv:limit:*, SET reaches only a suspension, INCRBY only a counter.
  EXPECT_NE(as_serve({"SET", "pdv:limit:rate:x:1", "999"}).find("NOPERM"), std::string::npos);
  EXPECT_NE(as_serve({"SET", "pdv:limit:day:x:20261207", "0"}).find("NOPERM"), std::string::npos);
  EXPECT_NE(as_serve({"INCRBY", "pdv:limit:suspended:x", "1"}).find("NOPERM"), std::string::npos);
  EXPECT_EQ(as_serve({"SET", "pdv:limit:suspended:x", "1", "EX", "5"}), "OK\n");
  EXPECT_EQ(as_serve({"INCRBY", "pdv:limit:rate:x:1", "1"}), "1\n");
  EXPECT_EQ(as_serve({"PEXPIRE", "pdv:limit:rate:x:1", "2000"}), "1\n");
  EXPECT_NE(as_serve({"HGET", "pdv:meta", "version"}).find_first_of("0123456789"),
            std::string::npos);

  // Stage files: owner-only, and cpf_key only where the stage hashes CPFs.
  for (const char* stage : {"generate", "cdc", "transform", "cache", "serve", "monitor"}) {
    std::string text = ReadFile(data_ / "stages" / (std::string(stage) + ".yaml"));
    bool has_key = text.find("cpf_key:") != std::string::npos;
    EXPECT_EQ(has_key, std::string(stage) == "generate" || std::string(stage) == "serve") << stage;
    EXPECT_EQ(text.find("postgres:"), std::string::npos) << stage << " holds a superuser URL";
    EXPECT_EQ(text.find("redis://default:"), std::string::npos) << stage;
    struct stat st {};
    ASSERT_EQ(::stat((data_ / "stages" / (std::string(stage) + ".yaml")).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << stage;
    ASSERT_EQ(::stat((data_ / "logs" / (std::string(stage) + ".log")).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << stage;
  }
  struct stat st {};
  ASSERT_EQ(::stat(data_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  // Least privilege in the warehouse: cache and transform cannot change RAW; cache
  // cannot read it; CDC cannot touch the dimension.
  auto url_of = [&](const char* stage, const char* key) {
    return YamlValue(ReadFile(data_ / "stages" / (std::string(stage) + ".yaml")), key);
  };
  auto refused = [&](const std::string& url, const std::string& sql) {
    auto conn = pg::Connection::Connect(url);
    if (!conn.ok()) return std::string("cannot connect: ") + conn.message();
    auto r = conn->Exec(sql);
    return r.ok() ? std::string("allowed") : r.message();
  };
  std::string cache_wh = url_of("cache", "warehouse_url");
  std::string transform_wh = url_of("transform", "warehouse_url");
  std::string cdc_wh = url_of("cdc", "warehouse_url");
  EXPECT_NE(refused(cache_wh, "SELECT count(*) FROM raw.clientes_clube").find("permission denied"),
            std::string::npos);
  EXPECT_NE(refused(transform_wh, "DELETE FROM raw.clientes_clube").find("permission denied"),
            std::string::npos);
  EXPECT_NE(refused(cdc_wh, "DELETE FROM marts.dim_clientes_clube").find("permission denied"),
            std::string::npos);
  EXPECT_NE(refused(url_of("cdc", "oltp_url"), "DELETE FROM public.clientes_clube")
                .find("permission denied"),
            std::string::npos);
  EXPECT_EQ(refused(cache_wh, "SELECT count(*) FROM marts.dim_clientes_clube"), "allowed");

  EXPECT_EQ(RunPdv({"down", "--data-dir", data_.string()}).exit_code, 0);
  EXPECT_EQ(up->Wait(60s), 0);
}

// A line of /proc/<pid>/status ("Uid", "CapEff", ...), "" when the process is gone.
std::string ProcStatus(pid_t pid, const std::string& field) {
  std::string text = ReadFile(fmt::format("/proc/{}/status", pid));
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("(^|\n)" + field + ":\\s*([^\n]*)"))) return "";
  return m[2];
}

// Every descendant of `root` (servers and stages), by walking /proc's parent links.
std::vector<pid_t> Descendants(pid_t root) {
  std::map<pid_t, pid_t> parent;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string ppid = ProcStatus(std::stoi(name), "PPid");
    if (!ppid.empty()) parent[std::stoi(name)] = std::stoi(ppid);
  }
  std::vector<pid_t> out;
  for (const auto& [pid, pp] : parent) {
    for (pid_t p = pp; p > 1; p = parent.count(p) ? parent[p] : 0) {
      if (p == root) {
        out.push_back(pid);
        break;
      }
    }
  }
  return out;
}

// Issue 30 (1, 2): under a root `pdv up` started with a permissive umask, another local
// user can neither list nor read anything under the data directory (Redis's append-only
// files and what older versions left readable included), and no server or stage runs as
// root or with a capability.
TEST_F(UpTest, NothingUnderTheDataDirectoryIsForAnotherUserAndNothingRunsAsRoot) {
  // What an earlier version left: a world-readable file in a world-listable directory.
  fs::create_directories(data_ / "logs");
  fs::permissions(data_, fs::perms(0755));
  { std::ofstream(data_ / "logs" / "old.log") << "a member's record\n"; }
  fs::permissions(data_ / "logs" / "old.log", fs::perms(0644));
  mode_t umask_before = ::umask(022);  // inherited by pdv up
  // Secrets of the caller's environment that no stage needs (issue 30, 4).
  ::setenv("DBT_ENV_SECRET_TOKEN", "caller-secret-1", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "caller-secret-2", 1);
  auto up = StartUp("up.log");
  ::umask(umask_before);
  ::unsetenv("DBT_ENV_SECRET_TOKEN");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ASSERT_TRUE(WaitFor(*up, "pdv up: the platform is running", 180s)) << up->Output();
  // Redis writes its append-only files once it runs: wait for them to exist.
  fs::path aof_dir = data_ / "redis" / "appendonlydir";
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!fs::exists(aof_dir) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(fs::exists(aof_dir));

  struct stat top {};
  ASSERT_EQ(::stat(data_.c_str(), &top), 0);
  EXPECT_EQ(top.st_mode & 07777, 0700u);
  if (::geteuid() == 0) {
    EXPECT_NE(top.st_uid, 0u) << "the data directory is root's";
  }
  int entries = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(data_, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || S_ISLNK(st.st_mode)) continue;
    ++entries;
    if (S_ISDIR(st.st_mode)) {
      EXPECT_EQ(st.st_mode & 07777, 0700u) << it->path();
    } else {
      EXPECT_EQ(st.st_mode & 077, 0u) << it->path() << " mode " << std::oct << (st.st_mode & 07777);
    }
    EXPECT_EQ(st.st_uid, top.st_uid) << it->path();
  }
  EXPECT_GT(entries, 100);

  if (::geteuid() == 0) {
    // Another local account: nothing to list, nothing to read.
    std::string aof;
    for (const auto& e : fs::directory_iterator(aof_dir)) aof = e.path().string();
    for (const std::vector<std::string>& cmd : {std::vector<std::string>{"ls", data_.string()},
                                                {"ls", aof_dir.string()},
                                                {"cat", aof},
                                                {"cat", (data_ / "logs" / "old.log").string()},
                                                {"cat", (data_ / "pdv.yaml").string()}}) {
      std::string out = RunCommandOutput(AsOtherUser(cmd));
      EXPECT_NE(out.find("Permission denied"), std::string::npos)
          << fmt::format("{}", fmt::join(cmd, " ")) << ": " << out;
    }
    // No process of the platform is root or holds a capability; none can gain one.
    std::vector<pid_t> tree = Descendants(up->pid());
    tree.push_back(up->pid());
    EXPECT_GE(tree.size(), 9u);  // pdv up, three servers, six stages (and server workers)
    for (pid_t pid : tree) {
      std::string uid = ProcStatus(pid, "Uid");
      if (uid.empty()) continue;  // exited meanwhile
      std::string comm = ReadFile(fmt::format("/proc/{}/comm", pid));
      std::istringstream ids(uid);  // real, effective, saved, filesystem
      for (int n = 0, id = 0; n < 4 && ids >> id; ++n) {
        EXPECT_NE(id, 0) << pid << " " << comm << " Uid: " << uid;
      }
      EXPECT_EQ(ProcStatus(pid, "CapEff"), "0000000000000000") << pid << " " << comm;
      EXPECT_EQ(ProcStatus(pid, "CapPrm"), "0000000000000000") << pid << " " << comm;
      EXPECT_EQ(ProcStatus(pid, "NoNewPrivs"), "1") << pid << " " << comm;
    }
  }
  // Each stage's environment: none of the caller's secrets, nor any PDV_ setting.
  std::string out = up->Output();
  for (const char* stage : {"generate", "cdc", "transform", "cache", "serve", "monitor"}) {
    int pid = LastPid(out, stage);
    ASSERT_GT(pid, 0) << stage;
    std::string environ_text = ReadFile(fmt::format("/proc/{}/environ", pid));
    EXPECT_NE(environ_text.find("PATH="), std::string::npos) << stage;
    EXPECT_EQ(environ_text.find("caller-secret"), std::string::npos) << stage;
    EXPECT_EQ(environ_text.find("PDV_"), std::string::npos) << stage;
  }
  EXPECT_EQ(RunPdv({"down", "--data-dir", data_.string()}).exit_code, 0);
  EXPECT_EQ(up->Wait(60s), 0);
}

// Issue 33: on a pdv up with 20,000 members, forget --at-source --data-dir leaves none of
// the person's identifying values in any byte of the data directory: the test reads every
// file itself (apart from forget's own scan), and verify's byte scan agrees. Two people:
// one with --rewrite (every table of the layers rewritten, VACUUM FULL), one without
// (only the relations whose files still hold them after a plain VACUUM): both clean, the
// second rewriting no more bytes than the first; the times and bytes are printed.
TEST_F(UpTest, ForgetLeavesNoByteOfThePersonInTheDataDirectory) {
  auto up = StartUp("up.log", 20000);
  ASSERT_TRUE(WaitFor(*up, "pdv up: the platform is running", 300s)) << up->Output();
  std::vector<std::string> cpfs = Lines(ReadFile(data_ / "cpfs.txt"));
  ASSERT_GE(cpfs.size(), 20000u);
  auto bytes_of_hex = [](const std::string& hex) {
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
  };
  using Values = std::vector<std::pair<std::string, std::string>>;
  auto values_of = [&](const std::string& cpf) {
    auto exported = RunPdvWithInput(
        {"subject", "export", "--data-dir", data_.string(), "--cpf", "-"}, cpf + "\n");
    EXPECT_EQ(exported.exit_code, 0) << exported.output;
    auto doc = nlohmann::json::parse(exported.output);
    const nlohmann::json& row = doc["oltp"][0];
    std::string id = row["cliente_id"], hash = row["cpf_hash"];
    std::string id_hex;
    for (char c : id) {
      if (c != '-') id_hex.push_back(c);
    }
    return Values{{"cpf", cpf},
                  {"cpf formatted", cpf.substr(0, 3) + "." + cpf.substr(3, 3) + "." +
                                        cpf.substr(6, 3) + "-" + cpf.substr(9)},
                  {"cpf_hash", hash},
                  {"cpf_hash bytes", bytes_of_hex(hash).substr(0, 12)},
                  {"cliente_id", id},
                  {"cliente_id bytes", bytes_of_hex(id_hex)},
                  {"email", row["email"]},
                  {"nome_completo", row["nome_completo"]},
                  {"telefone", row["telefone"]}};
  };
  // Every regular file under the data directory, read here.
  auto grep = [&](const Values& values) {
    std::string hits;
    for (const auto& e :
         fs::recursive_directory_iterator(data_, fs::directory_options::skip_permission_denied)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (const auto& [what, v] : values) {
        if (!v.empty() && bytes.find(v) != std::string::npos) {
          hits += what + " in " + fs::relative(e.path(), data_).string() + "\n";
        }
      }
    }
    return hits;
  };
  // The receipt is the JSON document on stdout; the log lines (stderr) come with it.
  auto json_of = [](const std::string& out) {
    size_t at = out.rfind("\n{", out.rfind("\n}"));
    return nlohmann::json::parse(at == std::string::npos ? out : out.substr(at + 1), nullptr,
                                 false);
  };
  struct Forgotten {
    nlohmann::json receipt;
    double seconds = 0;
  };
  auto forget = [&](const std::string& cpf, const Values& values, bool every_table) {
    std::vector<std::string> args = {"subject",     "forget", "--data-dir", data_.string(),
                                     "--at-source", "--cpf",  "-"};
    if (every_table) args.push_back("--rewrite");
    auto started = std::chrono::steady_clock::now();
    auto forgot = RunPdvWithInput(args, cpf + "\n");
    Forgotten out{
        json_of(forgot.output),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()};
    EXPECT_EQ(forgot.exit_code, 0) << forgot.output;
    if (!out.receipt.is_object()) {
      ADD_FAILURE() << forgot.output;
      return out;
    }
    std::cout << "forget " << (every_table ? "--rewrite (every table)" : "(what holds them)")
              << " with the files step took " << out.seconds
              << " s; vacuum: " << out.receipt["layers"]["vacuum"].dump()
              << "; scan: " << out.receipt["files"]["scan"].dump() << "\n";
    EXPECT_TRUE(out.receipt["files"]["scan"]["clean"].get<bool>()) << out.receipt.dump(2);
    EXPECT_EQ(out.receipt["files"]["cpf_list"]["lines_removed"], 1);
    EXPECT_TRUE(out.receipt["files"]["aof"]["rewritten"].get<bool>());
    EXPECT_EQ(out.receipt["layers"]["vacuum"]["full"].get<bool>(), every_table);
    EXPECT_NE(out.receipt["legal_basis"].get<std::string>().find("art. 18, VI"), std::string::npos);
    EXPECT_TRUE(out.receipt.contains("declaration_due_by"));
    for (const auto& [what, v] : values) {
      EXPECT_EQ(forgot.output.find(v), std::string::npos) << what << " in the receipt";
    }
    return out;
  };
  const std::string cpf = cpfs[4321], second = cpfs[12345];
  ASSERT_TRUE(pdv::testing::WaitFor(60s, [&] { return HttpStatus(Lookup(cpf)) == 200; }));
  const Values values = values_of(cpf), second_values = values_of(second);
  ASSERT_NE(grep(values), "") << "the person should be on disk before the erasure";
  ASSERT_NE(grep(second_values), "");

  // What holds them first, on the tables as the running platform left them.
  Forgotten holding = forget(cpf, values, false);
  EXPECT_EQ(grep(values), "");
  Forgotten every = forget(second, second_values, true);
  EXPECT_EQ(grep(second_values), "");
  EXPECT_EQ(grep(values), "");
  EXPECT_LE(holding.receipt["layers"]["vacuum"]["bytes_rewritten"].get<int64_t>(),
            every.receipt["layers"]["vacuum"]["bytes_rewritten"].get<int64_t>());
  std::cout << "forget timings: every table " << every.seconds << " s (vacuum "
            << every.receipt["layers"]["vacuum"]["seconds"] << " s, "
            << every.receipt["layers"]["vacuum"]["bytes_rewritten"]
            << " bytes rewritten); what holds them " << holding.seconds << " s (vacuum "
            << holding.receipt["layers"]["vacuum"]["seconds"] << " s, "
            << holding.receipt["layers"]["vacuum"]["bytes_rewritten"] << " bytes rewritten)\n";
  auto verified = RunPdvWithInput({"subject", "verify", "--data-dir", data_.string(), "--cpf", "-",
                                   holding.receipt["request_id"].get<std::string>()},
                                  cpf + "\n");
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  auto proof = json_of(verified.output);
  ASSERT_TRUE(proof.is_object()) << verified.output;
  EXPECT_TRUE(proof["files"]["clean"].get<bool>()) << verified.output;
  EXPECT_GT(proof["files"]["files"].get<int64_t>(), 100);
  up->Signal(SIGTERM);
  EXPECT_EQ(up->Wait(60s), 0);
}

// Issue 33 item 4 at pdv up's start: the warehouse restored, while the platform was down,
// from a pg_dump taken before a forget --at-source holds the person again, in its tables
// and in the WAL the restore wrote. The next `pdv up` reapplies the register's file before
// any stage runs, files included: none of the person's values is in any byte of the data
// directory afterwards (the test's own read of every file), and the log line says so.
TEST_F(UpTest, StartAfterARestoreErasesAgainFilesIncluded) {
  auto up = StartUp("up1.log");
  ASSERT_TRUE(WaitFor(*up, "pdv up: the platform is running", 300s)) << up->Output();
  const std::string cpf = Lines(ReadFile(data_ / "cpfs.txt"))[42];
  ASSERT_TRUE(pdv::testing::WaitFor(60s, [&] { return HttpStatus(Lookup(cpf)) == 200; }));
  auto exported = RunPdvWithInput({"subject", "export", "--data-dir", data_.string(), "--cpf", "-"},
                                  cpf + "\n");
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  const nlohmann::json row = nlohmann::json::parse(exported.output)["oltp"][0];
  const std::vector<std::string> values = {cpf,          row["cliente_id"],    row["cpf_hash"],
                                           row["email"], row["nome_completo"], row["telefone"]};
  auto holding = [&] {
    std::string hits;
    for (const auto& e : fs::recursive_directory_iterator(data_)) {
      if (!e.is_regular_file()) continue;
      std::string bytes = ReadFile(e.path());
      for (size_t i = 0; i < values.size(); ++i) {
        if (bytes.find(values[i]) != std::string::npos) {
          hits += fmt::format("value {} in {}\n", i, fs::relative(e.path(), data_).string());
        }
      }
    }
    return hits;
  };
  std::smatch m;
  const std::string yaml = ReadFile(data_ / "pdv.yaml");
  ASSERT_TRUE(std::regex_search(
      yaml, m,
      std::regex("warehouse_url: (postgresql://postgres:([^@]+)@127\\.0\\.0\\.1:(\\d+)/\\S+)")));
  const std::string warehouse_url = m[1], password = m[2];
  const int warehouse_port = std::stoi(m[3]);
  const std::string dump = (scratch_->path() / "warehouse.dump").string();
  std::string dumped = RunCommandOutput(
      {"sh", "-c",
       fmt::format("/usr/lib/postgresql/15/bin/pg_dump -Fc -f '{}' '{}' && echo DUMP_OK", dump,
                   warehouse_url)});
  ASSERT_NE(dumped.find("DUMP_OK"), std::string::npos) << dumped;
  auto forgot = RunPdvWithInput(
      {"subject", "forget", "--data-dir", data_.string(), "--at-source", "--cpf", "-"}, cpf + "\n");
  ASSERT_EQ(forgot.exit_code, 0) << forgot.output;
  ASSERT_EQ(holding(), "");
  up->Signal(SIGTERM);
  ASSERT_EQ(up->Wait(60s), 0) << up->Output();

  // The restore, the platform down: its warehouse alone, on its own port (as root, by the
  // 'postgres' account, which must enter the directory; pdv up makes it the platform's
  // and 0700 again at its next start).
  fs::permissions(data_, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  {
    auto warehouse = localsvc::LocalPostgres::Start({.dir = data_ / "warehouse",
                                                     .port = warehouse_port,
                                                     .durable = true,
                                                     .settings = {"wal_recycle=off"},
                                                     .password = password});
    ASSERT_TRUE(warehouse.ok()) << warehouse.message();
    auto admin = Connect((*warehouse)->Url("postgres"));
    ASSERT_TRUE(admin.Exec("DROP DATABASE warehouse WITH (FORCE)").ok());
    ASSERT_TRUE(admin.Exec("CREATE DATABASE warehouse").ok());
    std::string restored = RunCommandOutput(
        {"sh", "-c",
         fmt::format("/usr/lib/postgresql/15/bin/pg_restore -d '{}' '{}' && echo RESTORE_OK",
                     (*warehouse)->Url("warehouse"), dump)});
    ASSERT_NE(restored.find("RESTORE_OK"), std::string::npos) << restored;
    ASSERT_TRUE(admin.Exec("CHECKPOINT").ok());
  }
  const std::string back = holding();
  ASSERT_NE(back.find(" in warehouse/"), std::string::npos) << back;

  up = StartUp("up2.log");
  ASSERT_TRUE(WaitFor(*up, "pdv up: the platform is running", 300s)) << up->Output();
  EXPECT_NE(up->Output().find("event=erasures_reapplied customers=1 data_dir_clean=true"),
            std::string::npos)
      << up->Output();
  EXPECT_EQ(holding(), "");
  EXPECT_EQ(HttpStatus(Lookup(cpf)), 404);
  up->Signal(SIGTERM);
  EXPECT_EQ(up->Wait(60s), 0);
}

// As root, the platform runs as the data directory's owner when an operator chose one: a
// start that account cannot make names that account, not the default 'pdv'.
TEST_F(UpTest, AStartTheChosenAccountCannotMakeNamesThatAccount) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (the account switch)";
  const uid_t nobody = 65534;
  // A binary in a directory only root can enter.
  const fs::path private_dir = scratch_->path() / "root-only";
  fs::create_directories(private_dir);
  fs::permissions(private_dir, fs::perms::owner_all);
  const fs::path copy = private_dir / "pdv";
  fs::copy_file(PdvBinary(), copy);
  fs::create_directories(data_);
  ASSERT_EQ(::chown(data_.c_str(), nobody, nobody), 0);
  std::string out = RunCommandOutput({copy.string(), "up", "--data-dir", data_.string()});
  EXPECT_NE(out.find(fmt::format("{} cannot be run by the 'nobody' account the platform runs as",
                                 copy.string())),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("'pdv'"), std::string::npos) << out;

  // A data directory under a directory that account cannot enter.
  const fs::path hidden = private_dir / "data";
  fs::create_directories(hidden);
  ASSERT_EQ(::chown(hidden.c_str(), nobody, nobody), 0);
  out = RunCommandOutput({PdvBinary(), "up", "--data-dir", hidden.string()});
  EXPECT_NE(out.find(fmt::format("{} is not reachable by the 'nobody' account it runs as",
                                 hidden.string())),
            std::string::npos)
      << out;
  EXPECT_FALSE(fs::exists(hidden / "oltp"));
}

TEST_F(UpTest, StartFailuresAreOneLineAndLeaveNothingRunning) {
  // A port in use.
  auto port = localsvc::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  auto r =
      RunPdv({"up", "--data-dir", data_.string(), "--listen", fmt::format("127.0.0.1:{}", port_)});
  ::close(fd);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output,
            fmt::format("pdv up: port {} (listen in {}/pdv.yaml) is already in use by another "
                        "process\n",
                        port_, data_.string()));
  EXPECT_FALSE(fs::exists(data_ / "oltp"));
  EXPECT_FALSE(fs::exists(data_ / "up.pid"));

  // A data directory that cannot be created.
  r = RunPdv({"up", "--data-dir", "/proc/pdv-test/data"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.output.starts_with("pdv up: cannot create data directory /proc/pdv-test/data: "))
      << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1);

  // A server binary missing: the servers already started are stopped again.
  ::setenv("PDV_REDIS_SERVER", "/nonexistent/redis-server", 1);
  r = RunPdv({"up", "--data-dir", data_.string()});
  ::unsetenv("PDV_REDIS_SERVER");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("pdv up: Redis: redis-server not found at /nonexistent/redis-server"),
            std::string::npos)
      << r.output;
  std::string yaml = ReadFile(data_ / "pdv.yaml");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      yaml, m, std::regex("oltp_url: postgresql://postgres:[0-9a-f]+@127.0.0.1:(\\d+)")));
  EXPECT_FALSE(PortAccepts(std::stoi(m[1]))) << "the OLTP server was left running";
  EXPECT_FALSE(fs::exists(data_ / "up.pid"));

  ::setenv("PDV_PG_BINDIR", "/nonexistent/bin", 1);
  r = RunPdv({"up", "--data-dir", data_.string()});
  ::unsetenv("PDV_PG_BINDIR");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output,
            "pdv up: OLTP PostgreSQL: no PostgreSQL server binary at /nonexistent/bin/postgres "
            "(PDV_PG_BINDIR)\n");
}

}  // namespace
}  // namespace pdv::testing
