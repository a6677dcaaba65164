// Tests of the control socket codec: every command through HandleRequest, malformed and
// hostile requests answered with an error (never a crash), reply decoding with codes, and
// the text forms of services and endpoints.
#include "control/protocol.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <vector>
#include <string>

#include "absl/strings/str_cat.h"
#include "control/endpoint.h"

namespace ecmplb::control {
namespace {

using nlohmann::json;

constexpr char kConfig[] = R"({
  "host": {"address": "10.0.0.11", "prefix_length": 24},
  "services": [{"vip": "10.100.0.1", "port": 80, "protocol": "tcp",
                "backends": [{"id": 1, "address": "10.0.0.21"}]}]})";

class ProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cp = ControlPlane::Create(
        *ParseConfig(kConfig), dataplane::MacAddr{},
        [this](std::unique_ptr<const dataplane::Snapshot> s) { snap_ = std::move(s); },
        ControlPlane::Options{});
    ASSERT_TRUE(cp.ok()) << cp.status();
    cp_ = std::move(*cp);
  }
  // The decoded reply of one request.
  absl::StatusOr<json> Call(const std::string& request) {
    return DecodeReply(HandleRequest(*cp_, request));
  }

  std::unique_ptr<const dataplane::Snapshot> snap_;
  std::unique_ptr<ControlPlane> cp_;
};

