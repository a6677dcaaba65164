// etcd_store.cc: see etcd_store.h.
#include "control/etcd_store.h"

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ecmplb::control::fleet {

using nlohmann::json;

namespace {

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

std::string B64(const std::string& s) { return absl::Base64Escape(s); }

std::string UnB64(const json& j, const char* key) {
  std::string out;
  if (j.contains(key) && j[key].is_string()) absl::Base64Unescape(j[key].get<std::string>(), &out);
  return out;
}

// The gateway writes 64-bit integers as strings.
int64_t I64(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return 0;
  const json& v = j[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  int64_t x = 0;
  if (v.is_string() && absl::SimpleAtoi(v.get<std::string>(), &x)) return x;
  return 0;
}

KeyValue ToKeyValue(const json& kv) {
  KeyValue out;
  out.key = UnB64(kv, "key");
  out.value = UnB64(kv, "value");
  out.create_revision = I64(kv, "create_revision");
  out.mod_revision = I64(kv, "mod_revision");
  out.lease = I64(kv, "lease");
  return out;
}

// A JSON object, or why not: every field read after it is type-checked (I64, Bool, value
// of an object), so nothing etcd (or whatever answers at its address) sends can throw.
absl::StatusOr<json> ParseBody(const absl::StatusOr<std::string>& body) {
  if (!body.ok()) return body.status();
  json j;
  try {
    j = json::parse(*body);
  } catch (const json::exception& e) {
    return absl::InternalError(absl::StrCat("etcd answered something that is not JSON: ", e.what()));
  }
  if (!j.is_object()) return absl::InternalError("etcd answered JSON that is not an object");
  return j;
}

bool Bool(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_boolean() && j[key].get<bool>();
}

const json& Obj(const json& j, const char* key) {
  static const json kEmpty = json::object();
  return j.is_object() && j.contains(key) && j[key].is_object() ? j[key] : kEmpty;
}

}  // namespace

WatchResponse ParseWatchLine(absl::string_view line) {
  WatchResponse w;
  try {
    const json j = json::parse(line);
    const json& res = j.contains("result") ? j["result"] : j;
    if (j.contains("error")) {
      w.ended = true;
      w.error = j["error"].is_object() && j["error"].contains("message")
                    ? j["error"]["message"].dump()
                    : j["error"].dump();
    }
    w.revision = I64(res.value("header", json::object()), "revision");
    w.compact_revision = I64(res, "compact_revision");
    if (res.value("canceled", false) || w.compact_revision != 0) {
      w.ended = true;
      if (w.error.empty()) {
        w.error = res.value("cancel_reason", std::string(w.compact_revision != 0
                                                             ? "revision compacted"
                                                             : "watch canceled by etcd"));
      }
    }
    if (res.contains("events") && res["events"].is_array()) {
      for (const json& ev : res["events"]) {
        WatchEvent e;
        e.type = ev.value("type", std::string("PUT")) == "DELETE" ? WatchEvent::Type::kDelete
                                                                 : WatchEvent::Type::kPut;
        if (ev.contains("kv")) e.kv = ToKeyValue(ev["kv"]);
        w.events.push_back(std::move(e));
      }
    }
  } catch (const json::exception& e) {
    w = WatchResponse{};
    w.ended = true;
    w.error = absl::StrCat("a watch response is not JSON: ", e.what());
  }
  return w;
}

struct EtcdStore::Request {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string url;
  std::string body;
  std::string response;
  BodyFn done;
  // A watch: its handle and callback; `consumed` bytes of `response` were delivered.
  uint64_t watch = 0;
  WatchFn watch_fn;
  size_t consumed = 0;
  bool ended = false;
  char error[CURL_ERROR_SIZE] = {};
};

EtcdStore::EtcdStore(EtcdOptions options) : options_(std::move(options)) {
  static CurlGlobal global;
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &EtcdStore::OnTimer);
  // A configuration of many blobs is fetched over a few connections, not one each.
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, 4L);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  if (options_.endpoints.empty()) options_.endpoints.push_back("http://127.0.0.1:2379");
}

EtcdStore::~EtcdStore() {
  for (auto& [easy, r] : requests_) {
    curl_multi_remove_handle(multi_, easy);
    curl_easy_cleanup(easy);
    curl_slist_free_all(r->headers);
  }
  requests_.clear();
  curl_multi_cleanup(multi_);
}

int EtcdStore::OnTimer(CURLM*, long timeout_ms, void* user) {
  static_cast<EtcdStore*>(user)->timeout_ms_ = timeout_ms;
  return 0;
}

