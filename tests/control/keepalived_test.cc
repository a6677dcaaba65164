// Tests of the keepalived.conf importer (control/keepalived.h): the block syntax, includes,
// and the translation of realistic LVS files (tests/control/keepalived/, each also accepted
// by Debian's `keepalived -t`: keepalived_check.sh) into services the config parser accepts,
// with every setting that does not carry over listed by file and line.
#include "control/keepalived.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "control/config.h"

namespace ecmplb::control::keepalived {
namespace {

using nlohmann::ordered_json;

const std::string kDir = ECMPLB_SOURCE_DIR "/tests/control/keepalived";

// In-memory files for ParseText/Parse.
ParseOptions Files(std::map<std::string, std::string> files) {
  ParseOptions o;
  o.read = [files](const std::string& path) -> absl::StatusOr<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return absl::NotFoundError("cannot read " + path);
    return it->second;
  };
  o.glob = [files](const std::string& pattern) {
    std::vector<std::string> out;
    const size_t star = pattern.find('*');
    for (const auto& [path, text] : files) {
      if (star == std::string::npos ? path == pattern
                                    : path.compare(0, star, pattern, 0, star) == 0 &&
                                          path.size() >= pattern.size() - 1 &&
                                          path.compare(path.size() - (pattern.size() - star - 1),
                                                       std::string::npos, pattern, star + 1) == 0) {
        out.push_back(path);
      }
    }
    return out;
  };
  return o;
}

Translation FromText(const std::string& text) {
  auto tree = ParseText(text, "k.conf");
  EXPECT_TRUE(tree.ok()) << tree.status();
  return tree.ok() ? Translate(*tree) : Translation{};
}

// The notes as "LINE: not translated|note: TEXT-PREFIX" checks.
bool HasNote(const Translation& t, int line, Note::Kind kind, const std::string& text) {
  for (const Note& n : t.notes) {
    if (n.line == line && n.kind == kind && n.text.find(text) != std::string::npos) return true;
  }
  return false;
}

std::string Notes(const Translation& t) {
  std::string s;
  for (const Note& n : t.notes) s += FormatNote(n) + "\n";
  return s;
}

// The services, as the daemon would read them (under a stand-in host).
absl::StatusOr<Config> Validate(const Translation& t) {
  ordered_json doc = {{"host", {{"address", "192.0.2.1"}, {"prefix_length", 24},
                                {"address6", "2001:db8:ffff::1"}, {"prefix_length6", 64}}},
                      {"services", t.services}};
  return ParseConfig(doc.dump());
}

TEST(KeepalivedParseTest, BlocksCommentsQuotesAndLines) {
  auto tree = ParseText(
      "! a comment\n"
      "virtual_server 10.0.0.1 80{  # braces may touch words\n"
      "  real_server 10.0.0.2 80 { weight 3 }\n"
      "  MISC { misc_path \"/bin/check -x 1\" }\n"
      "}\n",
      "k.conf");
  ASSERT_TRUE(tree.ok()) << tree.status();
  ASSERT_EQ(tree->size(), 1u);
  const Statement& vs = (*tree)[0];
  EXPECT_EQ(vs.key, "virtual_server");
  EXPECT_EQ(vs.args, (std::vector<std::string>{"10.0.0.1", "80"}));
  EXPECT_TRUE(vs.block);
  EXPECT_EQ(vs.line, 2);
  ASSERT_EQ(vs.children.size(), 2u);
  EXPECT_EQ(vs.children[0].line, 3);
  ASSERT_EQ(vs.children[0].children.size(), 1u);
  EXPECT_EQ(vs.children[0].children[0].key, "weight");
  EXPECT_EQ(vs.children[0].children[0].args, std::vector<std::string>{"3"});
  EXPECT_EQ(vs.children[1].children[0].args, std::vector<std::string>{"/bin/check -x 1"});
}

TEST(KeepalivedParseTest, ErrorsNameFileAndLine) {
  auto open = ParseText("a {\n b {\n }\n", "x.conf");
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.status().message(), "x.conf:1: '{' is never closed");
  auto close = ParseText("a\n}\n", "x.conf");
  ASSERT_FALSE(close.ok());
  EXPECT_EQ(close.status().message(), "x.conf:2: '}' without an open block");
  auto quote = ParseText("a \"b\n", "x.conf");
  EXPECT_EQ(quote.status().message(), "x.conf:1: unterminated \"string\"");
  auto bare = ParseText("{\n}\n", "x.conf");
  EXPECT_EQ(bare.status().message(), "x.conf:1: '{' without a keyword before it");
  // Words become JSON strings: bytes that are not UTF-8 are refused; comments may hold anything.
  auto latin1 = ParseText("# caf\xe9\nreal_server 10.0.0.1 80 {\n  x caf\xe9\n}\n", "x.conf");
  EXPECT_EQ(latin1.status().message(), "x.conf:3: not UTF-8 text");
  EXPECT_FALSE(ParseText("x \xc3\n", "x.conf").ok());          // truncated
  EXPECT_FALSE(ParseText("x \xe0\x80\xaf\n", "x.conf").ok());  // overlong '/'
  EXPECT_FALSE(ParseText("x \xed\xa0\x80\n", "x.conf").ok());  // a surrogate
  EXPECT_TRUE(ParseText("# caf\xe9\nx caf\xc3\xa9 \xf0\x9f\x98\x80\n", "x.conf").ok());
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "a {\n";
  EXPECT_FALSE(ParseText(deep, "x.conf").ok());
}

