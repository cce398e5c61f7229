// `pdv cache` between a real PostgreSQL (the dimension) and a real Redis.

#include "cache/cache.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <random>
#include <regex>
#include <thread>

#include "cache/record.h"
#include "localsvc/local_postgres.h"
#include "localsvc/local_redis.h"
#include "localsvc/redis_cluster.h"
#include "redis/client.h"
#include "test_support.h"

namespace pdv::testing {
namespace {

using namespace std::chrono_literals;

class CacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pg = localsvc::LocalPostgres::Start({});
    ASSERT_TRUE(pg.ok()) << pg.message();
    pg_ = pg->release();
    auto redis = localsvc::LocalRedis::Start({});
    ASSERT_TRUE(redis.ok()) << redis.message();
    redis_ = redis->release();
  }
  static void TearDownTestSuite() {
    delete pg_;
    delete redis_;
  }
  void SetUp() override {
    static std::atomic<int> counter{0};
    db_ = "cache_" + std::to_string(counter++);
    ASSERT_TRUE(pg_->CreateDatabase(db_).ok());
    auto r = redis::Client::Connect(redis_->Url());
    ASSERT_TRUE(r.ok()) << r.message();
    ASSERT_TRUE(r->Command({"FLUSHALL"}).ok());
    auto conn = Connect(Url());
    CreateDimensionTable(conn);
    auto dir = localsvc::ScratchDir::Create("pdv-test-cache");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
  }

  std::string Url() const { return pg_->Url(db_); }
  std::vector<std::string> Cache(std::vector<std::string> args) const {
    std::vector<std::string> out = {"cache"};
    out.insert(out.end(), args.begin(), args.end());
    out.insert(out.end(), {"--warehouse-url", Url(), "--redis-url", RedisUrl()});
    return out;
  }
  // The Redis the stages under test use (a cluster in CacheClusterTest).
  virtual std::string RedisUrl() const { return redis_->Url(); }
  // Customers 1..n (ids derived from g, so tests can address them), _lsn 0/1000+g.
  void Insert(pg::Connection& conn, int from, int to) {
    auto r = conn.Exec(fmt::format(
        "INSERT INTO marts.dim_clientes_clube SELECT md5('id' || g)::uuid, "
        "encode(sha256(('cpf' || g)::bytea), 'hex'), 'Nome' || g, "
        "CASE WHEN g % 5 = 0 THEN 'INATIVO' ELSE 'ATIVO' END, g % 3 <> 0, 20 + g % 280 + 0.5, "
        "'verao', CASE WHEN g % 5 <> 0 AND g % 3 <> 0 THEN timestamptz '2025-01-01' + g * "
        "interval '1 minute' END, timestamptz '2025-06-01' + g * interval '1 second', "
        "('0/' || to_hex(100000 + g))::pg_lsn, false FROM generate_series({}, {}) g",
        from, to));
    ASSERT_TRUE(r.ok()) << r.message();
  }

  // A reader looking customers up (meta, then the record) all through a second full
  // load never misses one; afterwards the old version is gone from every server.
  void ExpectReadersNeverMissDuringAFullReload() {
    auto conn = Connect(Url());
    Insert(conn, 1, 30000);
    ASSERT_EQ(RunPdv(Cache({"sync", "--full"})).exit_code, 0);
    std::vector<std::string> hashes;
    auto rows =
        conn.Exec("SELECT cpf_hash FROM marts.dim_clientes_clube ORDER BY random() LIMIT 300");
    for (int i = 0; i < rows->rows(); ++i) hashes.push_back(rows->str(i, 0));
    std::atomic<bool> done{false};
    std::atomic<int> lookups{0}, misses{0};
    std::thread reader([&] {
      auto redis = redis::Client::Connect(RedisUrl());
      ASSERT_TRUE(redis.ok());
      for (size_t i = 0; !done; ++i) {
        if (!Lookup(*redis, hashes[i % hashes.size()])) ++misses;
        ++lookups;
      }
    });
    auto reload = RunPdv(Cache({"sync", "--full"}));
    done = true;
    reader.join();
    ASSERT_EQ(reload.exit_code, 0) << reload.output;
    EXPECT_NE(reload.output.find("event=cache_full_load_done version=2"), std::string::npos);
    EXPECT_GT(lookups.load(), 1000);
    EXPECT_EQ(misses.load(), 0);
    // The old version is gone afterwards, from every server.
    for (const auto& url : ServerUrls()) {
      auto redis = redis::Client::Connect(url);
      ASSERT_TRUE(redis.ok()) << redis.message();
      auto keys = redis->Command({"KEYS", "pdv:c:v1:*"});
      ASSERT_TRUE(keys.ok()) << keys.message();
      EXPECT_EQ(keys->elements(), 0u) << url;
    }
    ExpectRedisEqualsDimension();
  }
  // Each server of RedisUrl() on its own (every node of a cluster).
  virtual std::vector<std::string> ServerUrls() const { return {redis_->Url()}; }

