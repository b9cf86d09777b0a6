#include "brfusion/common/ipv4.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace brfusion {

namespace {
std::uint32_t mask(int length) { return length == 0 ? 0 : ~std::uint32_t{0} << (32 - length); }
}  // namespace

std::optional<Ipv4> Ipv4::parse(std::string_view text) {
    // Only dotted decimal, all of the text: inet_pton stops at a NUL, so "192.0.2.1\0junk" would pass.
    if (text.empty() || text.size() > 15 || text.find_first_not_of("0123456789.") != std::string_view::npos) return std::nullopt;
    in_addr address{};
    if (::inet_pton(AF_INET, std::string(text).c_str(), &address) != 1) return std::nullopt;
    return Ipv4{ntohl(address.s_addr)};
}

std::string Ipv4::str() const {
    char text[INET_ADDRSTRLEN];
    const in_addr address{htonl(value)};
    ::inet_ntop(AF_INET, &address, text, sizeof text);
    return text;
}

std::optional<Ipv4Prefix> Ipv4Prefix::parse(std::string_view text) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto address = Ipv4::parse(text.substr(0, slash));
    int length = -1;
    const auto digits = text.substr(slash + 1);
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (!address || error != std::errc() || end != digits.data() + digits.size() || length < 0 || length > 32) return std::nullopt;
    if ((address->value & ~mask(length)) != 0) return std::nullopt;
    return Ipv4Prefix{*address, length};
}

std::string Ipv4Prefix::str() const { return network.str() + "/" + std::to_string(length); }

bool Ipv4Prefix::contains(Ipv4 address) const { return (address.value & mask(length)) == network.value; }

Ipv4 Ipv4Prefix::broadcast() const { return Ipv4{network.value | ~mask(length)}; }

}  // namespace brfusion