TEST_F(ProtocolTest, CommandsRoundTrip) {
  auto r = Call(R"({"cmd": "service add", "service": "[2001:db8::1]:443/tcp", "forward": "dr",
                    "hash": "source-ip", "table_size": 251})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["service"], "[2001:db8::1]:443/tcp");
  r = Call(
      R"({"cmd": "backend add", "service": "[2001:db8::1]:443/tcp", "backend": "[2001:db8::21]:443",
               "weight": 4})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["backend_id"], 1);
  r = Call(
      R"({"cmd": "backend set", "service": "[2001:db8::1]:443/tcp", "backend": "2001:db8::21", "weight": 0})");
  ASSERT_TRUE(r.ok()) << r.status();
  r = Call(R"({"cmd": "service list"})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ((*r)["services"].size(), 2u);
  EXPECT_EQ((*r)["services"][1]["hash"], "source-ip");
  r = Call(R"({"cmd": "show"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["services"][1]["backends"][0]["state"], "draining");
  r = Call(R"({"cmd": "config dump"})");
  ASSERT_TRUE(r.ok());
  auto reparsed = ParseConfig(r->dump());
  ASSERT_TRUE(reparsed.ok()) << reparsed.status();
  EXPECT_EQ(*reparsed, cp_->config());
  r = Call(R"({"cmd": "lookup", "service": "10.100.0.1:80/tcp", "client": "192.0.2.1:5000"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["backend"]["address"], "10.0.0.21");
  EXPECT_TRUE(Call(R"({"cmd": "stats"})").ok());
  r = Call(R"({"cmd": "conns", "limit": 5})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["total"], 0);
  r = Call(
      R"({"cmd": "backend del", "service": "[2001:db8::1]:443/tcp", "backend": "2001:db8::21"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(Call(R"({"cmd": "service del", "service": "[2001:db8::1]:443/tcp"})").ok());
  EXPECT_EQ(cp_->config().services.size(), 1u);
}

TEST_F(ProtocolTest, ErrorsCarryCanonicalCodes) {
  EXPECT_EQ(Call(R"({"cmd": "backend add", "service": "10.1.1.1:80/tcp", "backend": "10.0.0.5"})")
                .status(),
            absl::NotFoundError("service 10.1.1.1:80/tcp not found"));
  EXPECT_EQ(Call(R"({"cmd": "service add", "service": "10.100.0.1:80/tcp"})").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Call(R"({"cmd": "backend set", "service": "10.100.0.1:80/tcp", "backend": "10.0.0.21",
                     "weight": 70000})")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ProtocolTest, MalformedRequestsGetAnErrorReply) {
  const Config before = cp_->config();
  const std::string deep(60000, '[');
  for (
      const std::string& bad : {
          std::string("not json"),
          std::string("[1,2]"),
          std::string("42"),
          std::string("{}"),
          std::string(R"({"cmd": 7})"),
          std::string(R"({"cmd": "reboot"})"),
          std::string(R"({"cmd": "service add"})"),
          std::string(R"({"cmd": "service add", "service": 5})"),
          std::string(R"({"cmd": "backend add", "service": "10.100.0.1:80/tcp"})"),
          std::string(
              R"({"cmd": "backend add", "service": "10.100.0.1:80/tcp", "backend": "10.0.0.9", "weight": -1})"),
          std::string(
              R"({"cmd": "backend add", "service": "10.100.0.1:80/tcp", "backend": "10.0.0.9", "weight": "1"})"),
          std::string(
              R"({"cmd": "service add", "service": "10.100.0.9:80/tcp", "forward": "nat"})"),
          std::string(
              R"({"cmd": "service add", "service": "10.100.0.9:80/tcp", "hash": "3tuple"})"),
          std::string(R"({"cmd": "conns", "limit": 100000000})"),
          std::string(R"({"cmd": "lookup", "service": "10.100.0.1:80/tcp"})"),
          std::string("{\"cmd\": \"show\""),
          deep,
          std::string(kMaxRequestBytes + 1, ' '),
          std::string("\xff\xfe{\"cmd\"}"),
      }) {
    std::string reply = HandleRequest(*cp_, bad);
    auto decoded = DecodeReply(reply);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument)
        << bad.substr(0, 80) << " -> " << reply;
  }
  EXPECT_EQ(cp_->config(), before);
}

// The socket's handler: a command the peer may not run is refused (PERMISSION_DENIED) before
// its arguments are read, the state is untouched and the refusal is logged with the peer's
// pid, uid and gid; what it may run runs.
TEST_F(ProtocolTest, RefusesAndLogsWhatThePeerMayNotRun) {
  const AccessPolicy policy{std::nullopt, NamedGroup{"ecmplb-ro", 4343}};
  const PeerCredentials reader{777, 1000, 1000, {4343}};
  const PeerCredentials stranger{778, 1001, 1001, {}};
  std::vector<std::string> log;
  auto call = [&](const PeerCredentials& peer, const std::string& request) {
    return DecodeReply(HandleRequest(*cp_, request, policy, peer,
                                     [&log](const std::string& m) { log.push_back(m); }));
  };
  const Config before = cp_->config();
  auto r = call(reader, R"({"cmd": "backend set", "service": "10.100.0.1:80/tcp",
                            "backend": "10.0.0.21", "weight": 0})");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_EQ(r.status().message(),
            "permission denied: uid 1000 (gid 1000) may not run 'backend set'; only root may "
            "change state (read-only group 'ecmplb-ro' may only read)");
  // Refused before the arguments are checked: a bad weight still reads as a refusal.
  r = call(reader, R"({"cmd": "backend set", "weight": "heavy"})");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_EQ(cp_->config(), before);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0],
            "control socket: refused 'backend set' to pid 777 uid 1000 gid 1000 groups 4343: "
            "permission denied: uid 1000 (gid 1000) may not run 'backend set'; only root may "
            "change state (read-only group 'ecmplb-ro' may only read)");
  r = call(reader, R"({"cmd": "show"})");
  EXPECT_TRUE(r.ok()) << r.status();
  r = call(stranger, R"({"cmd": "show"})");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_NE(log[2].find("pid 778 uid 1001 gid 1001: "), std::string::npos) << log[2];
  // Root runs changes.
  r = call(PeerCredentials{1, 0, 0, {}}, R"({"cmd": "backend set", "service":
           "10.100.0.1:80/tcp", "backend": "10.0.0.21", "weight": 0})");
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(cp_->config().services[0].backends[0].weight, 0u);
  EXPECT_EQ(log.size(), 3u);
}

