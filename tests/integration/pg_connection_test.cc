// pg::Connection::ExecPrepared on a real PostgreSQL: a statement is prepared once per
// connection and reused, with new parameters each time, and prepared again when the
// session lost it (DEALLOCATE ALL).

#include <gtest/gtest.h>

#include <algorithm>

#include "localsvc/local_postgres.h"
#include "pg/connection.h"
#include "pg/copy_text.h"
#include "pg/scram_verifier.h"
#include "test_support.h"

namespace pdv::testing {
namespace {

TEST(PgConnectionTest, ExecPreparedPreparesOnceAndSurvivesDeallocate) {
  auto pg = localsvc::LocalPostgres::Start({});
  ASSERT_TRUE(pg.ok()) << pg.message();
  auto conn = Connect((*pg)->Url());
  const std::string sql = "select $1::int + 1";
  auto prepared_count = [&] {
    return ScalarInt(conn, "select count(*) from pg_prepared_statements");
  };
  for (int i = 0; i < 3; ++i) {
    auto r = conn.ExecPrepared(sql, {std::to_string(i)});
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ(r->str(0, 0), std::to_string(i + 1));
  }
  EXPECT_EQ(prepared_count(), 1);  // one statement for the three runs
  auto other = conn.ExecPrepared("select $1::text || 'x'", {std::string("a")});
  ASSERT_TRUE(other.ok()) << other.message();
  EXPECT_EQ(other->str(0, 0), "ax");
  EXPECT_EQ(prepared_count(), 2);

  ASSERT_TRUE(conn.Exec("DEALLOCATE ALL").ok());
  auto again = conn.ExecPrepared(sql, {std::string("41")});
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(again->str(0, 0), "42");
  EXPECT_EQ(prepared_count(), 1);

  // A statement PostgreSQL refuses is an error naming it, and nothing is kept.
  auto bad = conn.ExecPrepared("select no_such_column from pg_class where oid = $1", {"1"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("no_such_column"), std::string::npos) << bad.message();
  EXPECT_EQ(prepared_count(), 1);
}

}  // namespace
}  // namespace pdv::testing

namespace pdv::testing {
namespace {

// Issue 30 (8): a role's password is set from a verifier built here; the server stores
// it as sent (it never saw the password), and the password, and only it, logs in.
TEST(PgConnectionTest, ScramVerifierBuiltClientSideIsStoredAsSentAndLogsIn) {
  auto pg = localsvc::LocalPostgres::Start({});
  ASSERT_TRUE(pg.ok()) << pg.message();
  auto admin = Connect((*pg)->Url());
  auto verifier = pg::ScramSha256Verifier("s3cret-Pass.word");
  ASSERT_TRUE(verifier.ok()) << verifier.message();
  EXPECT_TRUE(verifier->starts_with("SCRAM-SHA-256$4096:")) << *verifier;
  auto again = pg::ScramSha256Verifier("s3cret-Pass.word");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *verifier) << "a fresh salt each time";
  ASSERT_TRUE(
      admin.Exec("CREATE ROLE scram_probe LOGIN PASSWORD " + admin.Literal(*verifier)).ok());
  EXPECT_EQ(Scalar(admin, "SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_probe'"),
            *verifier);
  auto as = [&](const std::string& password) {
    return pg::Connection::Connect((*pg)->UrlAs("scram_probe", password, "postgres"));
  };
  auto good = as("s3cret-Pass.word");
  EXPECT_TRUE(good.ok()) << good.message();
  auto bad = as("s3cret-Pass.worD");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("password authentication failed"), std::string::npos)
      << bad.message();
  EXPECT_FALSE(pg::ScramSha256Verifier("caf\xc3\xa9").ok()) << "non-ASCII is refused";
}

// What the server's COPY text writes, CopyTextLine reads back as the values themselves:
// every character a name or a campaign could hold (tab, newline, backslash, control
// characters, non-ASCII), NULL and the empty string apart.
TEST(PgConnectionTest, CopyTextLinesReadBackWhatTheServerHolds) {
  auto pg = localsvc::LocalPostgres::Start({});
  ASSERT_TRUE(pg.ok()) << pg.message();
  auto conn = Connect((*pg)->Url());
  ASSERT_TRUE(conn.Exec("CREATE TABLE v (a text, b text); INSERT INTO v VALUES "
                        "(E'tab\\there\\nnew\\\\line\\r', NULL), ('', 'Jos\xc3\xa9'), "
                        "(E'\\x01\\x7f\\b\\f\\v', E'a\\\\N')")
                  .ok());
  auto expected = conn.Exec("SELECT a, b FROM v ORDER BY a");
  ASSERT_TRUE(expected.ok()) << expected.message();
  std::vector<std::pair<std::string, std::string>> read;
  pg::CopyTextLine line;
  ASSERT_TRUE(conn.CopyOut("COPY (SELECT a, b FROM v ORDER BY a) TO STDOUT",
                           [&](std::string_view text) -> Status {
                             if (Status s = line.Parse(text); !s.ok()) return s;
                             read.emplace_back(
                                 std::string(line.get(0)),
                                 line.is_null(1) ? "<NULL>" : std::string(line.get(1)));
                             return Status::Ok();
                           })
                  .ok());
  ASSERT_EQ(read.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(read[i].first, expected->str(i, 0)) << i;
    EXPECT_EQ(read[i].second, expected->is_null(i, 1) ? "<NULL>" : expected->str(i, 1)) << i;
  }
  EXPECT_EQ(std::count_if(read.begin(), read.end(), [](auto& r) { return r.second == "<NULL>"; }),
            1);
}

}  // namespace
}  // namespace pdv::testing