  // The customer as a reader finds it: meta first, then one HGET.
  static std::optional<cache::CustomerRecord> Lookup(redis::Client& redis,
                                                     const std::string& cpf_hash) {
    auto meta = redis.Command({"HMGET", cache::kMetaKey, "version", "bits"});
    if (!meta.ok() || meta->element(0)->type == REDIS_REPLY_NIL) return std::nullopt;
    cache::Layout layout{.version = std::stoull(meta->element(0)->str),
                         .bits = std::stoi(meta->element(1)->str)};
    auto hash = cache::HashBytes(cpf_hash);
    auto r = redis.Command({"HGET", layout.CpfKey(*hash), cache::Layout::CpfField(*hash)});
    if (!r.ok() || r->is_nil()) return std::nullopt;
    auto rec = cache::Decode(r->str());
    if (!rec.ok()) return std::nullopt;
    return *rec;
  }

  // Every live dimension row is in Redis with its fields; every tombstone is absent.
  void ExpectRedisEqualsDimension() {
    auto conn = Connect(Url());
    auto rows = conn.Exec(
        "SELECT cliente_id::text, cpf_hash, primeiro_nome, status_clube = 'ATIVO', "
        "opt_in_marketing, round(ticket_medio_estimado * 100)::bigint, "
        "coalesce(extract(epoch FROM elegivel_a_partir_de)::bigint, -1), _lsn, _deleted, "
        "(_lsn - '0/0')::bigint FROM marts.dim_clientes_clube");
    ASSERT_TRUE(rows.ok()) << rows.message();
    auto redis = redis::Client::Connect(RedisUrl());
    ASSERT_TRUE(redis.ok());
    int bad = 0;
    for (int i = 0; i < rows->rows() && bad < 5; ++i) {
      auto rec = Lookup(*redis, rows->str(i, 1));
      if (rows->get(i, 8) == "t") {
        if (rec) ++bad, ADD_FAILURE() << "deleted but cached: " << rows->str(i, 0);
        continue;
      }
      if (!rec) {
        ++bad;
        ADD_FAILURE() << "missing: " << rows->str(i, 0);
        continue;
      }
      EXPECT_EQ(cache::UuidText(rec->cliente_id), rows->str(i, 0));
      EXPECT_EQ(rec->primeiro_nome, rows->str(i, 2));
      EXPECT_EQ(rec->ativo, rows->get(i, 3) == "t");
      EXPECT_EQ(rec->opt_in_marketing, rows->get(i, 4) == "t");
      EXPECT_EQ(rec->ticket_centavos, std::stoll(rows->str(i, 5)));
      EXPECT_EQ(rec->elegivel_a_partir_de.value_or(-1), std::stoll(rows->str(i, 6)));
      EXPECT_EQ(rec->lsn, std::stoull(rows->str(i, 9)));
    }
  }

  static localsvc::LocalPostgres* pg_;
  static localsvc::LocalRedis* redis_;
  std::string db_;
  std::optional<localsvc::ScratchDir> dir_;
};
localsvc::LocalPostgres* CacheTest::pg_ = nullptr;
localsvc::LocalRedis* CacheTest::redis_ = nullptr;

