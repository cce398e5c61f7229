#include "test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "warehouse/warehouse.h"

namespace pdv::testing {

std::string PdvBinary() {
  const char* bin = std::getenv("PDV_BINARY");
  return bin ? bin : "pdv";
}

PdvProcess::PdvProcess(const std::vector<std::string>& args, const std::filesystem::path& log,
                       const std::vector<std::string>& wrapper, const std::string& stdin_file)
    : log_(log) {
  std::vector<std::string> argv = wrapper;
  argv.push_back(PdvBinary());
  argv.insert(argv.end(), args.begin(), args.end());
  auto child = localsvc::ChildProcess::Spawn(
      {.argv = argv, .log_file = log.string(), .stdin_file = stdin_file});
  if (!child.ok()) {
    ADD_FAILURE() << child.message();
    return;
  }
  child_.emplace(std::move(*child));
}

int PdvProcess::Wait(std::chrono::seconds timeout) {
  if (!child_) return -1;
  auto code = child_->Wait(timeout);
  if (!code) {
    child_->Kill();
    return -1;
  }
  return *code;
}

std::string PdvProcess::Output() const { return ReadFile(log_); }

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  return all.str();
}

CommandResult RunPdv(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  auto dir = localsvc::ScratchDir::Create("pdv-test-cmd");
  if (!dir.ok()) {
    ADD_FAILURE() << dir.message();
    return {};
  }
  PdvProcess process(args, dir->path() / "output.log");
  CommandResult result;
  result.exit_code = process.Wait(timeout);
  result.output = process.Output();
  return result;
}

CommandResult RunPdvWithInput(const std::vector<std::string>& args, const std::string& input,
                              std::chrono::seconds timeout) {
  auto dir = localsvc::ScratchDir::Create("pdv-test-cmd");
  if (!dir.ok()) {
    ADD_FAILURE() << dir.message();
    return {};
  }
  std::filesystem::path in = dir->path() / "stdin";
  std::ofstream(in, std::ios::binary) << input;
  PdvProcess process(args, dir->path() / "output.log", {}, in.string());
  CommandResult result;
  result.exit_code = process.Wait(timeout);
  result.output = process.Output();
  return result;
}

std::string RunCommandOutput(const std::vector<std::string>& argv) {
  auto dir = localsvc::ScratchDir::Create("pdv-test-cmd");
  if (!dir.ok()) return "";
  auto log = dir->path() / "output.log";
  (void)localsvc::RunCommand({.argv = argv, .log_file = log.string()}, std::chrono::seconds(60));
  return ReadFile(log);
}

pg::Connection Connect(const std::string& url) {
  auto conn = pg::Connection::Connect(url);
  if (!conn.ok()) {
    ADD_FAILURE() << conn.message();
    std::abort();
  }
  return std::move(*conn);
}

std::string Scalar(pg::Connection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  if (!r.ok()) {
    ADD_FAILURE() << r.message();
    return "";
  }
  if (r->rows() == 0 || r->columns() == 0) return "";
  return r->str(0, 0);
}

int64_t ScalarInt(pg::Connection& conn, const std::string& sql) {
  std::string v = Scalar(conn, sql);
  return v.empty() ? -1 : std::stoll(v);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string HttpRaw(int port, const std::string& raw, std::chrono::milliseconds timeout) {
  return HttpRawTo("127.0.0.1", port, raw, timeout);
}

std::string HttpRawTo(const std::string& host, int port, const std::string& raw,
                      std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string response;
  timeval tv{.tv_sec = timeout.count() / 1000, .tv_usec = (timeout.count() % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));  // bounds connect() too
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    ::send(fd, raw.data(), raw.size(), MSG_NOSIGNAL);
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) response.append(buf, n);
  }
  ::close(fd);
  return response;
}

std::string GetWithKey(int port, const std::string& path, const std::string& key) {
  return GetWithKeyFrom("127.0.0.1", port, path, key);
}

std::string GetWithKeyFrom(const std::string& host, int port, const std::string& path,
                           const std::string& key, std::chrono::milliseconds timeout) {
  return HttpRawTo(
      host, port,
      "GET " + path + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key + "\r\nConnection: close\r\n\r\n",
      timeout);
}

int HttpStatus(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::stoi(response.substr(9, 3));
}

std::string HttpBody(const std::string& response) {
  auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

std::string HttpGet(int port, const std::string& path) {
  return HttpRaw(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

std::string HaproxyServerState(const std::filesystem::path& socket_path, const std::string& name) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path.c_str());
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::send(fd, "show stat\n", 10, MSG_NOSIGNAL) == 10) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, n);
  }
  ::close(fd);
  for (const auto& line : Lines(out)) {
    if (line.rfind("serve," + name + ",", 0) != 0) continue;
    if (line.find(",UP") != std::string::npos) return "UP";
    if (line.find(",DOWN") != std::string::npos) return "DOWN";
    return "OTHER";
  }
  return "";
}

bool PortAccepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

