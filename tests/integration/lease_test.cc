// Issue 13: the stage lease (pg/lease.h) on a real PostgreSQL: one holder at a time, a
// standby takes an expired lease with a newer token, and a former holder's write
// transaction is refused by the fence even when it was opened while it held the lease.

#include "pg/lease.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "common/log.h"
#include "localsvc/local_postgres.h"
#include "pg/lease_runner.h"
#include "test_support.h"
#include "warehouse/warehouse.h"

namespace pdv::testing {
namespace {

using namespace std::chrono_literals;

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = localsvc::LocalPostgres::Start({});
    ASSERT_TRUE(pg.ok()) << pg.message();
    pg_ = std::move(*pg);
    // The warehouse's Init makes the lease tables and the fence.
    auto wh = warehouse::ConnectPostgresWarehouse(pg_->Url());
    ASSERT_TRUE(wh.ok()) << wh.message();
    // Instance "a" works as a role of its own, so that the test can make its renewals
    // fail (as a cut link would) by taking its UPDATE away.
    auto admin = Connect(pg_->Url());
    ASSERT_TRUE(admin
                    .Exec("CREATE ROLE lease_a LOGIN PASSWORD 'lease-a-password'; GRANT USAGE ON "
                          "SCHEMA platform TO lease_a; GRANT SELECT, INSERT, UPDATE ON "
                          "platform.stage_leases TO lease_a; GRANT SELECT, INSERT, UPDATE, "
                          "DELETE ON platform.stage_instances TO lease_a")
                    .ok());
  }
  pg::LeaseOptions Options(const std::string& instance) const {
    return {.warehouse_url = instance == "a" ? pg_->UrlAs("lease_a", "lease-a-password", "postgres")
                                             : pg_->Url(),
            .stage = "cdc",
            .instance = instance,
            .ttl = 1500ms,
            .poll = 50ms};
  }
  std::unique_ptr<localsvc::LocalPostgres> pg_;
  Logger log_{stderr, "lease-test"};
};