TEST(KeepalivedParseTest, IncludesRelativeGlobbedAndBounded) {
  auto tree = Parse("/etc/k/keepalived.conf",
                    Files({{"/etc/k/keepalived.conf", "a 1\ninclude conf.d/*.conf\nz 9\n"},
                           {"/etc/k/conf.d/1.conf", "b 2\n"},
                           {"/etc/k/conf.d/2.conf", "c {\n include /etc/k/inner\n}\n"},
                           {"/etc/k/inner", "d 4\n"}}));
  ASSERT_TRUE(tree.ok()) << tree.status();
  ASSERT_EQ(tree->size(), 4u);
  EXPECT_EQ((*tree)[1].key, "b");
  EXPECT_EQ((*tree)[1].file, "/etc/k/conf.d/1.conf");
  EXPECT_EQ((*tree)[2].children[0].key, "d");  // an include inside a block
  EXPECT_EQ((*tree)[2].children[0].file, "/etc/k/inner");
  EXPECT_EQ((*tree)[3].line, 3);

  auto missing = Parse("/k.conf", Files({{"/k.conf", "include nothing*.conf\n"}}));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "/k.conf:1: include nothing*.conf matches no file");
  auto loop = Parse("/k.conf", Files({{"/k.conf", "include /k.conf\n"}}));
  ASSERT_FALSE(loop.ok());
  EXPECT_NE(loop.status().message().find("an include loop?"), std::string::npos);
}

TEST(KeepalivedTranslateTest, LvsDrExample) {
  auto tree = Parse(kDir + "/lvs-dr.conf");
  ASSERT_TRUE(tree.ok()) << tree.status();
  const Translation t = Translate(*tree);
  const ordered_json want = ordered_json::parse(R"([
    {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "forward": "dr",
     "health_check": {"type": "http", "path": "/healthz", "expect_status": 200,
                      "interval_ms": 5000, "timeout_ms": 2000, "rise": 1, "fall": 3},
     "backends": [{"address": "10.0.0.21", "weight": 1}, {"address": "10.0.0.22", "weight": 2},
                  {"address": "10.0.0.23", "weight": 0}]},
    {"vip": "10.100.0.1", "port": 443, "protocol": "tcp", "forward": "dr", "hash": "source-ip",
     "sorry_backend": {"address": "10.0.0.99"},
     "health_check": {"type": "tcp", "interval_ms": 10000, "timeout_ms": 3000, "rise": 1,
                      "fall": 2},
     "backends": [{"address": "10.0.0.21", "weight": 1}, {"address": "10.0.0.22", "weight": 1}]}
  ])");
  EXPECT_EQ(t.services, want) << t.services.dump(2);
  EXPECT_TRUE(Validate(t).ok()) << Validate(t).status();
  // Skipped blocks are named; the rest are notes on changed meaning.
  EXPECT_TRUE(HasNote(t, 4, Note::Kind::kUntranslated, "global_defs skipped")) << Notes(t);
  EXPECT_TRUE(HasNote(t, 12, Note::Kind::kUntranslated, "VRRP is not needed behind ECMP"));
  EXPECT_TRUE(HasNote(t, 25, Note::Kind::kDifference, "lb_algo wrr -> Maglev"));
  EXPECT_TRUE(HasNote(t, 38, Note::Kind::kDifference, "delay_before_retry"));
  int untranslated = 0;
  for (const Note& n : t.notes) untranslated += n.kind == Note::Kind::kUntranslated;
  EXPECT_EQ(untranslated, 2) << Notes(t);
  const std::string https = kDir + "/services.d/https.conf";
  bool persistence = false, inhibit = false;
  for (const Note& n : t.notes) {
    persistence |= n.file == https && n.line == 6 && n.text.find("persistence_timeout") == 0;
    inhibit |= n.file == https && n.line == 12 && n.text.find("inhibit_on_failure") == 0;
  }
  EXPECT_TRUE(persistence && inhibit) << Notes(t);
}

