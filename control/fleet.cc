// fleet.cc: see fleet.h.
#include "control/fleet.h"

#include <openssl/evp.h>
#include <xxhash.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "maglev/maglev.h"

namespace ecmplb::control::fleet {

using nlohmann::json;

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // etcd: every key
}

std::string Sha256Hex(absl::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned i = 0; i < len; ++i) absl::StrAppendFormat(&out, "%02x", md[i]);
  return out;
}

std::string FingerprintHex(uint64_t fp) { return absl::StrFormat("%016x", fp); }

namespace {

// Reads a JSON document; a message naming `what` otherwise.
absl::StatusOr<json> ParseJson(absl::string_view text, absl::string_view what) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON: ", e.what()));
  }
}

template <typename T>
absl::Status Get(const json& j, const char* key, T* out, absl::string_view what) {
  if (!j.contains(key)) return absl::OkStatus();
  try {
    *out = j.at(key).get<T>();
  } catch (const json::exception&) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": field ", key, " has the wrong type"));
  }
  return absl::OkStatus();
}

// Strings here may quote what etcd held (a refusal's reason quotes the bad input): never
// throw on bytes that are not UTF-8, replace them.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool IsHexDigest(absl::string_view d) {
  return d.size() == 64 && std::all_of(d.begin(), d.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

absl::StatusOr<Pointer> ParsePointer(absl::string_view text) {
  ECMPLB_ASSIGN_OR_RETURN(const json j, ParseJson(text, "the fleet's config pointer"));
  if (!j.is_object() || !j.contains("blobs") || !j["blobs"].is_array()) {
    return absl::InvalidArgumentError("the fleet's config pointer has no blobs array");
  }
  int format = 0;
  ECMPLB_RETURN_IF_ERROR(Get(j, "format", &format, "config pointer"));
  if (format != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the fleet's config pointer has format ", format, "; this ecmplb reads 1"));
  }
  Pointer p;
  if (j["blobs"].size() > kMaxBlobs) {
    return absl::InvalidArgumentError("the fleet's config pointer lists too many blobs");
  }
  for (const json& b : j["blobs"]) {
    BlobRef r;
    if (!b.is_object()) return absl::InvalidArgumentError("config pointer: a blob is not an object");
    ECMPLB_RETURN_IF_ERROR(Get(b, "digest", &r.digest, "config pointer blob"));
    ECMPLB_RETURN_IF_ERROR(Get(b, "services", &r.services, "config pointer blob"));
    ECMPLB_RETURN_IF_ERROR(Get(b, "bytes", &r.bytes, "config pointer blob"));
    if (!IsHexDigest(r.digest)) {
      return absl::InvalidArgumentError(
          absl::StrCat("config pointer: blob digest '", r.digest, "' is not a hex SHA-256"));
    }
    p.blobs.push_back(std::move(r));
  }
  if (j.contains("id_high")) {
    if (!j["id_high"].is_object()) return absl::InvalidArgumentError("config pointer: id_high");
    for (auto it = j["id_high"].begin(); it != j["id_high"].end(); ++it) {
      if (!it.value().is_number_unsigned()) {
        return absl::InvalidArgumentError("config pointer: id_high values are backend ids");
      }
      p.id_high[it.key()] = it.value().get<uint32_t>();
    }
  }
  ECMPLB_RETURN_IF_ERROR(Get(j, "writer", &p.writer, "config pointer"));
  ECMPLB_RETURN_IF_ERROR(Get(j, "written_unix_ms", &p.written_unix_ms, "config pointer"));
  return p;
}

std::string SerializePointer(const Pointer& p) {
  json blobs = json::array();
  for (const BlobRef& b : p.blobs) {
    blobs.push_back({{"digest", b.digest}, {"services", b.services}, {"bytes", b.bytes}});
  }
  json j = {{"format", 1}, {"blobs", std::move(blobs)}, {"id_high", p.id_high},
            {"writer", p.writer}, {"written_unix_ms", p.written_unix_ms}};
  return Dump(j);
}

absl::StatusOr<std::vector<Blob>> SplitServices(const std::vector<ServiceConfig>& services) {
  // One JSON text per service (compact), then buckets by the name's hash.
  std::vector<std::string> texts;
  std::vector<uint64_t> hashes;
  texts.reserve(services.size());
  for (const ServiceConfig& s : services) {
    std::string t = SerializeServices({s});  // "[{...}]"
    t = t.substr(1, t.size() - 2);
    if (t.size() + 2 > kBlobBytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("service ", s.Name(), " alone is ", t.size(), " bytes of JSON; a fleet "
                       "blob holds at most ", kBlobBytes));
    }
    const std::string name = s.Name();
    hashes.push_back(XXH3_64bits(name.data(), name.size()));
    texts.push_back(std::move(t));
  }
  for (size_t buckets = 1; buckets <= kMaxBlobs; buckets *= 2) {
    std::vector<std::string> out(buckets);
    std::vector<uint32_t> counts(buckets, 0);
    bool fits = true;
    for (size_t i = 0; i < texts.size() && fits; ++i) {
      std::string& b = out[hashes[i] % buckets];
      b += b.empty() ? "[" : ",";
      b += texts[i];
      ++counts[hashes[i] % buckets];
      fits = b.size() + 1 <= kBlobBytes;
    }
    if (!fits) continue;
    std::vector<Blob> blobs;
    for (size_t k = 0; k < buckets; ++k) {
      if (out[k].empty()) continue;
      out[k] += "]";
      Blob blob;
      blob.digest = Sha256Hex(out[k]);
      blob.text = std::move(out[k]);
      blob.services = counts[k];
      blobs.push_back(std::move(blob));
    }
    return blobs;
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "the services do not fit ", kMaxBlobs, " blobs of ", kBlobBytes, " bytes"));
}

