#pragma once
// IPv4 addresses and prefixes (value types; parse/format).

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace brfusion {

struct Ipv4 {
    std::uint32_t value = 0;  // host byte order
    static std::optional<Ipv4> parse(std::string_view text);
    std::string str() const;
    auto operator<=>(const Ipv4&) const = default;
};

struct Ipv4Prefix {
    Ipv4 network;  // host bits zero
    int length = 0;
    // "198.51.100.0/24"; nullopt on syntax errors or host bits set ("198.51.100.1/24").
    static std::optional<Ipv4Prefix> parse(std::string_view text);
    std::string str() const;
    bool contains(Ipv4 address) const;
    bool overlaps(const Ipv4Prefix& other) const { return contains(other.network) || other.contains(network); }
    Ipv4 broadcast() const;
    auto operator<=>(const Ipv4Prefix&) const = default;
};

}  // namespace brfusion