void EtcdStore::Fds(std::vector<pollfd>* out) const {
  // curl_multi_perform drives the transfers (Poll), so the sockets come from curl_multi_fdset
  // (descriptors >= FD_SETSIZE are left out: those transfers advance at the next Poll).
  fd_set r, w, x;
  FD_ZERO(&r);
  FD_ZERO(&w);
  FD_ZERO(&x);
  int max = -1;
  if (curl_multi_fdset(multi_, &r, &w, &x, &max) != CURLM_OK) return;
  for (int fd = 0; fd <= max; ++fd) {
    short ev = 0;
    if (FD_ISSET(fd, &r)) ev |= POLLIN;
    if (FD_ISSET(fd, &w)) ev |= POLLOUT;
    if (ev != 0) out->push_back(pollfd{fd, ev, 0});
  }
}

size_t EtcdStore::pending() const {
  size_t n = 0;
  for (const auto& [easy, r] : requests_) n += r->watch == 0 ? 1 : 0;
  return n;
}

size_t EtcdStore::OnData(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Request*>(user);
  constexpr size_t kMaxResponse = 64u << 20;  // far above etcd's own request limit
  if (r->response.size() + size * n > kMaxResponse) return 0;  // aborts the transfer
  r->response.append(data, size * n);
  return size * n;
}

void EtcdStore::Post(const std::string& path, std::string body, BodyFn done) {
  auto r = std::make_unique<Request>();
  r->url = options_.endpoints[endpoint_] + path;
  r->body = std::move(body);
  r->done = std::move(done);
  Request* raw = r.get();
  r->easy = curl_easy_init();
  requests_[r->easy] = std::move(r);
  Start(raw);
}

void EtcdStore::Start(Request* r) {
  CURL* e = r->easy;
  curl_easy_setopt(e, CURLOPT_URL, r->url.c_str());
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r->body.size()));
  r->headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &EtcdStore::OnData);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  if (r->watch == 0) {
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, options_.request_timeout_ms);
  } else {
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  }
  if (!options_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_file.c_str());
  if (!options_.cert_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, options_.cert_file.c_str());
    curl_easy_setopt(e, CURLOPT_SSLKEY, options_.key_file.c_str());
  }
  curl_multi_add_handle(multi_, e);
}

void EtcdStore::DeliverWatchLines(Request* r) {
  while (!r->ended) {
    const size_t nl = r->response.find('\n', r->consumed);
    if (nl == std::string::npos) break;
    const std::string line = r->response.substr(r->consumed, nl - r->consumed);
    r->consumed = nl + 1;
    if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
    WatchResponse w = ParseWatchLine(line);
    if (w.ended) r->ended = true;
    const uint64_t id = r->watch;
    WatchFn fn = r->watch_fn;
    ready_.push_back([this, id, fn, w = std::move(w)] {
      if (watches_.count(id)) fn(w);
      if (w.ended) CancelWatch(id);
    });
  }
  if (r->consumed > 0) {  // keep only the unfinished line
    r->response.erase(0, r->consumed);
    r->consumed = 0;
  }
}

void EtcdStore::Finish(Request* r, CURLcode code) {
  long http = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &http);
  curl_multi_remove_handle(multi_, r->easy);
  absl::Status error;
  if (code != CURLE_OK) {
    error = absl::UnavailableError(absl::StrCat("etcd ", options_.endpoints[endpoint_], ": ",
                                                r->error[0] ? r->error : curl_easy_strerror(code)));
    endpoint_ = (endpoint_ + 1) % options_.endpoints.size();  // the next one, next time
  } else if (http != 200) {
    std::string msg = r->response.substr(0, 300);
    int grpc_code = 0;
    try {
      const json j = json::parse(r->response);
      msg = j.value("message", j.value("error", msg));
      grpc_code = j.value("code", 0);
    } catch (const json::exception&) {
    }
    const std::string text = absl::StrCat("etcd: HTTP ", http, ": ", msg);
    // gRPC's OUT_OF_RANGE: "required revision has been compacted".
    error = grpc_code == 11 ? absl::OutOfRangeError(text) : absl::FailedPreconditionError(text);
  }
  if (r->watch != 0) {
    if (!r->ended) {
      DeliverWatchLines(r);
      if (!r->ended) {
        WatchResponse w;
        w.ended = true;
        w.error = error.ok() ? "the watch stream closed" : std::string(error.message());
        const uint64_t id = r->watch;
        WatchFn fn = r->watch_fn;
        ready_.push_back([this, id, fn, w] {
          if (watches_.count(id)) fn(w);
          CancelWatch(id);
        });
      }
    }
    return;  // the handle goes in CancelWatch
  }
  BodyFn done = std::move(r->done);
  absl::StatusOr<std::string> result =
      error.ok() ? absl::StatusOr<std::string>(std::move(r->response)) : error;
  curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->headers);
  requests_.erase(r->easy);
  ready_.push_back([done = std::move(done), result = std::move(result)] { done(result); });
}