void CreateDimensionTable(pg::Connection& conn) {
  auto r = conn.Exec(
      "CREATE SCHEMA IF NOT EXISTS marts; CREATE TABLE marts.dim_clientes_clube ("
      "cliente_id uuid PRIMARY KEY, cpf_hash text NOT NULL, primeiro_nome text, "
      "status_clube text, opt_in_marketing boolean, ticket_medio_estimado numeric(10,2), "
      "origem_campanha text, elegivel_a_partir_de timestamptz, atualizado_em timestamptz, "
      "_lsn pg_lsn NOT NULL, _deleted boolean NOT NULL DEFAULT false)");
  ASSERT_TRUE(r.ok()) << r.message();
}

bool WaitFor(std::chrono::milliseconds timeout, const std::function<bool()>& condition) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TestCa MakeTestCa(const std::filesystem::path& dir, const std::string& name) {
  std::filesystem::create_directories(dir);
  TestCa ca{dir / "ca.pem", dir / "server.pem", dir / "server.key"};
  auto ec_key = std::vector<std::string>{"-newkey", "ec", "-pkeyopt",
                                         "ec_paramgen_curve:prime256v1", "-nodes"};
  std::vector<std::string> make_ca = {"openssl", "req", "-x509"};
  make_ca.insert(make_ca.end(), ec_key.begin(), ec_key.end());
  make_ca.insert(make_ca.end(), {"-keyout", (dir / "ca.key").string(), "-out", ca.ca_cert.string(),
                                 "-days", "1", "-subj", "/CN=" + name});
  RunCommandOutput(make_ca);
  std::vector<std::string> make_csr = {"openssl", "req"};
  make_csr.insert(make_csr.end(), ec_key.begin(), ec_key.end());
  make_csr.insert(make_csr.end(), {"-keyout", ca.server_key.string(), "-out",
                                   (dir / "server.csr").string(), "-subj", "/CN=127.0.0.1"});
  RunCommandOutput(make_csr);
  std::ofstream(dir / "san.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  RunCommandOutput({"openssl", "x509", "-req", "-in", (dir / "server.csr").string(), "-CA",
                    ca.ca_cert.string(), "-CAkey", (dir / "ca.key").string(), "-CAcreateserial",
                    "-out", ca.server_cert.string(), "-days", "1", "-extfile",
                    (dir / "san.ext").string()});
  std::filesystem::permissions(
      ca.server_key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return ca;
}

namespace {
std::map<std::string, std::string> Rows(pg::Connection& conn, const std::string& sql) {
  auto r = conn.Exec(sql);
  EXPECT_TRUE(r.ok()) << r.message();
  std::map<std::string, std::string> out;
  if (!r.ok()) return out;
  for (int i = 0; i < r->rows(); ++i) out[r->str(i, 0)] = r->str(i, 1);
  return out;
}
constexpr char kColumns[] =
    "cliente_id, cpf_hash, nome_completo, email, telefone, data_nascimento, sexo, cidade, "
    "estado, cep, canal_cadastro, data_cadastro, ultima_atualizacao, status_clube, "
    "opt_in_marketing, ticket_medio_estimado, origem_campanha";
}  // namespace

void ExpectRawEqualsOltp(const std::string& oltp_url, const std::string& warehouse_url) {
  auto oltp = Connect(oltp_url);
  auto wh = Connect(warehouse_url);
  auto source = Rows(oltp, std::string("SELECT cliente_id::text, row(") + kColumns +
                               ")::text FROM clientes_clube");
  // RAW's latest state as the warehouse defines it (the same SQL reconcile runs).
  auto rebuilt = Rows(
      wh, warehouse::LatestRawStateSql(
              {.columns = std::string("latest.cliente_id::text, row(") + kColumns + ")::text"}));
  EXPECT_EQ(source.size(), rebuilt.size());
  int shown = 0;
  for (const auto& [id, row] : source) {
    auto it = rebuilt.find(id);
    if (it == rebuilt.end()) {
      if (shown++ < 5) ADD_FAILURE() << "missing from RAW: " << row;
    } else if (it->second != row) {
      if (shown++ < 5) ADD_FAILURE() << "differs:\n OLTP " << row << "\n RAW  " << it->second;
    }
  }
  for (const auto& [id, row] : rebuilt) {
    if (!source.count(id) && shown++ < 5) ADD_FAILURE() << "extra in RAW: " << row;
  }
  // No change twice: a transaction's rows are unique by (LSN, position) (a constraint);
  // no customer is created twice, nor streamed as created after a snapshot had it
  // (snapshot and stream never overlap).
  EXPECT_EQ(ScalarInt(wh,
                      "SELECT count(*) FROM (SELECT cliente_id FROM raw.clientes_clube "
                      "WHERE _cdc_op = 'c' GROUP BY 1 HAVING count(*) > 1) d"),
            0);
  EXPECT_EQ(ScalarInt(wh,
                      "SELECT count(*) FROM raw.clientes_clube c JOIN raw.clientes_clube r "
                      "USING (cliente_id) WHERE c._cdc_op = 'c' AND r._cdc_op = 'r' AND "
                      "c._cdc_lsn > r._cdc_lsn"),
            0);
}

}  // namespace pdv::testing