TEST_F(CacheTest, FullLoadThenIncrementalUpdatesAndDeletes) {
  auto conn = Connect(Url());
  Insert(conn, 1, 5000);
  auto full = RunPdv(Cache({"sync", "--full"}));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      full.output, m,
      std::regex(R"(customers=5000 bucket_bits=(\d+) .*redis_bytes_per_customer=([\d.]+))")))
      << full.output;
  double bytes = std::stod(m[2]);
  RecordProperty("redis_bytes_per_customer", std::to_string(bytes));
  EXPECT_LT(bytes, 130.0) << "compact values in listpack buckets";
  ExpectRedisEqualsDimension();

  // Changes: updates, tombstones, sign-ups, a customer whose cpf_hash changed.
  ASSERT_TRUE(conn.Exec("UPDATE marts.dim_clientes_clube SET status_clube = 'INATIVO', "
                        "elegivel_a_partir_de = NULL, _lsn = _lsn + 1000000 WHERE primeiro_nome "
                        "IN (SELECT 'Nome' || g FROM generate_series(1, 100) g)")
                  .ok());
  ASSERT_TRUE(conn.Exec("UPDATE marts.dim_clientes_clube SET _deleted = true, _lsn = _lsn + "
                        "2000000 WHERE primeiro_nome IN (SELECT 'Nome' || g FROM "
                        "generate_series(101, 150) g)")
                  .ok());
  ASSERT_TRUE(
      conn.Exec("UPDATE marts.dim_clientes_clube SET cpf_hash = encode(sha256('moved'::bytea), "
                "'hex'), _lsn = _lsn + 3000000 WHERE primeiro_nome = 'Nome200'")
          .ok());
  std::string old_hash = Scalar(conn, "SELECT encode(sha256('cpf200'::bytea), 'hex')");
  Insert(conn, 5001, 5020);
  ASSERT_TRUE(conn.Exec("UPDATE marts.dim_clientes_clube SET _lsn = _lsn + 4000000 WHERE "
                        "primeiro_nome LIKE 'Nome50__' AND primeiro_nome > 'Nome5000'")
                  .ok());
  auto inc = RunPdv(Cache({"sync"}));
  ASSERT_EQ(inc.exit_code, 0) << inc.output;
  EXPECT_NE(inc.output.find("event=cache_sync_done version=1 applied=171"), std::string::npos)
      << inc.output;
  ExpectRedisEqualsDimension();
  auto redis = redis::Client::Connect(redis_->Url());
  ASSERT_TRUE(redis.ok());
  EXPECT_FALSE(Lookup(*redis, old_hash).has_value()) << "the old cpf_hash entry is gone";
  // Nothing new: nothing applied.
  auto again = RunPdv(Cache({"sync"}));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.output.find("cache_sync_done"), std::string::npos) << again.output;
}

// Issue 16: records written by an older release (pdv:meta without this release's format)
// are never read as this one's: the next sync replaces them with a full load and removes
// the old version.
TEST_F(CacheTest, AVersionOfAnOlderRecordFormatIsReplacedByAFullLoad) {
  auto conn = Connect(Url());
  Insert(conn, 1, 300);
  ASSERT_EQ(RunPdv(Cache({"sync", "--full"})).exit_code, 0);
  auto redis = redis::Client::Connect(redis_->Url());
  ASSERT_TRUE(redis.ok());
  ASSERT_TRUE(redis->Command({"HDEL", "pdv:meta", "format"}).ok());
  auto sync = RunPdv(Cache({"sync"}));
  ASSERT_EQ(sync.exit_code, 0) << sync.output;
  EXPECT_NE(sync.output.find("event=cache_full_load_done version=2"), std::string::npos)
      << sync.output;
  auto format = redis->Command({"HGET", "pdv:meta", "format"});
  ASSERT_TRUE(format.ok());
  EXPECT_EQ(format->str(), std::to_string(cache::kRecordFormat));
  auto old_keys = redis->Command({"KEYS", "pdv:*:v1:*"});
  ASSERT_TRUE(old_keys.ok());
  EXPECT_EQ(old_keys->elements(), 0u) << "the older version is removed";
  ExpectRedisEqualsDimension();
}

