#pragma once
// A small Open_vSwitch schema and database state for unit tests of the pure core.

#include "brfusion/ovs/replica.hpp"

namespace brfusion::ovs::test {

inline Schema test_schema() {
    return Schema::from_json(json::parse(R"({"name":"Open_vSwitch","tables":{
      "Open_vSwitch":{"columns":{"bridges":{"type":{"key":{"type":"uuid"},"min":0,"max":"unlimited"}},
                                 "next_cfg":{"type":"integer"},"cur_cfg":{"type":"integer"},
                                 "other_config":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}},
      "Bridge":{"columns":{"name":{"type":"string"},"datapath_type":{"type":"string"},
                           "ports":{"type":{"key":{"type":"uuid"},"min":0,"max":"unlimited"}},
                           "external_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}},
      "Port":{"columns":{"name":{"type":"string"},"interfaces":{"type":{"key":{"type":"uuid"},"min":1,"max":"unlimited"}},
                         "tag":{"type":{"key":{"type":"integer"},"min":0,"max":1}},
                         "external_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}},
      "Interface":{"columns":{"name":{"type":"string"},"type":{"type":"string"},
                              "options":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}},
                              "external_ids":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}},
                              "ofport":{"type":{"key":"integer","min":0,"max":1}},
                              "error":{"type":{"key":"string","min":0,"max":1}},
                              "mac_in_use":{"type":{"key":"string","min":0,"max":1}}}}}})"));
}

// Bridge br0 (netdev) with its local port and port p1 (tag 10, brfusion-vm=vm1).
inline Replica test_replica() {
    Replica replica(test_schema());
    replica.reset(json::parse(R"({
      "Open_vSwitch":{"root":{"initial":{"bridges":["uuid","b0"],"next_cfg":3,"cur_cfg":3,
                                        "other_config":["map",[["userspace-tso-enable","true"]]]}}},
      "Bridge":{"b0":{"initial":{"name":"br0","datapath_type":"netdev","ports":["set",[["uuid","pb"],["uuid","p1"]]],
                                 "external_ids":["map",[]]}}},
      "Port":{"pb":{"initial":{"name":"br0","interfaces":["uuid","ib"],"tag":["set",[]],"external_ids":["map",[]]}},
              "p1":{"initial":{"name":"p1","interfaces":["uuid","i1"],"tag":10,"external_ids":["map",[["brfusion-vm","vm1"]]]}}},
      "Interface":{"ib":{"initial":{"name":"br0","type":"internal","ofport":65534}},
                   "i1":{"initial":{"name":"p1","type":"internal","ofport":1,"external_ids":["map",[["brfusion-vm","vm1"]]]}}}
    })"));
    return replica;
}

}  // namespace brfusion::ovs::test