TEST(KeepalivedTranslateTest, TunGroupsDnsChecksAndChecksNotThere) {
  auto tree = Parse(kDir + "/tun-groups.conf");
  ASSERT_TRUE(tree.ok()) << tree.status();
  const Translation t = Translate(*tree);
  ASSERT_TRUE(Validate(t).ok()) << Validate(t).status() << t.services.dump(2);
  ASSERT_EQ(t.services.size(), 4u) << t.services.dump(2);
  for (int i = 0; i < 3; ++i) {
    const ordered_json& s = t.services[i];
    EXPECT_EQ(s["vip"], "10.100.1." + std::to_string(i + 1));
    EXPECT_EQ(s["protocol"], "udp");
    EXPECT_EQ(s["forward"], "ipip");  // lb_kind TUN
    EXPECT_EQ(s["hash"], "source-ip");  // lb_algo sh
    EXPECT_EQ(s["health_check"]["type"], "dns");
    EXPECT_EQ(s["health_check"]["query"], "example.com");
    EXPECT_EQ(s["health_check"]["query_type"], "A");
    EXPECT_EQ(s["health_check"]["interval_ms"], 3000);
    EXPECT_EQ(s["health_check"]["timeout_ms"], 3000);  // connect_timeout 5 s > delay_loop 3 s
    EXPECT_EQ(s["backends"].size(), 2u);
  }
  const ordered_json& v6 = t.services[3];
  EXPECT_EQ(v6["vip"], "2001:db8:100::1");
  EXPECT_EQ(v6["health_check"]["type"], "tcp");
  EXPECT_EQ(v6["health_check"]["interval_ms"], 2000);
  EXPECT_EQ(v6["health_check"]["timeout_ms"], 2000);  // connect_timeout 5 s > delay_loop 2 s
  EXPECT_EQ(v6["backends"].size(), 2u);
  EXPECT_EQ(v6["backends"][1]["weight"], 1);  // keepalived's default
  EXPECT_TRUE(HasNote(t, 14, Note::Kind::kDifference, "connect_timeout 5 s is longer"))
      << Notes(t);
  EXPECT_TRUE(HasNote(t, 9, Note::Kind::kDifference, "lb_algo sh"));
  EXPECT_TRUE(HasNote(t, 34, Note::Kind::kDifference, "connect_timeout 5 s is longer"));
  // SSL_GET -> https, but not the first real server's check, and its digest is not carried.
  EXPECT_TRUE(HasNote(t, 42, Note::Kind::kUntranslated, "digest: ecmplb compares")) << Notes(t);
  EXPECT_TRUE(HasNote(t, 38, Note::Kind::kUntranslated, "its check (differs) is not the one"));
  EXPECT_FALSE(t.complete());
}