// The command table is the one list of names: each id finds its own entry, each name its id.
TEST(CommandTableTest, NamesAndIdsAgree) {
  std::set<std::string> names;
  for (const CommandSpec& c : Commands()) {
    EXPECT_EQ(&Spec(c.id), &c) << c.name;
    EXPECT_EQ(FindCommand(c.name), &c) << c.name;
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate " << c.name;
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(CommandId::kFault) + 1);
  EXPECT_EQ(FindCommand("reboot"), nullptr);
  EXPECT_EQ(FindCommand("service"), nullptr);
}

// What the client encodes is what the daemon decodes: only the command's own, set arguments.
TEST_F(ProtocolTest, EncodedRequestsRunAsTheClientMeantThem) {
  Request add;
  add.command = CommandId::kServiceAdd;
  add.service = "10.100.0.9:80/tcp";
  add.forward = "gre";
  add.hash = "source-ip";
  add.table_size = 251;
  add.client = "ignored: not an argument of service add";
  EXPECT_EQ(
      EncodeRequest(add),
      R"({"cmd":"service add","forward":"gre","hash":"source-ip","service":"10.100.0.9:80/tcp","table_size":251})");
  ASSERT_TRUE(DecodeReply(HandleRequest(*cp_, EncodeRequest(add))).ok());
  const ServiceConfig* s = cp_->config().FindService("10.100.0.9", 80, Protocol::kTcp);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->forward, ForwardMode::kGre);
  EXPECT_EQ(s->hash, HashMode::kSourceIp);
  EXPECT_EQ(s->table_size, 251u);

  Request backend;
  backend.command = CommandId::kBackendAdd;
  backend.service = "10.100.0.9:80/tcp";
  backend.backend = "10.0.0.30";
  backend.weight = 3;
  backend.id = 7;
  auto r = DecodeReply(HandleRequest(*cp_, EncodeRequest(backend)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["backend_id"], 7);
  EXPECT_EQ(cp_->config().FindService("10.100.0.9", 80, Protocol::kTcp)->backends[0].weight, 3u);

  Request conns;
  conns.command = CommandId::kConns;
  conns.limit = 5;
  EXPECT_EQ(EncodeRequest(conns), R"({"cmd":"conns","limit":5})");
  Request show;
  show.command = CommandId::kShow;
  show.backend = "not an argument of show";
  EXPECT_EQ(EncodeRequest(show), R"({"cmd":"show"})");
  show.service = "10.100.0.9:80/tcp";
  EXPECT_EQ(EncodeRequest(show), R"({"cmd":"show","service":"10.100.0.9:80/tcp"})");
}

