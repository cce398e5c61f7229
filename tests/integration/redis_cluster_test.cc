// Issue 31, item 6: a redis:// URL naming a node of a real Redis Cluster fails with an
// error that says so (not the bare "MOVED 8931 host:port"), for both clients; the
// redis+cluster:// URL of the same nodes follows the redirections as before.

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include "localsvc/redis_cluster.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "redis/async_client.h"
#include "redis/async_cluster.h"
#include "redis/client.h"

namespace pdv::testing {
namespace {

using namespace std::chrono_literals;

class RedisClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = localsvc::LocalRedisCluster::Start("cluster-test-password-0123");
    ASSERT_TRUE(cluster.ok()) << cluster.message();
    cluster_ = std::move(*cluster);
  }

  // The keys k0..k19 that the first node does not serve (it answers MOVED for them).
  std::vector<std::string> KeysElsewhere() {
    auto node = redis::Client::Connect(cluster_->nodes().front()->Url());
    EXPECT_TRUE(node.ok()) << node.message();
    std::vector<std::string> keys;
    for (int i = 0; node.ok() && i < 20; ++i) {
      std::string key = "k" + std::to_string(i);
      if (!node->Command({"GET", key}).ok()) keys.push_back(key);
    }
    return keys;
  }

  // One command through `client` on its own loop: the error ("" for a success).
  static std::string AsyncError(boost::asio::io_context& io, redis::AsyncCommands& client,
                                const std::string& key) {
    std::optional<std::string> error;
    client.Command({"GET", key},
                   [&](const Status& s, redisReply*) { error = s.ok() ? "" : s.message(); });
    io.restart();
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!error && std::chrono::steady_clock::now() < deadline) io.run_for(10ms);
    return error.value_or("no reply");
  }

  std::unique_ptr<localsvc::LocalRedisCluster> cluster_;
};

void ExpectSaysItIsAClusterNode(const std::string& message) {
  EXPECT_NE(message.find("is a Redis Cluster node"), std::string::npos) << message;
  EXPECT_NE(message.find("redis+cluster://"), std::string::npos) << message;
}

TEST_F(RedisClusterTest, APlainUrlNamingAClusterNodeSaysToUseRedisClusterForBothClients) {
  auto keys = KeysElsewhere();
  ASSERT_FALSE(keys.empty()) << "every key on the first node: no MOVED to see";
  auto plain = redis::Client::Connect(cluster_->nodes().front()->Url());
  ASSERT_TRUE(plain.ok()) << plain.message();
  auto r = plain->Command({"GET", keys.front()});
  ASSERT_FALSE(r.ok());
  ExpectSaysItIsAClusterNode(r.message());
  EXPECT_EQ(r.status().code(), redis::kReplyError);
  EXPECT_FALSE(redis::ClusterRedirection(r.status()));
  // The same in a pipeline.
  plain->Append({"GET", keys.front()});
  auto piped = plain->GetReply();
  ASSERT_FALSE(piped.ok());
  ExpectSaysItIsAClusterNode(piped.message());

  boost::asio::io_context io;
  auto endpoint = redis::ParseRedisUrl(cluster_->nodes().front()->Url());
  ASSERT_TRUE(endpoint.ok()) << endpoint.message();
  auto async = std::make_shared<redis::AsyncClient>(io, *endpoint, 2s);
  ExpectSaysItIsAClusterNode(AsyncError(io, *async, keys.front()));
  async->Close();

  // redis+cluster:// over the same nodes follows the redirections, both clients.
  auto cluster = redis::Client::Connect(cluster_->Url());
  ASSERT_TRUE(cluster.ok()) << cluster.message();
  ASSERT_TRUE(cluster->Command({"SET", keys.front(), "v"}).ok());
  auto got = cluster->Command({"GET", keys.front()});
  ASSERT_TRUE(got.ok()) << got.message();
  EXPECT_EQ(got->str(), "v");
  auto cluster_endpoint = redis::ParseRedisUrl(cluster_->Url());
  ASSERT_TRUE(cluster_endpoint.ok()) << cluster_endpoint.message();
  auto async_cluster = std::make_shared<redis::AsyncCluster>(io, *cluster_endpoint, 2s);
  async_cluster->Start();
  std::string error = "not tried";
  auto deadline = std::chrono::steady_clock::now() + 10s;
  // Until the slot map is known (fetched off the loop), commands fail as unavailable.
  while (!error.empty() && std::chrono::steady_clock::now() < deadline) {
    error = AsyncError(io, *async_cluster, keys.front());
    if (!error.empty()) io.run_for(50ms);
  }
  EXPECT_EQ(error, "");
  async_cluster->Close();
}

}  // namespace
}  // namespace pdv::testing
