#pragma once

// One client connection of `pdv serve` (Session), over plain TCP or TLS: reading each
// request within its deadlines, answering the operational routes (/health, /ready,
// /metrics, /openapi.json, /status, /status.json), the data routes' checks in order (the
// client's address, its API key, the key's limits) and their answers from the
// customer store, and writing each answer. Runs on its worker's loop only.

// clang-format off
#include <utility>  // before any Asio header under C++20 (PLATFORM-NOTES.md)
// clang-format on

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "api/customer_store.h"
#include "api/key_limits.h"
#include "api/key_states.h"
#include "api/request.h"
#include "api/worker.h"

namespace pdv::api {

namespace beast = boost::beast;
namespace http = beast::http;

// Stream: Socket or beast::ssl_stream<Socket>. Its deadline is checked by the loop's
// sweep (Worker::Sweep). Owned by the shared_ptrs its pending operations hold; it
// borrows its worker, which outlives it.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  // `peer`: the client's address, already counted in SharedState::address_connections;
  // `tls`: the TLS context, for an HTTPS session.
  template <class... Args>
  Session(Worker& w, std::string peer, Socket socket, Args&&... tls)
      : w_(w), stream_(std::move(socket), std::forward<Args>(tls)...), peer_(std::move(peer)) {
    w_.shared().open_connections->Add(1);
  }
  ~Session() override;
  // Registers with the worker, then the TLS handshake if any, then reads requests.
  void Start();
  void Shutdown() override;
  void Expire() override;  // the pending read or write ends (operation_aborted)

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, Socket>;
  Socket& LowestSocket() { return beast::get_lowest_layer(stream_); }
  // Clock::time_point{}: none (while the answer is looked up: Redis has its own timeout).
  void SetDeadline(Clock::time_point at) { w_.deadlines().Set(slot_, at); }
  void Close();
  // Shuts both directions down: the pending operation ends and the session with it.
  void ShutdownSocket();

  void Read();
  void ReadRequest();
  void OnReadError(beast::error_code ec);
  // The whole request is read: from now on its latency counts.
  void Begin();
  void Handle(const http::request<http::string_body>& req);
  void OnKeyState(KeyState state);
  void OnAdmission(const Admission& admission);
  void LookupCustomer();
  void LookupLegacy();
  // Answers a lookup's outcome that is not a record (503s); false for found / not found.
  bool ReplyFailed(const CustomerStore::Answer& answer);
  void Unavailable(const Status& why);
  double Elapsed() const;
  void Reply(http::status status, std::string_view body, bool close = false,
             const char* type = "application/json; charset=utf-8", std::string_view csp = {});

  Worker& w_;
  Stream stream_;
  std::string peer_;  // the client's address
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string answer_;  // the answer being written
  std::string body_;    // a customer's answer body (its buffer reused request to request)
  Route route_ = Route::kNotFound;
  std::string arg_;
  std::string key_;  // the request's API key
  bool keep_alive_ = true, busy_ = false, closing_ = false;
  int retry_after_ = 0;
  Clock::time_point started_{};
  uint32_t slot_ = 0;  // in the loop's deadlines
};

// Both are compiled once, in session.cc (Beast is expensive to compile).
extern template class Session<Socket>;
extern template class Session<beast::ssl_stream<Socket>>;

}  // namespace pdv::api
