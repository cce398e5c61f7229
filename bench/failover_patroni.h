#pragma once

// bench/failover's Patroni path (issue 34): the OLTP under Patroni with a permanent slot,
// its primary SIGKILLed under a witnessed workload; no resync.

#include <string>

namespace pdv::bench {

// Prints the kill -> new primary and kill -> its first change in RAW times, and the
// changes lost or doubled (the new primary's acknowledged commits against RAW).
void RunPatroniFailover(const std::string& pdv, int customers);

}  // namespace pdv::bench