// Issue 12: Redis replicates asynchronously, so a failover may promote a replica without
// the last writes; a position stored past them would skip them for good. The position
// moves only once the replica has them: with the replica hung (SIGSTOP), an incremental
// sync writes to the primary but keeps the old position, retrying; once the replica
// wakes (SIGCONT), the sync finishes and the position moves.
TEST_F(CacheTest, ThePositionMovesOnlyOnceTheReplicaHasTheWrites) {
  auto primary = localsvc::LocalRedis::Start({.password = "replica-ack-password-1"});
  ASSERT_TRUE(primary.ok()) << primary.message();
  auto replica = localsvc::LocalRedis::Start(
      {.password = "replica-ack-password-1", .replica_of = (*primary)->port()});
  ASSERT_TRUE(replica.ok()) << replica.message();
  std::string replica_node = "127.0.0.1:" + std::to_string((*replica)->port());
  ASSERT_TRUE(WaitFor(20s, [&] {
    return localsvc::RedisCliOutput(replica_node, "replica-ack-password-1", {"INFO", "replication"})
               .find("master_link_status:up") != std::string::npos;
  }));
  auto conn = Connect(Url());
  Insert(conn, 1, 100);
  auto with_primary = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "cache");
    args.insert(args.end(), {"--warehouse-url", Url(), "--redis-url", (*primary)->Url()});
    return args;
  };
  ASSERT_EQ(RunPdv(with_primary({"sync", "--full"})).exit_code, 0);
  auto redis = redis::Client::Connect((*primary)->Url());
  ASSERT_TRUE(redis.ok());
  auto position = [&] {
    auto lsn = redis->Command({"HGET", cache::kMetaKey, "lsn"});
    return lsn.ok() && lsn->type() == REDIS_REPLY_STRING ? std::string(lsn->str()) : "";
  };
  std::string before = position();
  ASSERT_FALSE(before.empty());

  (*replica)->Signal(SIGSTOP);
  Insert(conn, 101, 110);
  PdvProcess sync(with_primary({"sync", "--retry-timeout", "120"}), dir_->path() / "sync.log");
  ASSERT_TRUE(WaitFor(60s, [&] {
    return sync.Output().find("acknowledged the writes") != std::string::npos;
  })) << sync.Output();
  EXPECT_EQ(position(), before) << "the position moved past writes the replica lacks";
  (*replica)->Signal(SIGCONT);
  ASSERT_EQ(sync.Wait(120s), 0) << sync.Output();
  EXPECT_NE(sync.Output().find("applied=10"), std::string::npos) << sync.Output();
  EXPECT_NE(position(), before);
  // And the replica has the batch and the position.
  EXPECT_EQ(localsvc::RedisCliOutput(replica_node, "replica-ack-password-1",
                                     {"HGET", cache::kMetaKey, "lsn"}),
            position() + "\n");
}

TEST_F(CacheTest, AnOlderStateNeverOverwritesANewerOne) {
  auto conn = Connect(Url());
  Insert(conn, 1, 100);
  ASSERT_EQ(RunPdv(Cache({"sync", "--full"})).exit_code, 0);
  auto redis = redis::Client::Connect(redis_->Url());
  ASSERT_TRUE(redis.ok());
  std::string hash = Scalar(conn, "SELECT encode(sha256('cpf7'::bytea), 'hex')");
  auto rec = Lookup(*redis, hash);
  ASSERT_TRUE(rec);
  // A newer state written by another writer (a racing sync) ...
  cache::CustomerRecord newer = *rec;
  newer.lsn = 0xFFFFFFFFull;
  newer.primeiro_nome = "Newer";
  auto meta = redis->Command({"HMGET", cache::kMetaKey, "version", "bits"});
  cache::Layout layout{.version = std::stoull(meta->element(0)->str),
                       .bits = std::stoi(meta->element(1)->str)};
  auto bytes = *cache::HashBytes(hash);
  ASSERT_TRUE(redis
                  ->Command({"HSET", layout.CpfKey(bytes), cache::Layout::CpfField(bytes),
                             cache::Encode(newer)})
                  .ok());
  // ... then the dimension offers an older one: it must not win.
  ASSERT_TRUE(conn.Exec("UPDATE marts.dim_clientes_clube SET primeiro_nome = 'Older', _lsn = "
                        "'0/FFFFFF00' WHERE primeiro_nome = 'Nome7'")
                  .ok());
  ASSERT_EQ(RunPdv(Cache({"sync"})).exit_code, 0);
  EXPECT_EQ(Lookup(*redis, hash)->primeiro_nome, "Newer");

  // Two syncs racing over many changes end in the dimension's state.
  ASSERT_TRUE(conn.Exec("UPDATE marts.dim_clientes_clube SET primeiro_nome = primeiro_nome || "
                        "'x', _lsn = '1/0'::pg_lsn + (random() * 100000)::bigint WHERE "
                        "primeiro_nome <> 'Older'")
                  .ok());
  PdvProcess a(Cache({"sync"}), dir_->path() / "a.log"), b(Cache({"sync"}), dir_->path() / "b.log");
  EXPECT_EQ(a.Wait(60s), 0) << a.Output();
  EXPECT_EQ(b.Wait(60s), 0) << b.Output();
  ASSERT_TRUE(conn.Exec("DELETE FROM marts.dim_clientes_clube WHERE primeiro_nome = 'Older'").ok());
  ExpectRedisEqualsDimension();
}

