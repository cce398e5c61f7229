#pragma once

// Several hosts on one machine, for the multi-host tests: each host is a Linux network
// namespace with a veth link to one bridge, as machines on one switch. A test made them
// and removes them (also when it fails); faults are a link cut (`ip link set … down`) and,
// where the kernel has netem, added latency.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace pdv::testing {

class NetworkHosts {
 public:
  // Why hosts cannot be made here ("" if they can): not root, or no `ip netns`. A test
  // that needs them is skipped with this reason, never passed.
  static std::string Unavailable();
  // One namespace per name, all on a /24 of their own (10.213.N.0/24, N free), and an
  // address on the bridge for this process (the test's control plane). Names from dead
  // test processes are removed first.
  static Result<std::unique_ptr<NetworkHosts>> Create(const std::vector<std::string>& hosts);
  ~NetworkHosts();
  NetworkHosts(const NetworkHosts&) = delete;
  NetworkHosts& operator=(const NetworkHosts&) = delete;

  // The host's address on the switch.
  const std::string& Address(const std::string& host) const;
  // The `ip netns` name of the host.
  std::string Namespace(const std::string& host) const;
  // Prefix that runs a command on the host: {"ip", "netns", "exec", <namespace>}.
  std::vector<std::string> On(const std::string& host) const;

  // The host's link down (nothing reaches it, it reaches nothing) or up again.
  Status CutLink(const std::string& host);
  Status HealLink(const std::string& host);
  // Whether `tc qdisc … netem` works on this kernel; if not, why (for the test's output).
  std::string LatencyUnavailable();
  // Every packet to and from the host delayed by `ms` (netem on both ends of its link).
  Status AddLatency(const std::string& host, int ms);

  // Runs the calling thread in the host's namespace while it lives: sockets it opens and
  // processes it starts (their parent-death signal follows this thread) are on that host.
  class Inside {
   public:
    Inside(const NetworkHosts& hosts, const std::string& host);
    ~Inside();
    Inside(const Inside&) = delete;
    Inside& operator=(const Inside&) = delete;
    bool ok() const { return ok_; }

   private:
    int previous_ = -1;
    bool ok_ = false;
  };

 private:
  struct Host {
    std::string address;
    std::string netns;
    std::string link;  // the bridge's end of its veth
    std::string peer;  // the host's end
  };
  NetworkHosts() = default;
  Status Add(const std::string& name, int index);

  std::string prefix_;
  std::string bridge_;
  std::string subnet_;  // "10.213.N."
  bool forward_rule_ = false;
  std::map<std::string, Host> hosts_;
};

}  // namespace pdv::testing
