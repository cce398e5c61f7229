#pragma once

// Active/standby for a stage: a lease row in the warehouse (platform.stage_leases) with a
// fencing token that grows with each new holder. Any number of instances of a stage run
// with the same configuration; one holds the lease and works, the others wait and say
// so. Expiry is judged by the warehouse's clock alone, so hosts' clocks do not matter.
// The holder's writes are fenced: platform.pdv_fence(stage, token), run in the write's
// own transaction just before COMMIT, fails it once a newer holder exists, so a holder
// that was cut off and comes back writes nothing.

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "common/log.h"
#include "common/status.h"
#include "pg/connection.h"

namespace pdv::pg {

struct LeaseOptions {
  std::string warehouse_url;
  std::string stage;     // "cdc", "transform", ...
  std::string instance;  // this instance's name; empty: DefaultInstanceName()
  // A holder that has not renewed for this long may be replaced.
  std::chrono::milliseconds ttl{3000};
  // How often a standby tries to take the lease.
  std::chrono::milliseconds poll{250};
};

// Error code of a lease this instance no longer holds (a newer holder, or renewals
// failing for a whole TTL): stop writing and wait as a standby.
inline constexpr char kLeaseLost[] = "lease_lost";
bool IsLeaseLost(const Status& s);

// "<hostname>:<pid>".
std::string DefaultInstanceName();

// Creates what the leases need where it is missing: platform.stage_leases,
// platform.stage_instances and platform.pdv_fence (the fence every holder's write
// transaction runs). Nothing when all exist (a stage's role may not create them); under
// an advisory lock, so stages starting together on a new warehouse do not race. This
// file owns that schema; the warehouse's own Init calls it too.
Status EnsureLeaseSchema(Connection& conn);

// Held, a lease renews itself on a thread of its own every third of the TTL, so that a
// long step of the stage (a snapshot, a full build) does not lose it.
class Lease {
 public:
  // Waits until this instance holds the stage's lease (while another holds it, this
  // instance is a standby: logged once as <stage>_standby and listed in
  // platform.stage_instances); nullptr when stopped first.
  static pdv::Result<std::unique_ptr<Lease>> Acquire(const LeaseOptions& options, Logger& log,
                                                     std::stop_token stop);
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease();

  int64_t token() const { return token_; }
  const std::string& instance() const { return options_.instance; }
  // Ok while held; kLeaseLost once a renewal found a newer holder, or when no renewal has
  // succeeded for a TTL (this instance may be cut off: the lease may already be someone
  // else's). Cheap: call it before each write.
  Status Keep();
  // Gives the lease up now (a clean stop), so that a standby takes over at once.
  void Release();
  // Stopped once the lease is lost (a renewal found a newer holder, or none succeeded for
  // a TTL): work waiting on it wakes then, not at its next Keep().
  std::stop_token lost_token() const { return lost_signal_.get_token(); }
  // The fencing statement for a write transaction of this holder:
  // "SELECT platform.pdv_fence('<stage>', <token>)".
  std::string FenceSql() const;

 private:
  Lease(LeaseOptions options, Connection conn, int64_t token);
  Status Renew();
  // Sets lost_ (mu_ held) and wakes whoever waits on lost_token().
  void MarkLost(Status why);
  void KeepRenewing(std::stop_token stop);

  const LeaseOptions options_;
  const int64_t token_;
  std::optional<Connection> conn_;  // the renewing thread's (Release's once it stopped)
  std::mutex mu_;
  std::chrono::steady_clock::time_point renewed_sent_{};  // of the last successful renewal
  Status lost_;                                           // set once: kLeaseLost
  bool released_ = false;
  std::stop_source lost_signal_;
  std::jthread renewer_;  // last: stopped and joined first
};

}  // namespace pdv::pg