TEST(KeepalivedTranslateTest, ScriptDnsAndUdpChecks) {
  // SSL_GET: https, with its url.
  const Translation tls = FromText(
      "virtual_server 10.1.0.9 443 {\n lb_kind DR\n protocol TCP\n"
      " real_server 10.0.0.21 443 {\n  SSL_GET {\n   url {\n    path /ready\n    status_code 204\n"
      "   }\n  }\n }\n}\n");
  ASSERT_EQ(tls.services.size(), 1u) << Notes(tls);
  EXPECT_EQ(tls.services[0]["health_check"]["type"], "https");
  EXPECT_EQ(tls.services[0]["health_check"]["path"], "/ready");
  EXPECT_EQ(tls.services[0]["health_check"]["expect_status"], 204);
  // MISC_CHECK is not in the keepalived -t fixtures: Debian's 2.2.7 dies checking one
  // (keepalived issue #2587).
  const Translation t = FromText(
      "virtual_server 10.1.0.1 25 {\n lb_kind DR\n protocol TCP\n delay_loop 10\n"
      " real_server 10.0.0.21 25 {\n  MISC_CHECK {\n   misc_path \"/usr/local/bin/smtp-ok 10.0.0.21\"\n"
      "   misc_timeout 4\n  }\n }\n}\n"
      "virtual_server 10.1.0.2 53 {\n lb_kind DR\n protocol UDP\n"
      " real_server 10.0.0.21 53 {\n  DNS_CHECK {\n  }\n }\n}\n"
      "virtual_server 10.1.0.3 5000 {\n lb_kind DR\n protocol UDP\n"
      " real_server 10.0.0.21 5000 {\n  UDP_CHECK {\n   payload 50494e47\n   require_reply 504f4e47\n"
      "  }\n }\n}\n"
      "virtual_server 10.1.0.4 5001 {\n lb_kind DR\n protocol UDP\n"
      " real_server 10.0.0.21 5001 {\n  UDP_CHECK {\n   payload 00ff\n  }\n }\n}\n"
      "virtual_server 10.1.0.5 25 {\n lb_kind DR\n protocol TCP\n"
      " real_server 10.0.0.21 25 {\n  MISC_CHECK {\n   misc_path /bin/true\n   misc_dynamic\n  }\n"
      " }\n}\n");
  ASSERT_TRUE(Validate(t).ok()) << Validate(t).status() << t.services.dump(2);
  ASSERT_EQ(t.services.size(), 5u);
  const ordered_json& misc = t.services[0]["health_check"];
  EXPECT_EQ(misc["type"], "script");
  EXPECT_EQ(misc["command"],
            ordered_json::array({"/bin/sh", "-c", "/usr/local/bin/smtp-ok 10.0.0.21"}));
  EXPECT_EQ(misc["interval_ms"], 10000);
  EXPECT_EQ(misc["timeout_ms"], 4000);  // misc_timeout
  const ordered_json& dns = t.services[1]["health_check"];
  EXPECT_EQ(dns["type"], "dns");
  EXPECT_EQ(dns["query"], ".");  // keepalived's defaults: the root's SOA
  EXPECT_EQ(dns["query_type"], "SOA");
  const ordered_json& udp = t.services[2]["health_check"];
  EXPECT_EQ(udp["type"], "udp");
  EXPECT_EQ(udp["send"], "PING");
  EXPECT_EQ(udp["expect"], "PONG");
  EXPECT_TRUE(HasNote(t, 26, Note::Kind::kDifference, "require_reply: keepalived compares"))
      << Notes(t);
  // No reply required: not the same check (and 00ff is not text).
  EXPECT_FALSE(t.services[3].contains("health_check"));
  EXPECT_TRUE(HasNote(t, 35, Note::Kind::kUntranslated, "payload: ecmplb's UDP check takes text"))
      << Notes(t);
  EXPECT_TRUE(HasNote(t, 34, Note::Kind::kUntranslated, "UDP_CHECK without require_reply"))
      << Notes(t);
  EXPECT_EQ(t.services[4]["health_check"]["command"], ordered_json::array({"/bin/sh", "-c", "/bin/true"}));
  EXPECT_TRUE(HasNote(t, 45, Note::Kind::kUntranslated, "misc_dynamic")) << Notes(t);
}

