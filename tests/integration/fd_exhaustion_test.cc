// Issue 10 (3): the API's and the metrics exporter's accept loops, in this process, with
// its descriptor table really full (EMFILE): they log at most once a second, wait, and
// accept again once descriptors are free.

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stop_token>
#include <thread>

#include "api/serve.h"
#include "common/log.h"
#include "localsvc/launch_support.h"
#include "localsvc/local_redis.h"
#include "metrics/http_exporter.h"
#include "metrics/registry.h"
#include "test_support.h"

namespace pdv::testing {
namespace {

using namespace std::chrono_literals;

int OpenDescriptors() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++n;
    ::closedir(d);
  }
  return n;
}

// Fills the descriptor table, then makes 10 connections to `port` with sockets opened
// before it was full: their server ends can only be accepted with EMFILE. Restores the
// limit and closes everything when destroyed.
class FullDescriptorTable {
 public:
  explicit FullDescriptorTable(int port) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(OpenDescriptors() + 40);
    ::setrlimit(RLIMIT_NOFILE, &low);
    std::vector<int> clients;
    for (int i = 0; i < 10; ++i) clients.push_back(::socket(AF_INET, SOCK_STREAM, 0));
    while (true) {
      int fd = ::dup(0);
      if (fd < 0) {
        saw_emfile_ = errno == EMFILE;
        break;
      }
      fds_.push_back(fd);
    }
    for (int fd : clients) {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<uint16_t>(port));
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      fds_.push_back(fd);
    }
  }
  ~FullDescriptorTable() {
    for (int fd : fds_) ::close(fd);
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }
  bool saw_emfile() const { return saw_emfile_; }

 private:
  rlimit saved_{};
  std::vector<int> fds_;
  bool saw_emfile_ = false;
};

class FdExhaustionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = localsvc::ScratchDir::Create("pdv-test-fd");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
    log_path_ = dir_->path() / "log";
    log_file_ = std::fopen(log_path_.c_str(), "w");
    ASSERT_NE(log_file_, nullptr);
    log_.emplace(log_file_, "test");
    log_fd_ = ::open(log_path_.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(log_fd_, 0);
  }
  void TearDown() override {
    log_.reset();
    if (log_file_) std::fclose(log_file_);
    if (log_fd_ >= 0) ::close(log_fd_);
  }
  // Lines of the log naming `event`; read through a descriptor opened in SetUp, since
  // none can be opened while the table is full.
  size_t Count(const std::string& event) {
    std::fflush(log_file_);
    std::string text;
    char buf[4096];
    for (off_t at = 0;;) {
      ssize_t n = ::pread(log_fd_, buf, sizeof buf, at);
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
      at += n;
    }
    size_t n = 0;
    for (const auto& line : Lines(text)) n += line.find(event) != std::string::npos;
    return n;
  }

  std::optional<localsvc::ScratchDir> dir_;
  std::filesystem::path log_path_;
  std::FILE* log_file_ = nullptr;
  int log_fd_ = -1;
  std::optional<Logger> log_;
};

TEST_F(FdExhaustionTest, ApiKeepsAcceptingThroughEmfile) {
  auto redis = localsvc::LocalRedis::Start({});
  ASSERT_TRUE(redis.ok()) << redis.message();
  auto port = localsvc::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  api::ServeOptions options{.listen = "127.0.0.1:" + std::to_string(*port),
                            .redis_url = (*redis)->Url(),
                            .cpf_key = "fd-test-cpf-key-0123456",
                            .threads = 1};
  std::stop_source stop;
  std::jthread serve([&] { (void)api::Serve(options, *log_, stop.get_token()); });
  ASSERT_TRUE(WaitFor(20s, [&] { return HttpStatus(HttpGet(*port, "/health")) == 200; }));
  auto began = std::chrono::steady_clock::now();
  {
    FullDescriptorTable full(*port);
    EXPECT_TRUE(full.saw_emfile());
    EXPECT_TRUE(WaitFor(20s, [&] { return Count("serve_accept_error") > 0; }));
    std::this_thread::sleep_for(300ms);  // several failed retries, one line
  }
  EXPECT_TRUE(WaitFor(20s, [&] { return HttpStatus(HttpGet(*port, "/health")) == 200; }))
      << ReadFile(log_path_);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  EXPECT_LE(Count("serve_accept_error"), static_cast<size_t>(seconds) + 1) << ReadFile(log_path_);
  stop.request_stop();
}

TEST_F(FdExhaustionTest, MetricsExporterKeepsAcceptingThroughEmfileAndTimesOutSilentClients) {
  metrics::Registry registry;
  registry.AddGauge("pdv_test_gauge", "a gauge")->Set(7);
  auto exporter = metrics::HttpExporter::Start("127.0.0.1:0", registry, *log_);
  ASSERT_TRUE(exporter.ok()) << exporter.message();
  int port = (*exporter)->port();
  ASSERT_NE(HttpGet(port, "/metrics").find("pdv_test_gauge 7"), std::string::npos);
  {
    FullDescriptorTable full(port);
    EXPECT_TRUE(full.saw_emfile());
    EXPECT_TRUE(WaitFor(20s, [&] { return Count("metrics_accept_error") > 0; }));
  }
  EXPECT_TRUE(WaitFor(20s, [&] {
    return HttpGet(port, "/metrics").find("pdv_test_gauge 7") != std::string::npos;
  })) << ReadFile(log_path_);
  // A connection cap: 100 silent clients hold at most 64 sessions; the rest are closed
  // at once, and a scrape still gets through once the silent ones are timed out or closed.
  std::vector<int> silent;
  for (int i = 0; i < 100; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) silent.push_back(fd);
  }
  // Connections past the cap are closed by the exporter: reading them gives EOF.
  size_t closed = 0;
  for (int fd : silent) {
    timeval tv{.tv_sec = 0, .tv_usec = 50'000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    closed += ::recv(fd, &c, 1, 0) == 0;
  }
  EXPECT_GE(closed, 30u);
  for (int fd : silent) ::close(fd);
  EXPECT_NE(HttpGet(port, "/metrics").find("pdv_test_gauge 7"), std::string::npos);
}

}  // namespace
}  // namespace pdv::testing