TEST_F(CacheTest, ReadersNeverMissDuringAFullReload) { ExpectReadersNeverMissDuringAFullReload(); }

TEST_F(CacheTest, KilledSyncsResumeWithoutSkippingOrReapplyingWrongly) {
  auto conn = Connect(Url());
  Insert(conn, 1, 40000);
  // Killed during a full load: the next full load cleans up and completes.
  PdvProcess full(Cache({"sync", "--full"}), dir_->path() / "full.log");
  std::this_thread::sleep_for(150ms);
  full.Signal(SIGKILL);
  full.Wait(10s);
  ASSERT_EQ(RunPdv(Cache({"sync", "--full"})).exit_code, 0);
  ExpectRedisEqualsDimension();
  std::mt19937 rng(7);
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(conn.Exec(fmt::format("UPDATE marts.dim_clientes_clube SET ticket_medio_estimado = "
                                      "ticket_medio_estimado + 1, "
                                      "_deleted = (random() < 0.05), _lsn = '{}/0'::pg_lsn + "
                                      "(random() * 1000000)::bigint "
                                      "WHERE random() < 0.3",
                                      round + 2))
                    .ok());
    PdvProcess sync(Cache({"sync"}), dir_->path() / ("sync" + std::to_string(round) + ".log"));
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 200)(rng)));
    sync.Signal(SIGKILL);
    sync.Wait(10s);
  }
  // The lock of a killed sync expires; the next one finishes the job.
  auto last = RunPdv(Cache({"sync"}));
  ASSERT_EQ(last.exit_code, 0) << last.output;
  ExpectRedisEqualsDimension();
}

