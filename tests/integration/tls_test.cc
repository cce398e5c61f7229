// Issue 11: TLS where traffic crosses hosts, each with a throw-away CA. The API serves
// HTTPS; libpq's sslmode=verify-full works against the project's own PostgreSQL, for
// pdv's stages too.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/cpf.h"
#include "common/cpf_hasher.h"
#include "localsvc/local_postgres.h"
#include "localsvc/local_redis.h"
#include "localsvc/scratch_dir.h"
#include "test_support.h"

namespace pdv::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
constexpr char kCpfKey[] = "tls-test-cpf-key-0123456";

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = localsvc::ScratchDir::Create("pdv-test-tls");
    ASSERT_TRUE(dir.ok()) << dir.message();
    dir_.emplace(std::move(*dir));
    ca_ = MakeTestCa(dir_->path() / "ca");
    other_ca_ = MakeTestCa(dir_->path() / "other-ca", "someone-else");
    ASSERT_TRUE(fs::exists(ca_.server_cert)) << "openssl did not make the test CA";
  }
  // A server's directory holding server.pem and server.key of the test CA: given to the
  // server's account with the rest when it starts.
  fs::path ServerDirWithCertificate(const std::string& name) {
    fs::path dir = dir_->path() / name;
    fs::create_directories(dir);
    fs::copy_file(ca_.server_cert, dir / "server.pem");
    fs::copy_file(ca_.server_key, dir / "server.key");
    return dir;
  }
  // The dimension with one eligible customer, Ana (CPF 529.982.247-25).
  static void AddAna(pg::Connection& conn) {
    CreateDimensionTable(conn);
    std::string hash = CpfHasher(kCpfKey).Hash(*Cpf::Parse("52998224725"));
    ASSERT_TRUE(conn.Exec(fmt::format("INSERT INTO marts.dim_clientes_clube VALUES "
                                      "('11111111-1111-4111-8111-111111111111', '{}', 'Ana', "
                                      "'ATIVO', true, 87.50, 'verao', now() - interval '1 day', "
                                      "now(), '0/1000', false)",
                                      hash))
                    .ok());
  }
  std::optional<localsvc::ScratchDir> dir_;
  TestCa ca_, other_ca_;
};

