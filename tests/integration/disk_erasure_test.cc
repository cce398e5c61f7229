// Issue 33: the files an erasure must reach beyond the rows, on real servers: the table
// files (what a plain VACUUM leaves, and the rewrite of only what holds it), the
// warehouse's WAL (segments written before the erasure removed), Redis's append-only file
// (rewritten), a plaintext CPF list. Each checked by reading the files' bytes.

#include "subject/disk_erasure.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "localsvc/local_postgres.h"
#include "localsvc/local_redis.h"
#include "subject/byte_scan.h"
#include "subject/relation_rewrite.h"
#include "test_support.h"

namespace pdv::testing {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Whether any file under `dir` holds `marker`.
bool Holds(const fs::path& dir, const std::string& marker) {
  auto r = subject::ScanFiles(dir, {{"marker", marker}}, {.rdb_uncompressed = true}, {});
  return r.ok() && !r->found.empty();
}

// PostgreSQL 15's plain VACUUM prunes a deleted tuple but leaves its bytes in the page's
// free space when it lay at the bottom of the page's tuple area (the last one written
// there: compaction moves the others over a tuple above them, not over one below); a
// tuple in the middle is overwritten. So after the erasure and a plain VACUUM, table `a`
// (its person the last row of page 0) still holds them and is rewritten, table `b` (its
// person in the middle of page 0) is left as it is, and no file of the cluster holds
// either person then.
TEST(DiskErasureTest, OnlyTheRelationsThatStillHoldThePersonAreRewritten) {
  auto pg = localsvc::LocalPostgres::Start({.settings = {"autovacuum=off"}});
  ASSERT_TRUE(pg.ok()) << pg.message();
  auto conn = Connect((*pg)->Url());
  for (const char* t : {"a", "b"}) {
    ASSERT_TRUE(conn.Exec(fmt::format("CREATE TABLE {0} (email text UNIQUE, nome text); INSERT "
                                      "INTO {0} SELECT 'pessoa' || g || '-{0}@exemplo.com.br', "
                                      "'Nome Completo {0} ' || g FROM generate_series(1, 400) g",
                                      t))
                    .ok());
  }
  // a: the last tuple written on page 0; b: one in its middle.
  const std::string last_of_page = Scalar(
      conn, "SELECT max((ctid::text::point)[1])::int FROM a WHERE (ctid::text::point)[0] = 0");
  const std::string person_a = "pessoa" + last_of_page + "-a@exemplo.com.br",
                    person_b = "pessoa10-b@exemplo.com.br";
  for (std::string sql : {"DELETE FROM a WHERE email = '" + person_a + "'",
                          "DELETE FROM b WHERE email = '" + person_b + "'", std::string("VACUUM a"),
                          std::string("VACUUM b"), std::string("CHECKPOINT")}) {
    ASSERT_TRUE(conn.Exec(sql).ok()) << sql;
  }
  const fs::path data = Scalar(conn, "SHOW data_directory");
  auto heap_holds = [&](const char* table, const std::string& value) {
    fs::path file = data / Scalar(conn, fmt::format("SELECT pg_relation_filepath('{}')", table));
    return !subject::ScanFileList({file}, {{"email", value}}, {}).found.empty();
  };
  ASSERT_TRUE(heap_holds("a", person_a)) << "a plain VACUUM should leave the bottom tuple's bytes";
  ASSERT_FALSE(heap_holds("b", person_b)) << "a tuple in the middle is overwritten";

  auto done = subject::RewriteRelationsHolding(conn, {"a", "b"},
                                               {{"email a", person_a}, {"email b", person_b}}, {});
  ASSERT_TRUE(done.ok()) << done.message();
  // Each table: its heap, its TOAST table and the TOAST index, the e-mail index.
  EXPECT_EQ((*done)["relations_scanned"], 8) << done->dump();
  EXPECT_FALSE((*done)["statistics_rebuilt"].get<bool>()) << "never analyzed: " << done->dump();
  bool a_rewritten = false;
  for (const auto& r : (*done)["rewritten"]) {
    if (r["relation"] == "a") a_rewritten = r["how"] == "VACUUM FULL";
    EXPECT_NE(r["relation"], "b") << "b's heap holds nothing of its person: " << done->dump();
  }
  EXPECT_TRUE(a_rewritten) << done->dump();
  EXPECT_LT(
      (*done)["bytes_rewritten"].get<int64_t>(),
      ScalarInt(conn, "SELECT pg_total_relation_size('a') + pg_total_relation_size('b')") * 2);
  ASSERT_TRUE(conn.Exec("CHECKPOINT").ok());
  EXPECT_FALSE(Holds(data / "base", person_a));
  EXPECT_FALSE(Holds(data / "base", person_b));
}

// ANALYZE copies column values into pg_statistic (a small table's histogram bounds are all
// of its values, here in TOAST-able arrays): after the person's rows are gone and vacuumed,
// the statistics still hold them until the table is analyzed again and the catalog
// rewritten. (The CI found this: the restored warehouse of UpTest's reapply test had been
// analyzed by autovacuum, and one member's cpf_hash was a histogram bound.)
TEST(DiskErasureTest, StatisticsThatSampledThePersonAreRebuiltWithoutThem) {
  auto pg = localsvc::LocalPostgres::Start({.settings = {"autovacuum=off"}});
  ASSERT_TRUE(pg.ok()) << pg.message();
  auto conn = Connect((*pg)->Url());
  // Hashes, as the platform's cpf_hash: values pglz can't fold into one another.
  ASSERT_TRUE(conn.Exec("CREATE TABLE s (cpf_hash text, nome text); INSERT INTO s SELECT "
                        "md5('pessoa' || g), 'Nome ' || g FROM generate_series(1, 40) g; "
                        "ANALYZE s")
                  .ok());
  const std::string person = Scalar(conn, "SELECT md5('pessoa37')");
  for (std::string sql : {"DELETE FROM s WHERE cpf_hash = '" + person + "'",
                          std::string("VACUUM s"), std::string("CHECKPOINT")}) {
    ASSERT_TRUE(conn.Exec(sql).ok()) << sql;
  }
  const fs::path data = Scalar(conn, "SHOW data_directory");
  auto statistics_hold = [&] {
    for (const char* rel :
         {"'pg_statistic'::regclass",
          "(SELECT reltoastrelid FROM pg_class WHERE oid = 'pg_statistic'::regclass)"}) {
      fs::path file = data / Scalar(conn, fmt::format("SELECT pg_relation_filepath({})", rel));
      if (!subject::ScanFileList({file}, {{"cpf_hash", person}}, {}).found.empty()) return true;
    }
    return false;
  };
  ASSERT_TRUE(statistics_hold()) << "ANALYZE should have sampled the person's hash";

  auto done = subject::RewriteRelationsHolding(conn, {"s"}, {{"cpf_hash", person}}, {});
  ASSERT_TRUE(done.ok()) << done.message();
  EXPECT_TRUE((*done)["statistics_rebuilt"].get<bool>()) << done->dump();
  ASSERT_TRUE(conn.Exec("CHECKPOINT").ok());
  EXPECT_FALSE(statistics_hold());
  EXPECT_FALSE(Holds(data / "base", person));
  // The table keeps statistics, of its live rows.
  EXPECT_EQ(Scalar(conn, "SELECT count(*) FROM pg_stats WHERE tablename = 's'"), "2");
}

TEST(DiskErasureTest, TheWarehousesWalBeforeTheErasureIsRemoved) {
  auto pg = localsvc::LocalPostgres::Start({.settings = {"wal_recycle=off"}});
  ASSERT_TRUE(pg.ok()) << pg.message();
  auto conn = Connect((*pg)->Url());
  const std::string marker = "pessoa-apagada-7f3a9c@exemplo.com.br";
  ASSERT_TRUE(
      conn.Exec("CREATE TABLE t (email text); INSERT INTO t VALUES ('" + marker + "')").ok());
  ASSERT_TRUE(conn.Exec("DELETE FROM t").ok());
  ASSERT_TRUE(conn.Exec("VACUUM FULL t").ok());
  fs::path wal = (*pg)->dir() / "data" / "pg_wal";
  ASSERT_TRUE(Holds(wal, marker)) << "the test's marker should be in the WAL first";
  auto done = subject::RemoveWalBeforeNow(conn, 60s, {});
  ASSERT_TRUE(done.ok()) << done.message();
  EXPECT_GT((*done)["oldest_segment_now"].get<std::string>(),
            (*done)["wal_segment_at_erasure"].get<std::string>());
  EXPECT_FALSE(Holds(wal, marker));
}

TEST(DiskErasureTest, AWarehouseThatRecyclesItsWalSaysSoAtTheBound) {
  auto pg = localsvc::LocalPostgres::Start({.settings = {"wal_recycle=on", "wal_keep_size=1GB"}});
  ASSERT_TRUE(pg.ok()) << pg.message();
  auto conn = Connect((*pg)->Url());
  auto done = subject::RemoveWalBeforeNow(conn, 1s, {});
  ASSERT_FALSE(done.ok());
  EXPECT_NE(done.message().find("wal_recycle is on"), std::string::npos) << done.message();
}

TEST(DiskErasureTest, RedisAppendOnlyFileIsRewrittenWithoutTheErasedRecord) {
  auto dir = localsvc::ScratchDir::Create("pdv-test-aof");
  ASSERT_TRUE(dir.ok());
  auto redis = localsvc::LocalRedis::Start({.dir = dir->path(), .persistent = true});
  ASSERT_TRUE(redis.ok()) << redis.message();
  auto client = redis::Client::Connect((*redis)->Url());
  ASSERT_TRUE(client.ok()) << client.message();
  const std::string marker = "Maria-Apagada-9c2e";
  ASSERT_TRUE(client->Command({"HSET", "pdv:c:1", "f", marker}).ok());
  ASSERT_TRUE(client->Command({"HDEL", "pdv:c:1", "f"}).ok());
  ASSERT_TRUE(WaitFor(10s, [&] { return Holds(dir->path(), marker); }));
  auto done = subject::RewriteAppendOnlyFile(*client, 60s, {});
  ASSERT_TRUE(done.ok()) << done.message();
  EXPECT_TRUE((*done)["rewritten"].get<bool>());
  EXPECT_FALSE(Holds(dir->path(), marker));
  // A server without an AOF: nothing to rewrite, and said so.
  auto volatile_redis = localsvc::LocalRedis::Start({});
  ASSERT_TRUE(volatile_redis.ok());
  auto other = redis::Client::Connect((*volatile_redis)->Url());
  ASSERT_TRUE(other.ok());
  done = subject::RewriteAppendOnlyFile(*other, 10s, {});
  ASSERT_TRUE(done.ok()) << done.message();
  EXPECT_FALSE((*done)["rewritten"].get<bool>());
}

TEST(DiskErasureTest, APlaintextCpfListLosesThePersonsLineOnly) {
  auto dir = localsvc::ScratchDir::Create("pdv-test-cpfs");
  ASSERT_TRUE(dir.ok());
  fs::path file = dir->path() / "cpfs.txt";
  std::ofstream(file) << "52998224725\n11144477735\n39053344705\n";
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  auto removed = subject::RemoveLinesHolding(file, {"11144477735"});
  ASSERT_TRUE(removed.ok()) << removed.message();
  EXPECT_EQ(*removed, 1);
  EXPECT_EQ(ReadFile(file), "52998224725\n39053344705\n");
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(*subject::RemoveLinesHolding(dir->path() / "absent.txt", {"1"}), 0);
}

}  // namespace
}  // namespace pdv::testing
