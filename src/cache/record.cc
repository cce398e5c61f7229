#include "cache/record.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <iterator>

namespace pdv::cache {
namespace {

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    auto b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

bool PutShort(std::string* out, const std::string& s) {
  if (s.size() > 255) return false;
  out->push_back(static_cast<char>(s.size()));
  out->append(s);
  return true;
}

bool GetShort(std::string_view* in, std::string* s) {
  if (in->empty()) return false;
  size_t n = static_cast<uint8_t>(in->front());
  in->remove_prefix(1);
  if (in->size() < n) return false;
  s->assign(in->substr(0, n));
  in->remove_prefix(n);
  return true;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <size_t N>
pdv::Result<std::array<uint8_t, N>> FromHex(std::string_view hex, const char* what) {
  std::array<uint8_t, N> out{};
  if (hex.size() != 2 * N)
    return Status::Error(fmt::format("{}: expected {} hex digits", what, 2 * N));
  for (size_t i = 0; i < N; ++i) {
    int hi = Hex(hex[2 * i]), lo = Hex(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::Error(fmt::format("{}: not hexadecimal", what));
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

// The flags byte: three flags in its low bits, the campaign in the high five.
constexpr uint8_t kAtivo = 1, kOptIn = 2, kHasElegivel = 4, kCampaignShift = 3;

// Campaigns stored as their index in the flags byte (the order is part of the format:
// append only, at most 31). Others are stored as text after kLiteralCampaign.
constexpr std::string_view kCampaigns[] = {"organico",     "verao",         "inverno",
                                           "black_friday", "dia_das_maes",  "natal",
                                           "dia_dos_pais", "volta_as_aulas"};
constexpr uint8_t kLiteralCampaign = 31;
static_assert(std::size(kCampaigns) < kLiteralCampaign);

}  // namespace

std::string Encode(const CustomerRecord& r) {
  std::string out;
  out.reserve(64);
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>(r.lsn >> s));
  out.append(reinterpret_cast<const char*>(r.cliente_id.data()), 16);
  auto known = std::find(std::begin(kCampaigns), std::end(kCampaigns), r.origem_campanha);
  auto campaign = static_cast<uint8_t>(
      known != std::end(kCampaigns) ? known - std::begin(kCampaigns) : kLiteralCampaign);
  out.push_back(static_cast<char>((r.ativo ? kAtivo : 0) | (r.opt_in_marketing ? kOptIn : 0) |
                                  (r.elegivel_a_partir_de ? kHasElegivel : 0) |
                                  (campaign << kCampaignShift)));
  PutVarint(&out, ZigZag(r.atualizado_em));
  // Relative to atualizado_em: days or months apart, a byte or two less than the date.
  // (Wrapping arithmetic: any two int64 round-trip.)
  if (r.elegivel_a_partir_de) {
    PutVarint(&out, ZigZag(static_cast<int64_t>(static_cast<uint64_t>(*r.elegivel_a_partir_de) -
                                                static_cast<uint64_t>(r.atualizado_em))));
  }
  PutVarint(&out, ZigZag(r.ticket_centavos));
  // Longer strings are cut: these are display fields of a few bytes.
  if (campaign == kLiteralCampaign) PutShort(&out, r.origem_campanha.substr(0, 255));
  PutShort(&out, r.primeiro_nome.substr(0, 255));
  return out;
}

pdv::Result<CustomerRecord> Decode(std::string_view in) {
  CustomerRecord r;
  if (in.size() < 25) return Status::Error("cache record: too short");
  for (int i = 0; i < 8; ++i)
    r.lsn = (r.lsn << 8) | static_cast<uint8_t>(in[static_cast<size_t>(i)]);
  std::copy(in.begin() + 8, in.begin() + 24, r.cliente_id.begin());
  auto flags = static_cast<uint8_t>(in[24]);
  in.remove_prefix(25);
  r.ativo = flags & kAtivo;
  r.opt_in_marketing = flags & kOptIn;
  uint64_t v = 0;
  if (!GetVarint(&in, &v)) return Status::Error("cache record: bad atualizado_em");
  r.atualizado_em = UnZigZag(v);
  if (flags & kHasElegivel) {
    if (!GetVarint(&in, &v)) return Status::Error("cache record: bad elegivel_a_partir_de");
    r.elegivel_a_partir_de = static_cast<int64_t>(static_cast<uint64_t>(r.atualizado_em) +
                                                  static_cast<uint64_t>(UnZigZag(v)));
  }
  if (!GetVarint(&in, &v)) return Status::Error("cache record: bad ticket");
  r.ticket_centavos = UnZigZag(v);
  auto campaign = static_cast<uint8_t>(flags >> kCampaignShift);
  if (campaign < std::size(kCampaigns)) {
    r.origem_campanha = kCampaigns[campaign];
  } else if (campaign != kLiteralCampaign || !GetShort(&in, &r.origem_campanha)) {
    return Status::Error("cache record: bad campaign");
  }
  if (!GetShort(&in, &r.primeiro_nome) || !in.empty()) {
    return Status::Error("cache record: bad strings");
  }
  return r;
}

pdv::Result<std::array<uint8_t, 32>> HashBytes(std::string_view hex) {
  return FromHex<32>(hex, "cpf_hash");
}

pdv::Result<std::array<uint8_t, 16>> UuidBytes(std::string_view text) {
  std::string hex;
  for (char c : text) {
    if (c != '-') hex.push_back(c);
  }
  if (text.size() != 36) return Status::Error("cliente_id: expected a UUID");
  return FromHex<16>(hex, "cliente_id");
}

void AppendUuidText(std::string* out, const std::array<uint8_t, 16>& id) {
  // By hand: every API answer carries one, and fmt's per-byte formatting showed in perf.
  static constexpr char kHex[] = "0123456789abcdef";
  char text[36];
  char* at = text;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *at++ = '-';
    *at++ = kHex[id[i] >> 4];
    *at++ = kHex[id[i] & 0xf];
  }
  out->append(text, sizeof(text));
}

std::string UuidText(const std::array<uint8_t, 16>& id) {
  std::string text;
  text.reserve(36);
  AppendUuidText(&text, id);
  return text;
}

uint32_t Layout::Bucket(const uint8_t* b) const {
  // Mixed first: ids need not be random (sequential UUIDs would share one bucket).
  uint64_t x = 0;
  for (int i = 0; i < 8; ++i) x = (x << 8) | b[i];
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return bits == 0 ? 0 : static_cast<uint32_t>(x >> (64 - bits));
}

std::string Layout::CpfBucketKey(uint32_t bucket) const {
  return fmt::format("{}v{}:{{{:x}}}", kCpfBucketPrefix, version, bucket);
}
std::optional<uint32_t> Layout::CpfBucketOfKey(std::string_view key) {
  if (!key.starts_with(kCpfBucketPrefix)) return std::nullopt;
  key.remove_prefix(kCpfBucketPrefix.size());
  if (!key.starts_with('v')) return std::nullopt;
  key.remove_prefix(1);
  auto open = key.find(":{");
  if (open == std::string_view::npos || open == 0 || !key.ends_with('}')) return std::nullopt;
  if (!std::all_of(key.begin(), key.begin() + open, [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::string_view hex = key.substr(open + 2, key.size() - open - 3);
  uint32_t bucket = 0;
  auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), bucket, 16);
  if (ec != std::errc() || end != hex.data() + hex.size() || hex.empty()) return std::nullopt;
  return bucket;
}
std::string Layout::IdBucketKey(uint32_t bucket) const {
  return fmt::format("{}v{}:{{{:x}}}", kIdBucketPrefix, version, bucket);
}
std::string Layout::CpfKey(const std::array<uint8_t, 32>& hash) const {
  return CpfBucketKey(Bucket(hash.data()));
}
std::string Layout::CpfField(const std::array<uint8_t, 32>& hash) {
  return std::string(reinterpret_cast<const char*>(hash.data()), kCpfFieldBytes);
}
std::string Layout::IdKey(const std::array<uint8_t, 16>& id) const {
  return IdBucketKey(Bucket(id.data()));
}
std::string Layout::IdField(const std::array<uint8_t, 16>& id) {
  return std::string(reinterpret_cast<const char*>(id.data()), 8);
}

std::vector<std::string> Layout::BucketKeys(uint32_t first, uint32_t count) const {
  std::vector<std::string> keys;
  for (uint32_t b = first; b < std::min(buckets(), first + count); ++b) {
    keys.push_back(CpfBucketKey(b));
    keys.push_back(IdBucketKey(b));
  }
  return keys;
}

int BucketBitsFor(uint64_t customers) {
  int bits = 4;
  while (bits < 24 && (uint64_t{1} << bits) * 128 < customers) ++bits;
  return bits;
}

pdv::Result<CustomerRecord> RecordFromDimension(const warehouse::DimensionRow& d) {
  auto id = UuidBytes(d.cliente_id);
  if (!id.ok()) return id.status();
  if (d.status_clube != "ATIVO" && d.status_clube != "INATIVO") {
    return Status::Error(
        fmt::format("dimension: cliente {} has status_clube '{}'", d.cliente_id, d.status_clube));
  }
  return CustomerRecord{.lsn = d.lsn,
                        .cliente_id = *id,
                        .ativo = d.status_clube == "ATIVO",
                        .opt_in_marketing = d.opt_in_marketing,
                        .elegivel_a_partir_de = d.elegivel_a_partir_de,
                        .atualizado_em = d.atualizado_em,
                        .ticket_centavos = d.ticket_centavos,
                        .origem_campanha = d.origem_campanha,
                        .primeiro_nome = d.primeiro_nome};
}

pdv::Result<Meta> ParseMeta(const std::vector<std::pair<std::string, std::string>>& fields) {
  auto number = [](const std::string& field, const std::string& text, uint64_t max,
                   uint64_t* out) -> Status {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || v > max) {
      return Status::Error(
          fmt::format("{}: field {} is not a number: '{}'", kMetaKey, field, text.substr(0, 40)));
    }
    *out = v;
    return Status::Ok();
  };
  Meta meta;
  bool has_bits = false;
  uint64_t format = 1;  // the first releases wrote no format field
  for (const auto& [field, value] : fields) {
    uint64_t v = 0;
    if (field == "version") {
      if (Status s = number(field, value, UINT64_MAX, &v); !s.ok()) return s;
      meta.layout.version = v;
      meta.exists = true;
    } else if (field == "bits") {
      if (Status s = number(field, value, 24, &v); !s.ok()) return s;
      meta.layout.bits = static_cast<int>(v);
      has_bits = true;
    } else if (field == "lsn") {
      if (Status s = number(field, value, UINT64_MAX, &v); !s.ok()) return s;
      meta.lsn = v;
    } else if (field == "lsn_id") {
      meta.lsn_id = value;
    } else if (field == "format") {
      if (Status s = number(field, value, UINT64_MAX, &v); !s.ok()) return s;
      format = v;
    }
  }
  if (meta.exists && format != kRecordFormat) {
    // Written by an older release: its records can't be read as this one's. A full load
    // replaces it (and removes it), as if nothing were loaded.
    meta.exists = false;
    meta.older_format = true;
  }
  if (meta.exists && !has_bits) {
    return Status::Error(fmt::format("{}: a version without its bucket bits", kMetaKey));
  }
  return meta;
}

}  // namespace pdv::cache