TEST_F(CacheTest, CustomersSharingAnLsnAcrossBatchesAreAllApplied) {
  auto conn = Connect(Url());
  Insert(conn, 1, 6000);
  ASSERT_EQ(RunPdv(Cache({"sync", "--full"})).exit_code, 0);
  // One source transaction changed 5,000 customers: one _lsn, more than a batch.
  ASSERT_TRUE(conn.Exec("UPDATE marts.dim_clientes_clube SET status_clube = 'INATIVO', "
                        "elegivel_a_partir_de = NULL, _lsn = '5/0' WHERE primeiro_nome IN "
                        "(SELECT 'Nome' || g FROM generate_series(1, 5000) g)")
                  .ok());
  auto r = RunPdv(Cache({"sync"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("applied=5000"), std::string::npos) << r.output;
  ExpectRedisEqualsDimension();
}

// Issue 13: two cache watches of one Redis: one syncs, the other is a standby. The active
// one is frozen (SIGSTOP: as cut off, it renews nothing); the standby takes the lease
// (token 2), syncs the next change and fences pdv:meta with its token. Thawed, the former
// holder finds its lease lost and writes no position: pdv:meta stays fenced at 2 and Redis
// equals the dimension.
TEST_F(CacheTest, AFrozenWatchIsReplacedAndCannotMoveThePositionWhenItWakes) {
  auto conn = Connect(Url());
  Insert(conn, 1, 500);
  PdvProcess first(Cache({"watch"}), dir_->path() / "first.log");
  auto redis = redis::Client::Connect(redis_->Url());
  ASSERT_TRUE(redis.ok());
  auto meta = [&](const char* field) {
    auto r = redis->Command({"HGET", cache::kMetaKey, field});
    return r.ok() && r->type() == REDIS_REPLY_STRING ? std::string(r->str()) : "";
  };
  ASSERT_TRUE(WaitFor(30s, [&] { return meta("fence") == "1"; })) << first.Output();
  PdvProcess second(Cache({"watch"}), dir_->path() / "second.log");
  ASSERT_TRUE(WaitFor(30s, [&] {
    return second.Output().find("event=cache_standby") != std::string::npos;
  })) << second.Output();

  auto frozen = std::chrono::steady_clock::now();
  first.Signal(SIGSTOP);
  ASSERT_TRUE(WaitFor(30s, [&] {
    return second.Output().find("event=cache_active") != std::string::npos;
  })) << second.Output();
  std::cout << "cache: the standby took the lease "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - frozen).count()
            << " s after the active one froze (TTL 3 s)\n";
  EXPECT_NE(second.Output().find("lease_token=2"), std::string::npos) << second.Output();
  ASSERT_TRUE(conn.Exec("UPDATE marts.dim_clientes_clube SET primeiro_nome = 'Depois', _lsn = "
                        "'5/0' WHERE primeiro_nome = 'Nome7'; NOTIFY pdv_dim")
                  .ok());
  ASSERT_TRUE(WaitFor(30s, [&] { return meta("fence") == "2" && meta("lsn") != ""; }));
  std::string hash = Scalar(conn, "SELECT encode(sha256('cpf7'::bytea), 'hex')");
  ASSERT_TRUE(WaitFor(30s, [&] {
    auto r = Lookup(*redis, hash);
    return r && r->primeiro_nome == "Depois";
  }));

  first.Signal(SIGCONT);
  ASSERT_TRUE(WaitFor(30s, [&] {
    return first.Output().find("event=cache_lease_lost") != std::string::npos;
  })) << first.Output();
  EXPECT_EQ(meta("fence"), "2");
  ASSERT_TRUE(conn.Exec("UPDATE marts.dim_clientes_clube SET primeiro_nome = 'Enfim', _lsn = "
                        "'6/0' WHERE primeiro_nome = 'Nome8'; NOTIFY pdv_dim")
                  .ok());
  std::string hash8 = Scalar(conn, "SELECT encode(sha256('cpf8'::bytea), 'hex')");
  ASSERT_TRUE(WaitFor(30s, [&] {
    auto r = Lookup(*redis, hash8);
    return r && r->primeiro_nome == "Enfim";
  }));
  ExpectRedisEqualsDimension();
  for (auto* p : {&first, &second}) {
    p->Signal(SIGTERM);
    EXPECT_EQ(p->Wait(10s), 0) << p->Output();
  }

  // The former holder wakes with a batch in hand: a newer state of a customer whose
  // bucket the newer holder wrote. The bucket's fence refuses it (lease lost), and
  // nothing of it lands; the newer holder's token applies the same batch.
  ASSERT_TRUE(conn.Exec("UPDATE marts.dim_clientes_clube SET primeiro_nome = 'Velho', _lsn = "
                        "'7/0' WHERE primeiro_nome = 'Depois'")
                  .ok());
  cache::CacheOptions options{.warehouse_url = Url(), .redis_url = redis_->Url()};
  Logger log(stderr, "cache-test");
  options.fence_token = 1;
  auto refused = cache::SyncIncremental(options, log, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), "lease_lost") << refused.message();
  EXPECT_EQ(Lookup(*redis, hash)->primeiro_nome, "Depois");
  options.fence_token = 2;
  auto applied = cache::SyncIncremental(options, log, {});
  ASSERT_TRUE(applied.ok()) << applied.message();
  EXPECT_EQ(Lookup(*redis, hash)->primeiro_nome, "Velho");
  ExpectRedisEqualsDimension();
}

