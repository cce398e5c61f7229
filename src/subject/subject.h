#pragma once

// A data subject's rights under Brazil's LGPD (Lei 13.709/2018) across every layer of
// the platform: access (art. 18, II: Export), erasure (art. 18, IV and VI; art. 16:
// Forget) and its proof (Verify). A subject is named by CPF (hashed with cpf_key, never
// kept) or by cliente_id. The erasure register (platform.erasure_register, and the file
// of Sources::erasure_register, which a restore of the warehouse cannot undo) remembers
// each request by HMACs under erasure_key (common/erasure.h) and holds no PII; cdc keeps
// an erased cliente_id's changes out of RAW, so nothing comes back; Reapply erases again
// whom a restore brought back.

#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>

#include "common/log.h"
#include "common/status.h"

namespace pdv::subject {

struct Sources {
  std::string oltp_url;
  std::string warehouse_url;
  std::string redis_url;
  std::string cpf_key;      // to name a subject by CPF
  std::string erasure_key;  // the register's HMAC key (forget, verify)
  // The register's file outside the warehouse (common/erasure_register_file.h): forget
  // appends to it before erasing, reapply erases again what it names. "": none (the
  // warehouse's register only, which a restore rolls back).
  std::string erasure_register;
};

// Exactly one of the two.
struct Selector {
  std::string cpf;         // any common spelling: 123.456.789-09, 12345678909
  std::string cliente_id;  // a UUID
};

// Every piece of data about the subject that any layer holds, as one JSON document:
// {"subject": {cliente_ids}, "oltp": [rows], "raw": [every version, with its _cdc_
// timestamps], "staging": [rows], "dimension": [rows], "redis": [records]}. Nothing
// about anyone else. An error when the subject is in no layer.
pdv::Result<nlohmann::json> Export(const Sources& sources, const Selector& who);

struct ForgetOptions {
  bool at_source = false;  // also delete the OLTP row (the CDC delete then flows)
  // VACUUM FULL the warehouse tables that held the subject (an exclusive lock for the
  // rewrite: writers wait, CDC buffers in its slot). Plain VACUUM removes dead tuples and
  // index entries, but a removed tuple at the bottom of a page can stay in the page's
  // free space until that space is reused; the rewrite leaves no byte behind.
  bool rewrite = false;
  // A `pdv up` data directory (its servers and files are the platform's own): the files
  // too (subject/forget_files.h): table files rewritten, the WAL written before the
  // erasure removed, Redis's AOF rewritten, the person's cpfs.txt line, then every file
  // read back for the person's values. Empty: the rows only; the receipt says what the
  // operator must do for the files.
  std::string data_dir;
};

// Erases the subject from every layer (RAW: every version; staging: the row; the
// dimension: the row becomes a tombstone with no identifier of the person; Redis: the
// record and its id-index entry; OLTP with at_source), registering the request first,
// then vacuums. Idempotent: a subject already erased gets its earlier receipt. Safe while
// the pipeline runs (common/erasure.h's lock, the cache's sync lock). Returns the
// receipt: {request_id, cliente_id_hmacs, requested_at, layers: {<layer>: {erased_at,
// rows}}, completed_at}, also kept in the register.
pdv::Result<nlohmann::json> Forget(const Sources& sources, const Selector& who,
                                   const ForgetOptions& options, Logger& log, std::stop_token stop);

// After a restore of the warehouse (or the OLTP) from a backup taken before some
// erasures: applies again every erasure of the register's file (Sources::
// erasure_register), with the same code forget uses. The file must be readable whole
// first (else an error naming its file:line, and nothing is changed). Then the registers
// are made one: the warehouse's requests the file lacks are appended to it, the file's
// requests the warehouse lost are put back into platform.erasure_register (cdc's batches,
// reconcile and verify read it). Then every layer is scanned for the register's
// cliente_ids (by HMAC: RAW, staging, dimension, history snapshot; the OLTP for requests
// made at_source) and whoever is found is erased as forget erases (Redis included, then
// VACUUM; FULL with rewrite; with data_dir the files step of forget too). Requests left
// incomplete are marked complete. Idempotent: a second run finds no one and changes
// nothing. Safe while the pipeline runs (forget's locks). Returns {register_file,
// requests, file_added_from_warehouse, warehouse_register_restored, customers_found,
// layers, files, requests_completed_again, completed_at}: counts only, no PII.
struct ReapplyOptions {
  bool rewrite = false;
  std::string data_dir;  // as ForgetOptions::data_dir
  // `pdv up`'s start: nothing but the registers' union when the warehouse's register
  // already holds every request of the file (no restore since).
  bool only_if_behind = false;
};
pdv::Result<nlohmann::json> Reapply(const Sources& sources, const ReapplyOptions& options,
                                    Logger& log, std::stop_token stop);

// Scans every layer again (every row of every table, every Redis bucket) for the
// request's subjects (by their HMACs) and returns the proof: {request_id, checked_at,
// layers: {<layer>: {scanned, found}}, clean}. clean is false if anything remains (the
// OLTP row counts only when the request was at_source).
// With `data_dir`, also every file under it, byte by byte, for the values the proof can
// know without keeping them: the CPF given (`cpf`: its digits, formatted, its hash) —
// the register holds HMACs only, so the other values are scanned by forget itself, while
// it still has them.
struct VerifyOptions {
  std::string data_dir;
  std::string cpf;
};
pdv::Result<nlohmann::json> Verify(const Sources& sources, const std::string& request_id,
                                   const VerifyOptions& options = {});

}  // namespace pdv::subject