TEST_F(LeaseTest, OneHolderAStandbyTakesOverAndTheFormerHoldersWriteIsFenced) {
  auto first = pg::Lease::Acquire(Options("a"), log_, {});
  ASSERT_TRUE(first.ok() && *first) << first.message();
  pg::Lease& a = **first;
  EXPECT_EQ(a.token(), 1);

  // A writes under its lease: a transaction opened now, committed later.
  auto writer = Connect(pg_->Url());
  ASSERT_TRUE(writer.Exec("CREATE TABLE written (who text)").ok());
  ASSERT_TRUE(writer.Exec("BEGIN; INSERT INTO written VALUES ('a, late')").ok());

  // B waits as a standby while A renews.
  std::stop_source stop_b;
  std::optional<pdv::Result<std::unique_ptr<pg::Lease>>> second;
  std::thread standby([&] { second = pg::Lease::Acquire(Options("b"), log_, stop_b.get_token()); });
  // (A renews on its own thread, every 500 ms.) The window spans more than two TTLs, so
  // it shows the renewals; the TTL leaves a busy machine 1.5 s to run one.
  auto kept_until = std::chrono::steady_clock::now() + 4000ms;
  while (std::chrono::steady_clock::now() < kept_until) {
    ASSERT_TRUE(a.Keep().ok());
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_FALSE(second.has_value()) << "B took the lease while A renewed it";
  auto conn = Connect(pg_->Url());
  EXPECT_EQ(Scalar(conn,
                   "SELECT string_agg(instance || '=' || role, ',' ORDER BY instance) FROM "
                   "platform.stage_instances WHERE stage = 'cdc'"),
            "a=active,b=standby");

  // A cannot renew any more (as if cut off: its renewals stop): once expired, B holds it
  // with a newer token.
  ASSERT_TRUE(conn.Exec("REVOKE UPDATE ON platform.stage_leases FROM lease_a").ok());
  standby.join();
  ASSERT_TRUE(second.has_value() && second->ok() && **second);
  pg::Lease& b = ***second;
  EXPECT_EQ(b.token(), 2);
  // A finds out: no renewal for a TTL...
  EXPECT_TRUE(WaitFor(5s, [&] { return pg::IsLeaseLost(a.Keep()); }));
  // ...and its late commit, fenced, writes nothing.
  auto late = writer.Exec(a.FenceSql() + "; COMMIT");
  EXPECT_FALSE(late.ok());
  EXPECT_NE(late.message().find("pdv: fenced"), std::string::npos) << late.message();
  (void)writer.Exec("ROLLBACK");
  EXPECT_EQ(ScalarInt(conn, "SELECT count(*) FROM written"), 0);
  // B's write goes through.
  ASSERT_TRUE(writer.Exec("BEGIN; INSERT INTO written VALUES ('b')").ok());
  EXPECT_TRUE(writer.Exec(b.FenceSql() + "; COMMIT").ok());
  EXPECT_EQ(Scalar(conn, "SELECT string_agg(who, ',') FROM written"), "b");
  // Released, the lease is free at once.
  b.Release();
  auto third = pg::Lease::Acquire(Options("c"), log_, {});
  ASSERT_TRUE(third.ok() && *third);
  EXPECT_EQ((*third)->token(), 3);
}

// pg/lease_runner.h: the work runs while the lease is held; a lease taken by another
// holder stops the work at once (its stop token), the runner asks again and starts the
// work anew with a newer token; a clean stop releases the lease.
TEST_F(LeaseTest, TheRunnerStopsTheWorkWhenTheLeaseIsLostAndStartsItAgainWithANewerToken) {
  std::mutex mu;
  std::vector<int64_t> tokens;  // the lease token each call of the work ran under
  std::atomic<int> ended{0};    // calls that saw their stop token fire
  std::stop_source stop;
  Status result = Status::Error("not returned");
  std::thread runner([&] {
    result = pg::RunUnderLease({.lease = Options("b")}, log_, stop.get_token(),
                               [&](pg::LeaseHold& hold) -> Status {
                                 {
                                   std::lock_guard lock(mu);
                                   tokens.push_back(hold.token());
                                 }
                                 hold.Healthy();
                                 // Waits for nothing but its stop token.
                                 std::mutex m;
                                 std::condition_variable_any cv;
                                 std::unique_lock lock(m);
                                 cv.wait(lock, hold.stop_token(), [] { return false; });
                                 ++ended;
                                 return Status::Ok();
                               });
  });
  auto calls = [&] {
    std::lock_guard lock(mu);
    return tokens.size();
  };
  ASSERT_TRUE(WaitFor(30s, [&] { return calls() == 1; }));
  // Another holder takes the lease (as a takeover after a cut link would), for a moment.
  auto admin = Connect(pg_->Url());
  ASSERT_TRUE(admin
                  .Exec("UPDATE platform.stage_leases SET holder = 'intruder', token = token + 10, "
                        "expires_at = now() + interval '1 second' WHERE stage = 'cdc'")
                  .ok());
  ASSERT_TRUE(WaitFor(30s, [&] { return ended.load() == 1; })) << "the work was not stopped";
  ASSERT_TRUE(WaitFor(30s, [&] { return calls() == 2; })) << "the work was not started again";
  {
    std::lock_guard lock(mu);
    EXPECT_GT(tokens[1], tokens[0] + 10);  // newer than the intruder's
  }
  EXPECT_EQ(ScalarInt(admin,
                      "SELECT count(*) FROM platform.stage_leases WHERE stage = 'cdc' "
                      "AND holder = 'b' AND expires_at > now()"),
            1);
  stop.request_stop();
  runner.join();
  EXPECT_TRUE(result.ok()) << result.message();
  EXPECT_EQ(ended.load(), 2);
  // Released: a standby need not wait for the TTL.
  EXPECT_EQ(ScalarInt(admin,
                      "SELECT count(*) FROM platform.stage_leases WHERE stage = 'cdc' "
                      "AND expires_at > now()"),
            0);
}

// A failing work is retried with backoff while its failure is retryable; one that is not
// ends the run with that failure, and the lease is released.
TEST_F(LeaseTest, TheRunnerRetriesARetryableFailureAndEndsOnAnother) {
  int calls = 0;
  Status s = pg::RunUnderLease(
      {.lease = Options("b"), .retryable = [](const Status& f) { return f.code() == "again"; }},
      log_, {}, [&](pg::LeaseHold&) -> Status {
        ++calls;
        return calls < 3 ? Status::Error("not yet", "again") : Status::Error("bad project", "no");
      });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(s.code(), "no");
  EXPECT_EQ(s.message(), "bad project");
  auto admin = Connect(pg_->Url());
  EXPECT_EQ(ScalarInt(admin,
                      "SELECT count(*) FROM platform.stage_leases WHERE stage = 'cdc' "
                      "AND expires_at > now()"),
            0);
  // With a give-up time, a retryable failure that outlasts it ends the run too.
  calls = 0;
  s = pg::RunUnderLease({.lease = Options("b"), .give_up = 1ms}, log_, {},
                        [&](pg::LeaseHold&) -> Status {
                          ++calls;
                          std::this_thread::sleep_for(5ms);
                          return Status::Error("still failing", "again");
                        });
  EXPECT_GE(calls, 2);
  EXPECT_NE(s.message().find("gave up after"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace pdv::testing