TEST_F(CacheTest, WatchAppliesEachNotifiedChange) {
  auto conn = Connect(Url());
  Insert(conn, 1, 500);
  PdvProcess watch(Cache({"watch"}), dir_->path() / "watch.log");
  auto redis = redis::Client::Connect(redis_->Url());
  ASSERT_TRUE(redis.ok());
  std::string hash = Scalar(conn, "SELECT encode(sha256('cpf9'::bytea), 'hex')");
  auto wait_for = [&](const std::function<bool()>& ok) {
    for (int i = 0; i < 200; ++i) {
      if (ok()) return true;
      std::this_thread::sleep_for(25ms);
    }
    return false;
  };
  ASSERT_TRUE(wait_for([&] { return Lookup(*redis, hash).has_value(); })) << watch.Output();
  // A burst of notified changes: applied, no fixed sleep involved.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(conn.Exec(fmt::format("UPDATE marts.dim_clientes_clube SET primeiro_nome = 'V{}', "
                                      "_lsn = '{}/0' WHERE primeiro_nome LIKE 'Nome9' OR "
                                      "primeiro_nome LIKE 'V_'; NOTIFY pdv_dim",
                                      i, i + 1))
                    .ok());
  }
  EXPECT_TRUE(wait_for([&] {
    auto r = Lookup(*redis, hash);
    return r && r->primeiro_nome == "V4";
  })) << watch.Output();
  // Redis lost its scripts (a restart, a failover): the watch loads them again (NOSCRIPT)
  // on the connection it keeps, and goes on without a retry.
  ASSERT_TRUE(redis->Command({"SCRIPT", "FLUSH"}).ok());
  ASSERT_TRUE(conn.Exec("UPDATE marts.dim_clientes_clube SET primeiro_nome = 'W', _lsn = '9/0' "
                        "WHERE primeiro_nome = 'V4'; NOTIFY pdv_dim")
                  .ok());
  EXPECT_TRUE(wait_for([&] {
    auto r = Lookup(*redis, hash);
    return r && r->primeiro_nome == "W";
  })) << watch.Output();
  EXPECT_EQ(watch.Output().find("cache_watch_retry"), std::string::npos) << watch.Output();
  watch.Signal(SIGTERM);
  EXPECT_EQ(watch.Wait(10s), 0) << watch.Output();
}

