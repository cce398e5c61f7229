#include "network_hosts.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <regex>

#include "localsvc/child_process.h"
#include "test_support.h"

namespace pdv::testing {
namespace fs = std::filesystem;

namespace {

Status Run(const std::vector<std::string>& argv) {
  fs::path log = fs::temp_directory_path() / fmt::format("pdv-netns-{}.log", ::getpid());
  std::error_code ec;
  fs::remove(log, ec);
  Status s =
      localsvc::RunCommand({.argv = argv, .log_file = log.string()}, std::chrono::seconds(30));
  fs::remove(log, ec);
  return s;
}

// Gone, or this very process: a name with our pid is a dead process's whose pid we got
// (this process makes its hosts once at a time).
bool ProcessGone(const std::string& pid) {
  pid_t p = static_cast<pid_t>(std::stol(pid));
  return p == ::getpid() || (::kill(p, 0) != 0 && errno == ESRCH);
}

// Namespaces and bridges whose test process has died (killed before its clean-up ran).
void RemoveLeftovers() {
  std::error_code ec;
  static const std::regex netns_name(R"(pv(\d+)-.*)");
  for (const auto& entry : fs::directory_iterator("/run/netns", ec)) {
    std::smatch m;
    std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, netns_name) && ProcessGone(m[1])) {
      (void)Run({"ip", "netns", "del", name});
    }
  }
  static const std::regex bridge_name(R"(pv(\d+)br)");
  for (const auto& entry : fs::directory_iterator("/sys/class/net", ec)) {
    std::smatch m;
    std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, bridge_name) && ProcessGone(m[1])) {
      (void)Run({"ip", "link", "del", name});
    }
  }
}

}  // namespace

std::string NetworkHosts::Unavailable() {
  constexpr char kHow[] =
      " (run them as root on a host, a VM or a privileged container where `ip netns add` and "
      "`ip netns exec` work: ctest -L multihost)";
  if (::geteuid() != 0) return std::string("needs root to make network namespaces") + kHow;
  if (::access("/usr/sbin/ip", X_OK) != 0 && ::access("/sbin/ip", X_OK) != 0 &&
      ::access("/usr/bin/ip", X_OK) != 0) {
    return std::string("the ip command (iproute2) is not installed") + kHow;
  }
  // Everything a test host needs, tried once on a throw-away host: a namespace, a veth
  // link into it, and a command run inside (`ip -n`/`ip netns exec` remount /sys in a
  // mount namespace of their own, which fails in a chroot whose root is no mount point
  // and in an unprivileged container).
  std::string probe = fmt::format("pv{}-probe", ::getpid());
  std::string link = fmt::format("pv{}probe", ::getpid());
  (void)Run({"ip", "netns", "del", probe});
  std::string why;
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"ip", "netns", "add", probe},
           {"ip", "link", "add", link, "type", "veth", "peer", "name", link + "p"},
           {"ip", "link", "set", link + "p", "netns", probe},
           {"ip", "-n", probe, "link", "set", "lo", "up"}}) {
    if (Status s = Run(argv); !s.ok()) {
      why = "network namespaces can't be made here: " + s.message();
      std::replace(why.begin(), why.end(), '\n', ' ');
      while (!why.empty() && why.back() == ' ') why.pop_back();
      break;
    }
  }
  (void)Run({"ip", "link", "del", link});
  (void)Run({"ip", "netns", "del", probe});
  return why.empty() ? why : why + kHow;
}

Result<std::unique_ptr<NetworkHosts>> NetworkHosts::Create(const std::vector<std::string>& hosts) {
  RemoveLeftovers();
  std::unique_ptr<NetworkHosts> net(new NetworkHosts());
  net->prefix_ = fmt::format("pv{}", ::getpid());
  net->bridge_ = net->prefix_ + "br";
  std::string in_use = RunCommandOutput({"ip", "-o", "-4", "addr", "show"});
  for (int n = ::getpid() % 250 + 1, tried = 0; tried < 250; ++tried, n = n % 250 + 1) {
    std::string subnet = fmt::format("10.213.{}.", n);
    if (in_use.find(subnet) == std::string::npos) {
      net->subnet_ = subnet;
      break;
    }
  }
  if (net->subnet_.empty()) return Status::Error("no free 10.213.N.0/24 for the test hosts");
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"ip", "link", "add", net->bridge_, "type", "bridge"},
           {"ip", "addr", "add", net->subnet_ + "254/24", "dev", net->bridge_},
           {"ip", "link", "set", net->bridge_, "up"}}) {
    if (Status s = Run(argv); !s.ok()) return s;
  }
  // Where a FORWARD policy drops bridged traffic (Docker sets one), let the test's bridge
  // through; best effort: without iptables there is no such policy either.
  if (::access("/usr/sbin/iptables", X_OK) == 0 &&
      Run({"iptables", "-I", "FORWARD", "-i", net->bridge_, "-o", net->bridge_, "-j", "ACCEPT"})
          .ok()) {
    net->forward_rule_ = true;
  }
  int index = 1;
  for (const auto& name : hosts) {
    if (Status s = net->Add(name, index++); !s.ok()) return s;
  }
  return net;
}

