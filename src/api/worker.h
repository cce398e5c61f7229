#pragma once

// One event loop of `pdv serve` (Worker): its acceptor on the shared port (SO_REUSEPORT),
// the connection caps checked at accept, the sweep that closes connections past their
// deadline, the drain at shutdown, and what the loop's sessions share: its pipelined
// Redis connection, the customer store, the API keys' states and the request limits.
// Also the Asio types every file of the loop uses.

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <unordered_map>
#include <vector>

#include "api/customer_store.h"
#include "api/deadlines.h"
#include "api/key_limits.h"
#include "api/key_states.h"
#include "api/request.h"
#include "api/shared_state.h"
#include "common/accept_errors.h"
#include "common/cpf_hasher.h"
#include "common/redis_url.h"
#include "common/status.h"
#include "metrics/registry.h"
#include "redis/async_commands.h"

namespace pdv::api {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
// The loop's own executor type, not Asio's type-erased default: every handler and
// operation on a connection would otherwise pay for the erasure.
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;

// Opens `acceptor` and binds it to `at` (address reuse on; with `share_port`,
// SO_REUSEPORT too, so that every loop binds the same port); ec says what failed.
template <class AnyAcceptor>
void OpenAndBind(AnyAcceptor& acceptor, const tcp::endpoint& at, bool share_port,
                 boost::system::error_code& ec) {
  acceptor.open(at.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && share_port) {
    int one = 1;
    ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  }
  if (!ec) acceptor.bind(at, ec);
}

// What the worker needs of a session, whatever its transport.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Shutdown: close now if idle, else after the reply in flight.
  virtual void Shutdown() = 0;
  // Its deadline (idle, read or write) passed: closes the connection.
  virtual void Expire() = 0;
};

// Construction, Listen, Start and Run on one thread, Stop from any; everything else on
// the loop's own thread. Borrows `shared`, which outlives it.
class Worker {
 public:
  Worker(SharedState& shared, const redis::Endpoint& endpoint);

  // Fails when `endpoint` cannot be bound or listened on.
  Status Listen(const tcp::endpoint& endpoint);
  int port() const { return acceptor_.local_endpoint().port(); }
  void Start();
  void Run() { io_.run(); }
  // From any thread: stop accepting; idle sessions close, busy ones after their reply;
  // then the Redis connection closes and Run returns.
  void Stop();

  SharedState& shared() { return shared_; }
  redis::AsyncCommands& redis() { return *redis_; }
  const CpfHasher& hasher() const { return hasher_; }
  CustomerStore& store() { return store_; }
  KeyStates& keys() { return keys_; }
  KeyLimits& limits() { return limits_; }
  AddressLimits& addresses() { return addresses_; }

  // A connection's slot in the loop's deadlines; given back when it closes.
  uint32_t Register(const std::shared_ptr<SessionBase>& session);
  void Unregister(uint32_t slot);
  Deadlines& deadlines() { return deadlines_; }

  // The request counter and latency histogram of (route, status), looked up in the
  // shared registry only the first time on this loop.
  std::pair<metrics::Gauge*, metrics::Histogram*> Count(Route route, unsigned status);
  // At most one log line a second per loop: a Redis outage fails every request.
  void LogRedisError(const Status& why);

 private:
  void Accept();
  // Starts a session on an accepted connection within the caps, or closes it at once.
  void Admit(Socket socket);
  void DrainThenClose(Clock::time_point deadline);
  // Every kSweepInterval: closes the connections past their deadline. Ends once the
  // loop stopped accepting and has no connection left.
  void Sweep();
  static constexpr auto kSweepInterval = std::chrono::milliseconds(250);

  SharedState& shared_;
  // Before io_: the sessions its pending handlers hold unregister when io_ destroys them.
  Deadlines deadlines_;
  std::vector<std::weak_ptr<SessionBase>> by_slot_;  // the session of each slot
  asio::io_context io_{1};
  Acceptor acceptor_;
  // Closes connections past their deadline (Worker::Sweep): one timer for the loop, not
  // one armed and cancelled with every read and write.
  asio::steady_timer sweep_{io_};
  asio::steady_timer accept_retry_{io_};
  AcceptErrors accept_errors_;
  std::shared_ptr<redis::AsyncCommands> redis_;
  CpfHasher hasher_;
  CustomerStore store_;
  KeyStates keys_;
  KeyLimits limits_;
  AddressLimits addresses_;
  Clock::time_point last_error_log_{};
  std::unordered_map<size_t, std::pair<metrics::Gauge*, metrics::Histogram*>> counted_;
};

}  // namespace pdv::api
