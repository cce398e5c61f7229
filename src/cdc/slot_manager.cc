#include "cdc/slot_manager.h"

#include <fmt/format.h>

#include <chrono>

#include "pg/reconnect.h"

namespace pdv::cdc {

using warehouse::Checkpoint;

Checkpoint SlotManager::FromThisSource(Checkpoint c) const {
  c.source_system_id = identity_.system_id;
  c.source_timeline = identity_.timeline;
  return c;
}

SlotManager::SlotLoss SlotManager::WhySlotIsGone(const Checkpoint& c) const {
  if (c.source_system_id.empty()) return SlotLoss::kUnknown;
  if (c.source_system_id != identity_.system_id) return SlotLoss::kOtherSystem;
  if (identity_.timeline > c.source_timeline) return SlotLoss::kFailover;
  return SlotLoss::kDropped;
}

std::string SlotManager::SlotLossText(const Checkpoint& c) const {
  switch (WhySlotIsGone(c)) {
    case SlotLoss::kFailover:
      return fmt::format("the source failed over (timeline {} -> {}, system {})", c.source_timeline,
                         identity_.timeline, identity_.system_id);
    case SlotLoss::kOtherSystem:
      return fmt::format(
          "the source is another database cluster (system identifier {}; RAW was streamed "
          "from {})",
          identity_.system_id, c.source_system_id);
    case SlotLoss::kDropped:
      return fmt::format("the slot was dropped on the same source (system {}, timeline {})",
                         identity_.system_id, identity_.timeline);
    case SlotLoss::kUnknown:
      break;
  }
  return "the slot is missing on the source (a failover, or dropped by an operator?)";
}

Status SlotManager::EnsurePublication() {
  auto pub = source_.Exec(fmt::format("SELECT 1 FROM pg_publication WHERE pubname = {}",
                                      source_.Literal(options_.publication)));
  if (!pub.ok()) return pub.status();
  if (pub->rows() == 1) return Status::Ok();
  auto created = source_.Exec(
      fmt::format("CREATE PUBLICATION {} FOR TABLE {}.{}", source_.Identifier(options_.publication),
                  source_.Identifier(options_.schema), source_.Identifier(options_.table)));
  if (!created.ok()) return created.status();
  log_.Info("cdc_publication_created", {{"publication", options_.publication}});
  return Status::Ok();
}

pdv::Result<bool> SlotManager::SlotExists() {
  auto slot = source_.Exec(fmt::format("SELECT 1 FROM pg_replication_slots WHERE slot_name = {}",
                                       source_.Literal(options_.slot)));
  if (!slot.ok()) return slot.status();
  return slot->rows() == 1;
}

Status SlotManager::DropSlot() {
  auto r = source_.Exec(
      fmt::format("SELECT pg_drop_replication_slot({})", source_.Literal(options_.slot)));
  return r.status();
}

// The stage's role may end its own role's backends; the former holder's writes are
// fenced anyway. The slot is then ours now rather than after wal_sender_timeout.
Status SlotManager::TakeFromFormerHolder(std::stop_token stop) {
  std::string slot = source_.Literal(options_.slot);
  auto ended = source_.Exec(fmt::format(
      "SELECT active_pid, pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE "
      "slot_name = {} AND active_pid IS NOT NULL",
      slot));
  if (!ended.ok()) return ended.status();
  if (ended->rows() == 0) return Status::Ok();
  log_.Warn("cdc_slot_taken_over", {{"slot", options_.slot}, {"former_pid", ended->str(0, 0)}});
  for (int i = 0; i < 250 && !stop.stop_requested(); ++i) {
    auto active = source_.Exec(fmt::format(
        "SELECT 1 FROM pg_replication_slots WHERE slot_name = {} AND active_pid IS NOT NULL",
        slot));
    if (!active.ok()) return active.status();
    if (active->rows() == 0) return Status::Ok();
    pg::SleepFor(std::chrono::milliseconds(20), stop);
  }
  return Status::Ok();  // Start says what is wrong if it still is
}

}  // namespace pdv::cdc