// show and stats of one service; an unknown one is NotFound, a malformed one InvalidArgument.
TEST_F(ProtocolTest, ShowAndStatsOfOneService) {
  ASSERT_TRUE(Call(R"({"cmd": "service add", "service": "10.100.0.9:80/tcp"})").ok());
  ASSERT_TRUE(Call(R"({"cmd": "service add", "service": "10.100.0.9:81/tcp"})").ok());
  for (const char* cmd : {"show", "stats"}) {
    auto all = Call(absl::StrCat(R"({"cmd": ")", cmd, R"("})"));
    ASSERT_TRUE(all.ok()) << all.status();
    EXPECT_GE((*all)["services"].size(), 2u);
    auto one = Call(absl::StrCat(R"({"cmd": ")", cmd, R"(", "service": "10.100.0.9:81/tcp"})"));
    ASSERT_TRUE(one.ok()) << one.status();
    ASSERT_EQ((*one)["services"].size(), 1u) << cmd;
    EXPECT_EQ((*one)["services"][0]["service"], "10.100.0.9:81/tcp") << cmd;
    EXPECT_EQ(Call(absl::StrCat(R"({"cmd": ")", cmd, R"(", "service": "10.100.0.9:82/tcp"})"))
                  .status()
                  .code(),
              absl::StatusCode::kNotFound);
    EXPECT_EQ(Call(absl::StrCat(R"({"cmd": ")", cmd, R"(", "service": "10.100.0.9"})")).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

// Extensions answer their table commands with typed replies; unregistered, they are unknown.
TEST_F(ProtocolTest, ExtensionsGetTypedRequests) {
  EXPECT_EQ(Call(R"({"cmd": "drain"})").status(),
            absl::InvalidArgumentError("unknown command \"drain\""));
  EXPECT_EQ(Call(R"({"cmd": "fault", "fault": 5})").status(),
            absl::InvalidArgumentError("unknown command \"fault\""));
  cp_->AddExtension(CommandId::kDrain,
                    [](const Request&) -> absl::StatusOr<ExtensionReply> { return DrainReply{5}; });
  std::vector<Request> seen;
  cp_->AddExtension(CommandId::kFault, [&](const Request& r) -> absl::StatusOr<ExtensionReply> {
    seen.push_back(r);
    if (!r.worker) return absl::InvalidArgumentError("worker must be 0..0");
    return FaultReply{r.fault, *r.worker, static_cast<uint32_t>(r.ms.value_or(0))};
  });
  auto r = Call(R"({"cmd": "drain"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dump(), R"({"drain_s":5,"draining":true})");
  r = Call(R"({"cmd": "fault", "fault": "stall-worker", "worker": 0, "ms": 300})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dump(), R"({"fault":"stall-worker","ms":300,"worker":0})");
  // Fields of the wrong type reach the extension as absent: it words the refusal.
  EXPECT_EQ(Call(R"({"cmd": "fault", "fault": 5, "worker": "x", "ms": -1})").status(),
            absl::InvalidArgumentError("worker must be 0..0"));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].fault, "");
  EXPECT_FALSE(seen[1].worker.has_value());
  EXPECT_FALSE(seen[1].ms.has_value());
}

TEST(ReplyTest, DecodesOkErrorAndGarbage) {
  auto ok = DecodeReply(EncodeOk(json{{"a", 1}}));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)["a"], 1);
  EXPECT_EQ(DecodeReply(EncodeError(absl::ResourceExhaustedError("full"))).status(),
            absl::ResourceExhaustedError("full"));
  EXPECT_EQ(DecodeReply("garbage").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeReply(R"({"ok": "yes"})").status().code(), absl::StatusCode::kDataLoss);
}

TEST(EndpointTest, ServiceAndEndpointForms) {
  auto s = ParseServiceRef("10.1.1.1:80/tcp");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->vip, "10.1.1.1");
  EXPECT_EQ(s->port, 80);
  EXPECT_EQ(s->protocol, Protocol::kTcp);
  s = ParseServiceRef("[2001:DB8::1]:53/udp");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->Name(), "[2001:db8::1]:53/udp");
  for (const char* bad :
       {"", "10.1.1.1", "10.1.1.1:80", "10.1.1.1/tcp", "10.1.1.1:/tcp", "10.1.1.1:65536/tcp",
        "10.1.1.1:8x/tcp", "2001:db8::1:80/tcp", "[2001:db8::1/tcp", "[2001:db8::1]80/tcp",
        "host:80/tcp", "10.1.1.1:80/icmp", "10.1.1.1:-1/tcp"}) {
    EXPECT_EQ(ParseServiceRef(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  auto e = ParseEndpoint("10.0.0.5", false);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->port, 0);
  e = ParseEndpoint("2001:db8::5", false);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->address, "2001:db8::5");
  e = ParseEndpoint("[2001:db8::5]:8080", true);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->port, 8080);
  EXPECT_EQ(e->ToString(), "[2001:db8::5]:8080");
  EXPECT_FALSE(ParseEndpoint("10.0.0.5", true).ok());
  EXPECT_FALSE(ParseEndpoint("2001:db8::5", true).ok());
  EXPECT_FALSE(ParseEndpoint("10.0.0.5:0", false).ok());
  EXPECT_FALSE(ParseEndpoint("", false).ok());
}

}  // namespace
}  // namespace ecmplb::control