TEST_F(CacheTest, RedisOrWarehouseDownIsAClearError) {
  auto port = localsvc::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  auto r = RunPdv({"cache", "sync", "--warehouse-url", Url(), "--redis-url",
                   "redis://127.0.0.1:" + std::to_string(*port) + "/0", "--retry-timeout", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("event=cache_retry attempt=1"), std::string::npos) << r.output;
  EXPECT_NE(Lines(r.output).back().find("pdv cache: redis: cannot connect to 127.0.0.1:"),
            std::string::npos)
      << r.output;
  auto w = RunPdv({"cache", "sync", "--full", "--warehouse-url",
                   "postgresql://postgres@127.0.0.1:" + std::to_string(*port) + "/x", "--redis-url",
                   redis_->Url(), "--retry-timeout", "0.5"});
  EXPECT_EQ(w.exit_code, 1);
  EXPECT_NE(w.output.find("event=cache_retry"), std::string::npos) << w.output;
  EXPECT_NE(Lines(w.output).back().find("pdv cache: postgres: cannot connect"), std::string::npos)
      << w.output;
}

// Issue 12, its first part: the synchronous client on a real Redis Cluster. The cache's
// full and incremental loads and `pdv apikey` work through seed nodes; keys spread over
// the masters; a pipeline, SCRIPT LOAD and a multi-key UNLINK cross slots; after a
// failover the client follows MOVED to the new master.
class CacheClusterTest : public CacheTest {
 protected:
  void SetUp() override {
    CacheTest::SetUp();
    auto cluster = localsvc::LocalRedisCluster::Start("cluster-test-password-0123");
    ASSERT_TRUE(cluster.ok()) << cluster.message();
    cluster_ = std::move(*cluster);
  }
  std::string RedisUrl() const override { return cluster_->Url(); }
  std::vector<std::string> ServerUrls() const override {
    std::vector<std::string> urls;
    for (const auto& node : cluster_->nodes()) urls.push_back(node->Url());
    return urls;
  }
  std::unique_ptr<localsvc::LocalRedisCluster> cluster_;
};

// Issue 12: a full load stays atomic across slots: the new version's buckets are on
// every master before pdv:meta (one key, one slot) switches to it.
TEST_F(CacheClusterTest, ReadersNeverMissDuringAFullReloadAcrossSlots) {
  ExpectReadersNeverMissDuringAFullReload();
}

TEST_F(CacheClusterTest, CacheAndApiKeysOnARealClusterFollowingAFailover) {
  auto conn = Connect(Url());
  Insert(conn, 1, 500);
  auto full = RunPdv(Cache({"sync", "--full"}));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  ExpectRedisEqualsDimension();
  int masters_with_keys = 0;
  for (const auto& node : cluster_->nodes()) {
    auto r = redis::Client::Connect(node->Url());
    ASSERT_TRUE(r.ok()) << r.message();
    auto role = r->Command({"ROLE"});
    auto size = r->Command({"DBSIZE"});
    ASSERT_TRUE(role.ok() && size.ok());
    if (std::string_view(role->element(0)->str, role->element(0)->len) == "master" &&
        size->integer() > 0) {
      ++masters_with_keys;
    }
  }
  EXPECT_EQ(masters_with_keys, 3) << "the buckets should spread over every master";

  // A second full load removes the first (UNLINK across slots) and reloads its scripts.
  ASSERT_TRUE(conn.Exec("UPDATE marts.dim_clientes_clube SET primeiro_nome = 'Outro', "
                        "_lsn = _lsn + 1000000 WHERE (_lsn - '0/0') % 7 = 0")
                  .ok());
  auto again = RunPdv(Cache({"sync", "--full"}));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  ExpectRedisEqualsDimension();
  ASSERT_TRUE(conn.Exec("UPDATE marts.dim_clientes_clube SET _deleted = true, "
                        "_lsn = _lsn + 2000000 WHERE (_lsn - '0/0') % 11 = 0")
                  .ok());
  auto incremental = RunPdv(Cache({"sync"}));
  ASSERT_EQ(incremental.exit_code, 0) << incremental.output;
  ExpectRedisEqualsDimension();

  auto key = RunPdv(
      {"apikey", "create", "caixa-cluster", "--redis-url", RedisUrl(), "--warehouse-url", Url()});
  ASSERT_EQ(key.exit_code, 0) << key.output;

  // Fail over the master of pdv:meta's slot; a client that knew the old map follows MOVED.
  auto client = redis::Client::Connect(RedisUrl());
  ASSERT_TRUE(client.ok()) << client.message();
  ASSERT_TRUE(client->cluster());
  ASSERT_TRUE(client->Command({"HGET", cache::kMetaKey, "version"}).ok());
  std::string replica_url;
  for (const auto& node : cluster_->nodes()) {
    auto r = redis::Client::Connect(node->Url());
    auto nodes = r->Command({"CLUSTER", "NODES"});
    ASSERT_TRUE(nodes.ok());
    auto role = r->Command({"ROLE"});
    if (std::string_view(role->element(0)->str, role->element(0)->len) != "slave") continue;
    // Its master serves pdv:meta when a plain GET of the meta there says MOVED nowhere.
    auto master = redis::Client::Connect(
        fmt::format("redis://default:{}@{}:{}/0", "cluster-test-password-0123",
                    role->element(1)->str, role->element(2)->integer));
    ASSERT_TRUE(master.ok());
    if (master->Command({"HGET", cache::kMetaKey, "version"}).ok()) {
      replica_url = node->Url();
      break;
    }
  }
  ASSERT_FALSE(replica_url.empty()) << "no replica of pdv:meta's master";
  auto replica = redis::Client::Connect(replica_url);
  ASSERT_TRUE(replica->Command({"CLUSTER", "FAILOVER"}).ok());
  ASSERT_TRUE(WaitFor(30s, [&] {
    auto role = replica->Command({"ROLE"});
    return role.ok() && std::string_view(role->element(0)->str, role->element(0)->len) == "master";
  }));
  auto after = client->Command({"HSET", "pdv:cluster-test", "a", "1"});
  EXPECT_TRUE(after.ok()) << after.message();
  auto meta = client->Command({"HGET", cache::kMetaKey, "version"});
  EXPECT_TRUE(meta.ok()) << meta.message();
  auto synced = RunPdv(Cache({"sync"}));
  EXPECT_EQ(synced.exit_code, 0) << synced.output;
}

}  // namespace
}  // namespace pdv::testing