size_t EtcdStore::Poll() {
  int running = 0;
  curl_multi_perform(multi_, &running);
  for (auto& [easy, r] : requests_) {
    if (r->watch != 0) DeliverWatchLines(r.get());
  }
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
    if (m->msg != CURLMSG_DONE) continue;
    Request* r = nullptr;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&r));
    if (r != nullptr) Finish(r, m->data.result);
  }
  size_t n = 0;
  while (!ready_.empty()) {
    std::vector<std::function<void()>> now;
    now.swap(ready_);
    for (auto& fn : now) {
      fn();
      ++n;
    }
  }
  return n;
}

bool EtcdStore::RunUntil(const std::function<bool()>& done, long timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    int fds = 0;
    curl_multi_poll(multi_, nullptr, 0, 50, &fds);
    Poll();
  }
  return true;
}

void EtcdStore::Range(std::string key, std::string range_end, int64_t revision, RangeFn done) {
  json req = {{"key", B64(key)}};
  if (!range_end.empty()) req["range_end"] = B64(range_end);
  if (revision > 0) req["revision"] = std::to_string(revision);
  Post("/v3/kv/range", req.dump(), [done = std::move(done)](absl::StatusOr<std::string> body) {
    auto j = ParseBody(body);
    if (!j.ok()) return done(j.status());
    RangeResult out;
    out.revision = I64(Obj(*j, "header"), "revision");
    if (j->contains("kvs") && (*j)["kvs"].is_array()) {
      for (const json& kv : (*j)["kvs"]) {
        if (kv.is_object()) out.kvs.push_back(ToKeyValue(kv));
      }
    }
    done(std::move(out));
  });
}

void EtcdStore::Txn(std::vector<Compare> compares, std::vector<Op> ops, TxnFn done) {
  json cmp = json::array(), success = json::array();
  for (const Compare& c : compares) {
    cmp.push_back({{"key", B64(c.key)},
                   {"target", "MOD"},
                   {"result", "EQUAL"},
                   {"mod_revision", std::to_string(c.mod_revision)}});
  }
  for (const Op& op : ops) {
    if (op.type == Op::Type::kPut) {
      json put = {{"key", B64(op.key)}, {"value", B64(op.value)}};
      if (op.lease != 0) put["lease"] = std::to_string(op.lease);
      success.push_back({{"request_put", std::move(put)}});
    } else {
      success.push_back({{"request_delete_range", {{"key", B64(op.key)}}}});
    }
  }
  json req = {{"compare", std::move(cmp)}, {"success", std::move(success)}};
  Post("/v3/kv/txn", req.dump(), [done = std::move(done)](absl::StatusOr<std::string> body) {
    auto j = ParseBody(body);
    if (!j.ok()) return done(j.status());
    TxnResult out;
    out.succeeded = Bool(*j, "succeeded");
    out.revision = I64(Obj(*j, "header"), "revision");
    done(out);
  });
}

uint64_t EtcdStore::Watch(std::string key, std::string range_end, int64_t start_revision,
                          WatchFn fn) {
  json create = {{"key", B64(key)}};
  if (!range_end.empty()) create["range_end"] = B64(range_end);
  if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
  auto r = std::make_unique<Request>();
  r->url = options_.endpoints[endpoint_] + "/v3/watch";
  r->body = json{{"create_request", std::move(create)}}.dump();
  r->watch = next_watch_++;
  r->watch_fn = std::move(fn);
  Request* raw = r.get();
  r->easy = curl_easy_init();
  watches_[r->watch] = r->easy;
  requests_[r->easy] = std::move(r);
  Start(raw);
  return raw->watch;
}

void EtcdStore::CancelWatch(uint64_t handle) {
  auto it = watches_.find(handle);
  if (it == watches_.end()) return;
  CURL* easy = it->second;
  watches_.erase(it);
  auto r = requests_.find(easy);
  if (r == requests_.end()) return;
  curl_multi_remove_handle(multi_, easy);
  curl_easy_cleanup(easy);
  curl_slist_free_all(r->second->headers);
  requests_.erase(r);
}

void EtcdStore::LeaseGrant(int64_t ttl_s, LeaseFn done) {
  json req = {{"TTL", std::to_string(ttl_s)}};
  Post("/v3/lease/grant", req.dump(), [done = std::move(done)](absl::StatusOr<std::string> body) {
    auto j = ParseBody(body);
    if (!j.ok()) return done(j.status());
    const int64_t id = I64(*j, "ID");
    if (id == 0) return done(absl::InternalError("etcd granted no lease: " + j->dump()));
    done(id);
  });
}

void EtcdStore::LeaseKeepAlive(int64_t lease, LeaseFn done) {
  json req = {{"ID", std::to_string(lease)}};
  Post("/v3/lease/keepalive", req.dump(),
       [done = std::move(done)](absl::StatusOr<std::string> body) {
         auto j = ParseBody(body);
         if (!j.ok()) return done(j.status());
         const json& res = j->contains("result") ? Obj(*j, "result") : *j;
         done(I64(res, "TTL"));
       });
}

}  // namespace ecmplb::control::fleet