TEST(KeepalivedTranslateTest, ForwardingModes) {
  const Translation t = FromText(
      "virtual_server 10.1.0.1 80 {\n lb_kind TUN\n tunnel_type gue port 6080\n protocol TCP\n}\n"
      "virtual_server 10.1.0.2 80 {\n lb_kind NAT\n protocol TCP\n}\n"
      "virtual_server 10.1.0.3 80 {\n protocol TCP\n}\n"
      "virtual_server 10.1.0.4 80 {\n lb_kind DR\n tunnel_type gre\n protocol TCP\n}\n"
      "virtual_server 10.1.0.5 80 {\n tunnel_type gre\n lb_kind tun\n protocol TCP\n}\n");
  ASSERT_EQ(t.services.size(), 5u);
  EXPECT_EQ(t.services[0]["forward"], "gue");
  EXPECT_EQ(t.services[1]["forward"], "dr");
  EXPECT_TRUE(HasNote(t, 7, Note::Kind::kUntranslated, "lb_kind NAT")) << Notes(t);
  EXPECT_EQ(t.services[2]["forward"], "dr");
  EXPECT_TRUE(HasNote(t, 10, Note::Kind::kUntranslated, "no lb_kind")) << Notes(t);
  EXPECT_EQ(t.services[3]["forward"], "dr");
  EXPECT_TRUE(HasNote(t, 15, Note::Kind::kUntranslated, "tunnel_type without lb_kind TUN"));
  EXPECT_EQ(t.services[4]["forward"], "gre");  // order of the two lines does not matter
  EXPECT_TRUE(Validate(t).ok()) << Validate(t).status();
}

TEST(KeepalivedTranslateTest, RealServersThatCannotBeCarriedOver) {
  const Translation t = FromText(
      "virtual_server 10.1.0.1 80 {\n"            // 1
      " lb_kind DR\n protocol TCP\n"              // 2-3
      " real_server 10.0.0.1 8080 {\n }\n"        // 4-5: port translation
      " real_server 2001:db8::1 80 {\n }\n"       // 6-7: other family, DR
      " real_server 10.0.0.3 80 {\n"              // 8
      "  weight 100000\n"                         // 9
      "  notify_down /bin/page\n"                 // 10
      "  TCP_CHECK {\n connect_timeout 1\n bindto 10.0.0.11\n }\n"  // 11-14
      "  TCP_CHECK {\n connect_timeout 2\n }\n"   // 15-17
      " }\n"
      " real_server nonsense 80\n"                // 19
      " quorum 2\n"                               // 20
      "}\n"
      "virtual_server fwmark 3 {\n}\n"            // 22
      "virtual_server group nope {\n}\n"          // 24
      "virtual_server 10.1.0.1 80 {\n lb_kind DR\n protocol TCP\n}\n"  // 26: duplicate
      "some_future_block {\n}\n");                // 30
  ASSERT_EQ(t.services.size(), 1u) << t.services.dump(2);
  const ordered_json& s = t.services[0];
  ASSERT_EQ(s["backends"].size(), 1u) << s.dump(2);
  EXPECT_EQ(s["backends"][0]["weight"], 65535);
  EXPECT_EQ(s["health_check"]["timeout_ms"], 1000);
  EXPECT_TRUE(Validate(t).ok()) << Validate(t).status();
  for (const auto& [line, text] : std::vector<std::pair<int, std::string>>{
           {4, "not the service port 80"},
           {6, "DR needs a backend in the VIP's family"},
           {9, "weight 100000 is above"},
           {10, "'notify_down' has no ecmplb equivalent"},
           {13, "bindto: ecmplb checks the backend's own address"},
           {15, "ecmplb runs one check per backend"},
           {19, "real_server nonsense: not an address"},
           {20, "'quorum' has no ecmplb equivalent"},
           {22, "virtual_server fwmark"},
           {24, "no virtual_server_group of that name"},
           {26, "is already a service (k.conf:1)"},
           {30, "'some_future_block' has no ecmplb equivalent"}}) {
    EXPECT_TRUE(HasNote(t, line, Note::Kind::kUntranslated, text)) << line << "\n" << Notes(t);
  }
}