absl::StatusOr<std::string> JoinBlobs(const Pointer& pointer,
                                      const std::map<std::string, std::string>& texts) {
  std::string out = "[";
  bool first = true;
  for (const BlobRef& ref : pointer.blobs) {
    auto it = texts.find(ref.digest);
    if (it == texts.end()) {
      return absl::NotFoundError(absl::StrCat("blob ", ref.digest, " is missing"));
    }
    const std::string& t = it->second;
    if (Sha256Hex(t) != ref.digest) {
      return absl::DataLossError(absl::StrCat("blob ", ref.digest, " does not match its digest"));
    }
    if (t.size() < 2 || t.front() != '[' || t.back() != ']') {
      return absl::InvalidArgumentError(
          absl::StrCat("blob ", ref.digest, " is not a JSON array of services"));
    }
    const absl::string_view inner = absl::string_view(t).substr(1, t.size() - 2);
    if (inner.find_first_not_of(" \t\r\n") == absl::string_view::npos) continue;
    if (!first) out += ",";
    out.append(inner.data(), inner.size());
    first = false;
  }
  out += "]";
  return out;
}

namespace {

// The table of `s` with every backend healthy, as the snapshot builder would build it.
absl::StatusOr<uint64_t> TableFp(const ServiceConfig& s) {
  std::vector<maglev::Backend> mb;
  auto id = [&](const std::string& address) {
    const bool v6 = address.find(':') != std::string::npos;
    return maglev::BackendId::Parse(v6 ? absl::StrCat("[", address, "]:", s.port)
                                       : absl::StrCat(address, ":", s.port));
  };
  bool usable = false;
  for (const BackendConfig& b : s.backends) {
    ECMPLB_ASSIGN_OR_RETURN(const maglev::BackendId bid, id(b.address));
    mb.push_back({bid, b.weight});
    usable = usable || b.weight > 0;
  }
  if (!usable && s.sorry_backend) {
    ECMPLB_ASSIGN_OR_RETURN(const maglev::BackendId bid, id(s.sorry_backend->address));
    mb.push_back({bid, 1});
    usable = true;
  }
  if (!usable) return 0;  // no table: every new flow is dropped
  ECMPLB_ASSIGN_OR_RETURN(const maglev::Table table, maglev::Table::Build(mb, s.table_size));
  return maglev::TableFingerprint(table, mb);
}

}  // namespace

absl::StatusOr<uint64_t> Fingerprints::Update(const std::vector<ServiceConfig>& services) {
  std::map<uint64_t, uint64_t> cache;
  std::map<std::string, uint64_t> current;
  for (const ServiceConfig& s : services) {
    const std::string text = SerializeServices({s});
    const uint64_t key = XXH3_64bits(text.data(), text.size());
    uint64_t fp = 0;
    if (auto it = cache_.find(key); it != cache_.end()) {
      fp = it->second;
    } else {
      auto table = TableFp(s);
      if (!table.ok()) {
        return absl::Status(table.status().code(),
                            absl::StrCat(s.Name(), ": ", table.status().message()));
      }
      // The table and everything else the service says (mode, checks, ...).
      fp = XXH3_64bits_withSeed(text.data(), text.size(), *table);
    }
    cache[key] = fp;
    current[s.Name()] = fp;
  }
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  for (const auto& [name, fp] : current) {
    XXH3_64bits_update(st, name.data(), name.size() + 1);  // with its NUL: unambiguous
    XXH3_64bits_update(st, &fp, sizeof(fp));
  }
  root_ = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  cache_ = std::move(cache);
  current_ = std::move(current);
  return root_;
}

