// flow_compare.h: readable test output for connection-table values. conntrack::FlowKey and
// conntrack::FlowSnapshot compare with == (whole entries: key, backend, last seen, state);
// with this header included, GoogleTest prints a mismatch as
// "tcp 10.0.0.1:1024 -> 192.168.0.1:80 svc 1 | backend 5 seen 10 established" instead of raw
// bytes. Thread-safety: pure functions; safe from any thread.
#pragma once

#include <ostream>
#include <string>

#include "conntrack/conntrack.h"
#include "conntrack/flow_key.h"

namespace ecmplb::conntrack {

// "proto src:sport -> dst:dport svc N" (addresses and ports as on the wire, decoded).
std::string FlowKeyText(const FlowKey& k);

// GoogleTest printers (found by argument-dependent lookup).
void PrintTo(const FlowKey& k, std::ostream* os);
void PrintTo(const FlowSnapshot& s, std::ostream* os);

}  // namespace ecmplb::conntrack