TEST_F(TlsTest, PostgresVerifyFullWithAThrowAwayCa) {
  // The server's certificate and key live in its directory (given to its account).
  fs::path pg_dir = ServerDirWithCertificate("pg");
  auto pg = localsvc::LocalPostgres::Start(
      {.dir = pg_dir,
       .settings = {"ssl=on", "ssl_cert_file=" + (pg_dir / "server.pem").string(),
                    "ssl_key_file=" + (pg_dir / "server.key").string()}});
  ASSERT_TRUE(pg.ok()) << pg.message();
  std::string verified = (*pg)->Url() + "?sslmode=verify-full&sslrootcert=" + ca_.ca_cert.string();
  auto conn = Connect(verified);
  EXPECT_EQ(Scalar(conn, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "t");

  // Signed by another CA: refused before any password is sent.
  auto wrong = pg::Connection::Connect(
      (*pg)->Url() + "?sslmode=verify-full&sslrootcert=" + other_ca_.ca_cert.string());
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.message().find("certificate verify failed"), std::string::npos)
      << wrong.message();

  // A stage with such a URL: the cache loads the dimension over TLS.
  CreateDimensionTable(conn);
  auto redis = localsvc::LocalRedis::Start({});
  ASSERT_TRUE(redis.ok()) << redis.message();
  auto r = RunPdv(
      {"cache", "sync", "--full", "--warehouse-url", verified, "--redis-url", (*redis)->Url()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(TlsTest, ApiServesHttpsWithAThrowAwayCa) {
  ::setenv("PDV_CPF_KEY", kCpfKey, 1);
  auto pg = localsvc::LocalPostgres::Start({});
  ASSERT_TRUE(pg.ok()) << pg.message();
  auto redis = localsvc::LocalRedis::Start({});
  ASSERT_TRUE(redis.ok()) << redis.message();
  auto conn = Connect((*pg)->Url());
  AddAna(conn);
  ASSERT_EQ(RunPdv({"cache", "sync", "--full", "--warehouse-url", (*pg)->Url(), "--redis-url",
                    (*redis)->Url()})
                .exit_code,
            0);
  auto key = RunPdv({"apikey", "create", "caixa-tls", "--redis-url", (*redis)->Url(),
                     "--warehouse-url", (*pg)->Url()});
  ASSERT_EQ(key.exit_code, 0) << key.output;
  std::string api_key = Lines(key.output)[0];

  auto port = localsvc::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  PdvProcess serve(
      {"serve", "--listen", fmt::format("127.0.0.1:{}", *port), "--redis-url", (*redis)->Url(),
       "--tls-cert", ca_.server_cert.string(), "--tls-key", ca_.server_key.string()},
      dir_->path() / "serve.log");
  std::string url = fmt::format("https://127.0.0.1:{}/v1/clientes/52998224725", *port);
  std::string out;
  ASSERT_TRUE(WaitFor(20s,
                      [&] {
                        out = RunCommandOutput({"curl", "-sS", "--cacert", ca_.ca_cert.string(),
                                                "-H", "X-API-Key: " + api_key, url});
                        return out.find("\"cliente_id\"") != std::string::npos;
                      }))
      << out << serve.Output();
  EXPECT_NE(out.find("11111111-1111-4111-8111-111111111111"), std::string::npos) << out;
  EXPECT_NE(serve.Output().find("scheme=https"), std::string::npos) << serve.Output();

  // A client that trusts another CA stops at the handshake; plain HTTP gets nothing.
  std::string untrusted = RunCommandOutput(
      {"curl", "-sS", "--cacert", other_ca_.ca_cert.string(), "-H", "X-API-Key: " + api_key, url});
  EXPECT_EQ(untrusted.find("cliente_id"), std::string::npos) << untrusted;
  EXPECT_NE(untrusted.find("certificate"), std::string::npos) << untrusted;
  EXPECT_NE(HttpStatus(HttpGet(*port, "/health")), 200);
  // ...and the API goes on serving HTTPS.
  out = RunCommandOutput(
      {"curl", "-sS", "--cacert", ca_.ca_cert.string(), "-H", "X-API-Key: " + api_key, url});
  EXPECT_NE(out.find("\"cliente_id\""), std::string::npos) << out;

  // The monitor's client speaks HTTPS too (monitor.api_ca_cert): pdv status sees the API.
  ::setenv("PDV_MONITOR_API_CA_CERT", ca_.ca_cert.string().c_str(), 1);
  // Until it reads serve as ok: its API probe has a 500 ms timeout, which a TLS handshake
  // on a loaded machine may miss once.
  CommandResult status;
  bool serve_ok = WaitFor(30s, [&] {
    status =
        RunPdv({"status", "--json", "--listen", fmt::format("127.0.0.1:{}", *port), "--redis-url",
                (*redis)->Url(), "--warehouse-url", (*pg)->Url(), "--oltp-url", (*pg)->Url()});
    auto brace = status.output.find('{');
    if (brace == std::string::npos) return false;
    auto json = nlohmann::json::parse(status.output.substr(brace), nullptr, false);
    if (!json.is_object() || !json.contains("stages")) return false;
    for (const auto& stage : json["stages"]) {
      if (stage["name"] == "serve") return stage["health"] == "ok";
    }
    return false;
  });
  ::unsetenv("PDV_MONITOR_API_CA_CERT");
  EXPECT_TRUE(serve_ok) << status.output;

  // Half a configuration is a clear error.
  auto half =
      RunPdv({"serve", "--listen", fmt::format("127.0.0.1:{}", *localsvc::FreeLoopbackPort()),
              "--redis-url", (*redis)->Url(), "--tls-cert", ca_.server_cert.string()});
  EXPECT_EQ(half.exit_code, 1) << half.output;
  EXPECT_NE(half.output.find("both --tls-cert and --tls-key"), std::string::npos) << half.output;
  serve.Signal(SIGTERM);
  serve.Wait(10s);
}

// Both Redis clients over rediss:// to a TLS-only Redis: the cache stage and `pdv apikey`
// (synchronous client), the API's data connection and its invalidation link
// (asynchronous client).
TEST_F(TlsTest, RedissForBothClientsWithAThrowAwayCa) {
  ::setenv("PDV_CPF_KEY", kCpfKey, 1);
  fs::path redis_dir = ServerDirWithCertificate("redis");
  auto redis = localsvc::LocalRedis::Start(
      {.dir = redis_dir,
       .tls = localsvc::LocalRedisOptions::Tls{.cert = (redis_dir / "server.pem").string(),
                                               .key = (redis_dir / "server.key").string(),
                                               .ca = ca_.ca_cert.string()}});
  ASSERT_TRUE(redis.ok()) << redis.message();
  std::string url = (*redis)->Url();
  ASSERT_TRUE(url.starts_with("rediss://")) << url;
  auto pg = localsvc::LocalPostgres::Start({});
  ASSERT_TRUE(pg.ok()) << pg.message();
  auto conn = Connect((*pg)->Url());
  AddAna(conn);
  auto sync =
      RunPdv({"cache", "sync", "--full", "--warehouse-url", (*pg)->Url(), "--redis-url", url});
  ASSERT_EQ(sync.exit_code, 0) << sync.output;

  // The wrong CA, or plain redis:// to the TLS port: refused, with the reason.
  std::string wrong_ca =
      fmt::format("rediss://default:{}@127.0.0.1:{}/0?ca_cert={}", (*redis)->password(),
                  (*redis)->port(), other_ca_.ca_cert.string());
  auto refused = RunPdv({"cache", "sync", "--full", "--warehouse-url", (*pg)->Url(), "--redis-url",
                         wrong_ca, "--retry-timeout", "0"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("TLS handshake"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("certificate"), std::string::npos) << refused.output;
  EXPECT_EQ(refused.output.find((*redis)->password()), std::string::npos) << refused.output;

  auto key = RunPdv(
      {"apikey", "create", "caixa-rediss", "--redis-url", url, "--warehouse-url", (*pg)->Url()});
  ASSERT_EQ(key.exit_code, 0) << key.output;
  std::string api_key = Lines(key.output)[0];
  auto port = localsvc::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  PdvProcess serve({"serve", "--listen", fmt::format("127.0.0.1:{}", *port), "--redis-url", url},
                   dir_->path() / "serve.log");
  auto lookup = [&] { return GetWithKey(*port, "/v1/clientes/52998224725", api_key); };
  ASSERT_TRUE(WaitFor(20s, [&] { return HttpStatus(lookup()) == 200; })) << serve.Output();
  // The near-cache serves only while the invalidation link (TLS too) is up.
  EXPECT_TRUE(WaitFor(10s, [&] {
    lookup();
    std::string metrics = HttpBody(HttpGet(*port, "/metrics"));
    return metrics.find("pdv_api_near_cache_hits_total 0") == std::string::npos &&
           metrics.find("pdv_api_near_cache_hits_total") != std::string::npos;
  })) << HttpBody(HttpGet(*port, "/metrics"));
  // A change through Redis reaches the API's near-cache over the TLS invalidation link.
  ASSERT_TRUE(
      conn.Exec("UPDATE marts.dim_clientes_clube SET primeiro_nome = 'Anita', _lsn = '0/2000'")
          .ok());
  ASSERT_EQ(
      RunPdv({"cache", "sync", "--warehouse-url", (*pg)->Url(), "--redis-url", url}).exit_code, 0);
  EXPECT_TRUE(WaitFor(10s, [&] { return lookup().find("Anita") != std::string::npos; }))
      << lookup() << serve.Output();
  EXPECT_EQ(serve.Output().find("level=error"), std::string::npos) << serve.Output();
  serve.Signal(SIGTERM);
  serve.Wait(10s);
}

}  // namespace
}  // namespace pdv::testing
