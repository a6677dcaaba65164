// views_json.h: the control socket's JSON encoding of the typed views (views.h): the "result"
// object of an ok reply, field for field what `ecmplbctl --json` prints (README "## ecmplbctl").
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "control/views.h"

namespace ecmplb::control {

nlohmann::json ToJson(const HealthView& v);
nlohmann::json ToJson(const ShowView& v);
nlohmann::json ToJson(const StatsView& v);
nlohmann::json ToJson(const SyncView& v);
nlohmann::json ToJson(const ConnsView& v);
nlohmann::json ToJson(const LookupView& v);
nlohmann::json ToJson(const ServiceListView& v);
nlohmann::json ToJson(const ApplyResult& v);
nlohmann::json ToJson(const ReloadResult& v);
nlohmann::json ToJson(const ExtensionReply& v);

}  // namespace ecmplb::control