absl::StatusOr<HostStatus> ParseHostStatus(absl::string_view text) {
  ECMPLB_ASSIGN_OR_RETURN(const json j, ParseJson(text, "a host status"));
  if (!j.is_object()) return absl::InvalidArgumentError("a host status is not an object");
  HostStatus s;
  const char* what = "host status";
  ECMPLB_RETURN_IF_ERROR(Get(j, "host", &s.host, what));
  ECMPLB_RETURN_IF_ERROR(Get(j, "applied_version", &s.applied_version, what));
  ECMPLB_RETURN_IF_ERROR(Get(j, "root", &s.root, what));
  ECMPLB_RETURN_IF_ERROR(Get(j, "service_fps", &s.service_fps, what));
  ECMPLB_RETURN_IF_ERROR(Get(j, "refused_version", &s.refused_version, what));
  ECMPLB_RETURN_IF_ERROR(Get(j, "refused_reason", &s.refused_reason, what));
  ECMPLB_RETURN_IF_ERROR(Get(j, "announced", &s.announced, what));
  ECMPLB_RETURN_IF_ERROR(Get(j, "serving", &s.serving, what));
  ECMPLB_RETURN_IF_ERROR(Get(j, "withdrawn", &s.withdrawn, what));
  ECMPLB_RETURN_IF_ERROR(Get(j, "kept", &s.kept, what));
  ECMPLB_RETURN_IF_ERROR(Get(j, "down", &s.down, what));
  ECMPLB_RETURN_IF_ERROR(Get(j, "sync", &s.sync, what));
  ECMPLB_RETURN_IF_ERROR(Get(j, "updated_unix_ms", &s.updated_unix_ms, what));
  return s;
}

std::string SerializeHostStatus(const HostStatus& s) {
  json j = {{"host", s.host},
            {"applied_version", s.applied_version},
            {"root", s.root},
            {"announced", s.announced},
            {"serving", s.serving},
            {"down", s.down},
            {"updated_unix_ms", s.updated_unix_ms}};
  if (!s.service_fps.empty()) j["service_fps"] = s.service_fps;
  if (s.refused_version != 0) j["refused_version"] = s.refused_version;
  if (!s.refused_reason.empty()) j["refused_reason"] = s.refused_reason;
  if (!s.withdrawn.empty()) j["withdrawn"] = s.withdrawn;
  if (!s.kept.empty()) j["kept"] = s.kept;
  if (!s.sync.empty()) j["sync"] = s.sync;
  return Dump(j);
}

LagJudge::Verdict LagJudge::Judge(const HostStatus& self, const std::vector<HostStatus>& peers,
                                  uint64_t now_ms) {
  Verdict v;
  int64_t newest = self.applied_version;
  for (const HostStatus& p : peers) newest = std::max(newest, p.applied_version);
  std::string reason;
  if (self.applied_version < newest) {
    if (!behind_since_) behind_since_ = now_ms;
    const uint64_t behind = now_ms - *behind_since_;
    if (behind >= grace_ms_) {
      reason = absl::StrCat("config version ", self.applied_version, " is behind the fleet's ",
                            newest, " for ", behind / 1000.0, " s (grace ", grace_ms_ / 1000.0,
                            " s)");
    }
  } else {
    behind_since_.reset();
  }
  // Fingerprints at this host's version.
  std::map<std::string, size_t> votes;
  size_t at_version = 1;
  votes[self.root]++;
  for (const HostStatus& p : peers) {
    if (p.applied_version != self.applied_version || self.applied_version == 0) continue;
    ++at_version;
    votes[p.root]++;
    v.disagree = v.disagree || p.root != self.root;
  }
  if (reason.empty()) {
    for (const auto& [root, n] : votes) {
      if (root != self.root && 2 * n > at_version) {
        reason = absl::StrCat("tables differ from the fleet's: ", n, " of ", at_version,
                              " hosts at version ", self.applied_version, " have fingerprint ",
                              root, ", this host ", self.root);
      }
    }
  }
  if (reason.empty()) return v;
  size_t announcing = 0;
  for (const HostStatus& p : peers) announcing += p.serving && p.withdrawn.empty() ? 1 : 0;
  if (announcing < min_announcing_) {
    v.kept = absl::StrCat(reason, "; kept announcing: only ", announcing,
                          " other hosts announce (fleet.min_announcing ", min_announcing_, ")");
    return v;
  }
  v.withdraw = reason;
  return v;
}

}  // namespace ecmplb::control::fleet