TEST(KeepalivedTranslateTest, HttpChecks) {
  const Translation t = FromText(
      "virtual_server 10.1.0.1 80 {\n lb_kind DR\n protocol TCP\n delay_loop 0.5\n"  // 1-4
      " real_server 10.0.0.1 80 {\n"                                                // 5
      "  HTTP_GET {\n"                                                              // 6
      "   url {\n path /a\n digest 0123\n }\n"                                      // 7-10
      "   url {\n path /b\n }\n"                                                    // 11-13
      "   nb_get_retry 4\n connect_port 8080\n"                                     // 14-15
      "  }\n }\n}\n"                                                                // 16-18
      "virtual_server 10.1.0.2 80 {\n lb_kind DR\n protocol TCP\n"                  // 19-21
      " real_server 10.0.0.1 80 {\n HTTP_GET {\n url {\n path /x\n status_code 200-299\n }\n"
      " }\n }\n}\n"                                                                 // 22-30
      "virtual_server 10.1.0.3 80 {\n lb_kind DR\n protocol TCP\n"                  // 31-33
      " real_server 10.0.0.1 80 {\n HTTP_GET {\n }\n }\n}\n");                      // 34-38
  ASSERT_EQ(t.services.size(), 3u);
  const ordered_json& a = t.services[0]["health_check"];
  EXPECT_EQ(a["path"], "/a");
  EXPECT_EQ(a["port"], 8080);
  EXPECT_EQ(a["fall"], 5);           // nb_get_retry 4
  EXPECT_EQ(a["interval_ms"], 500);  // delay_loop 0.5
  EXPECT_EQ(a["timeout_ms"], 500);   // keepalived's 5 s, capped at the interval
  EXPECT_TRUE(HasNote(t, 9, Note::Kind::kUntranslated, "digest")) << Notes(t);
  EXPECT_TRUE(HasNote(t, 11, Note::Kind::kUntranslated, "ecmplb checks one URL"));
  EXPECT_EQ(t.services[1]["health_check"]["expect_status"], 200);
  EXPECT_TRUE(HasNote(t, 26, Note::Kind::kUntranslated, "status_code 200-299"));
  EXPECT_EQ(t.services[2]["health_check"]["path"], "/");
  EXPECT_TRUE(HasNote(t, 35, Note::Kind::kDifference, "HTTP_GET without a url"));
  EXPECT_TRUE(HasNote(t, 35, Note::Kind::kDifference, "no status_code"));
  EXPECT_TRUE(Validate(t).ok()) << Validate(t).status();
}

TEST(KeepalivedTranslateTest, GroupRanges) {
  const Translation t = FromText(
      "virtual_server_group g {\n 10.1.0.254-255 80\n 2001:db8::fe-101 80\n"  // 1-3
      " 10.1.0.9-3 80\n 10.1.0.1 http\n}\n"                                  // 4-6
      "virtual_server_group g {\n}\n"                                        // 7
      "virtual_server group g {\n lb_kind DR\n protocol TCP\n}\n");           // 9
  ASSERT_EQ(t.services.size(), 6u) << t.services.dump(2);
  EXPECT_EQ(t.services[0]["vip"], "10.1.0.254");
  EXPECT_EQ(t.services[1]["vip"], "10.1.0.255");
  EXPECT_EQ(t.services[2]["vip"], "2001:db8::fe");
  EXPECT_EQ(t.services[5]["vip"], "2001:db8::101");
  EXPECT_TRUE(HasNote(t, 4, Note::Kind::kUntranslated, "not an address range")) << Notes(t);
  EXPECT_TRUE(HasNote(t, 5, Note::Kind::kUntranslated, "'http' is not a port"));
  EXPECT_TRUE(HasNote(t, 7, Note::Kind::kUntranslated, "is defined again"));
  EXPECT_TRUE(Validate(t).ok()) << Validate(t).status();
}

TEST(KeepalivedTranslateTest, NoteFormat) {
  EXPECT_EQ(FormatNote({Note::Kind::kUntranslated, "a.conf", 3, "x"}), "a.conf:3: not translated: x");
  EXPECT_EQ(FormatNote({Note::Kind::kDifference, "a.conf", 4, "y"}), "a.conf:4: note: y");
}

}  // namespace
}  // namespace ecmplb::control::keepalived