Status NetworkHosts::Add(const std::string& name, int index) {
  Host host{.address = subnet_ + std::to_string(index),
            .netns = prefix_ + "-" + name,
            .link = fmt::format("{}h{}", prefix_, index),
            .peer = fmt::format("{}p{}", prefix_, index)};
  hosts_[name] = host;  // recorded first: the destructor removes what was made
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"ip", "netns", "add", host.netns},
           {"ip", "link", "add", host.link, "type", "veth", "peer", "name", host.peer},
           {"ip", "link", "set", host.peer, "netns", host.netns},
           {"ip", "link", "set", host.link, "master", bridge_, "up"},
           {"ip", "-n", host.netns, "addr", "add", host.address + "/24", "dev", host.peer},
           {"ip", "-n", host.netns, "link", "set", host.peer, "up"},
           {"ip", "-n", host.netns, "link", "set", "lo", "up"}}) {
    if (Status s = Run(argv); !s.ok()) return s;
  }
  return Status::Ok();
}

NetworkHosts::~NetworkHosts() {
  for (const auto& [name, host] : hosts_) {
    (void)Run({"ip", "netns", "del", host.netns});  // takes its veth pair with it
    (void)Run({"ip", "link", "del", host.link});    // in case the move never happened
  }
  (void)Run({"ip", "link", "del", bridge_});
  if (forward_rule_) {
    (void)Run({"iptables", "-D", "FORWARD", "-i", bridge_, "-o", bridge_, "-j", "ACCEPT"});
  }
}

const std::string& NetworkHosts::Address(const std::string& host) const {
  return hosts_.at(host).address;
}

std::string NetworkHosts::Namespace(const std::string& host) const { return hosts_.at(host).netns; }

std::vector<std::string> NetworkHosts::On(const std::string& host) const {
  return {"ip", "netns", "exec", hosts_.at(host).netns};
}

Status NetworkHosts::CutLink(const std::string& host) {
  return Run({"ip", "link", "set", hosts_.at(host).link, "down"});
}

Status NetworkHosts::HealLink(const std::string& host) {
  return Run({"ip", "link", "set", hosts_.at(host).link, "up"});
}

std::string NetworkHosts::LatencyUnavailable() {
  const Host& any = hosts_.begin()->second;
  Status s = Run({"tc", "qdisc", "add", "dev", any.link, "root", "netem", "delay", "1ms"});
  if (!s.ok()) return "tc netem is not available on this kernel: " + s.message();
  (void)Run({"tc", "qdisc", "del", "dev", any.link, "root"});
  return "";
}

Status NetworkHosts::AddLatency(const std::string& host, int ms) {
  const Host& h = hosts_.at(host);
  std::string delay = std::to_string(ms) + "ms";
  if (Status s = Run({"tc", "qdisc", "replace", "dev", h.link, "root", "netem", "delay", delay});
      !s.ok()) {
    return s;
  }
  return Run({"ip", "netns", "exec", h.netns, "tc", "qdisc", "replace", "dev", h.peer, "root",
              "netem", "delay", delay});
}

NetworkHosts::Inside::Inside(const NetworkHosts& hosts, const std::string& host) {
  // This thread's namespace, not the process's: other threads stay where they are.
  previous_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int target = ::open(("/run/netns/" + hosts.Namespace(host)).c_str(), O_RDONLY | O_CLOEXEC);
  ok_ = previous_ >= 0 && target >= 0 && ::setns(target, CLONE_NEWNET) == 0;
  if (target >= 0) ::close(target);
}

NetworkHosts::Inside::~Inside() {
  if (previous_ >= 0) {
    if (ok_) (void)::setns(previous_, CLONE_NEWNET);
    ::close(previous_);
  }
}

}  // namespace pdv::testing
