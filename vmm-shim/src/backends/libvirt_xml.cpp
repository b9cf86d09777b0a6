#include "brfusion/shim/backends/libvirt_xml.hpp"

#include "brfusion/shim/error.hpp"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include <algorithm>
#include <cstdio>
#include <memory>

namespace brfusion::shim::libvirt_xml {

namespace {

const std::string kAliasPrefix = "ua-bf-nic-";

using Document = std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)>;

Document parse(const std::string& xml) {
    Document doc(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "domain.xml", nullptr, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING),
                 &xmlFreeDoc);
    if (!doc || !xmlDocGetRootElement(doc.get()) || std::string(reinterpret_cast<const char*>(xmlDocGetRootElement(doc.get())->name)) != "domain")
        throw ShimError(ErrorKind::BadRequest, "not a libvirt domain XML (no <domain> element)");
    return doc;
}

// The nodes an XPath expression selects.
std::vector<xmlNode*> select(xmlDoc* doc, const char* expression) {
    std::unique_ptr<xmlXPathContext, decltype(&xmlXPathFreeContext)> context(xmlXPathNewContext(doc), &xmlXPathFreeContext);
    std::unique_ptr<xmlXPathObject, decltype(&xmlXPathFreeObject)> result(xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(expression), context.get()),
                                                                         &xmlXPathFreeObject);
    std::vector<xmlNode*> nodes;
    if (result && result->nodesetval)
        for (int i = 0; i < result->nodesetval->nodeNr; ++i) nodes.push_back(result->nodesetval->nodeTab[i]);
    return nodes;
}

std::string attribute(xmlNode* node, const char* name) {
    xmlChar* value = xmlGetProp(node, reinterpret_cast<const xmlChar*>(name));
    if (!value) return "";
    std::string text(reinterpret_cast<const char*>(value));
    xmlFree(value);
    return text;
}

// libvirt writes numbers as decimal or 0x-hex.
int number(const std::string& text) {
    try {
        return std::stoi(text, nullptr, 0);
    } catch (const std::exception&) {
        throw ShimError(ErrorKind::BadRequest, "domain XML: '" + text + "' is not a number");
    }
}

xmlNode* child(xmlNode* parent, const char* name, std::initializer_list<std::pair<const char*, std::string>> attributes = {}) {
    xmlNode* node = xmlNewChild(parent, nullptr, reinterpret_cast<const xmlChar*>(name), nullptr);
    for (const auto& [key, value] : attributes) xmlSetProp(node, reinterpret_cast<const xmlChar*>(key), reinterpret_cast<const xmlChar*>(value.c_str()));
    return node;
}

std::string channel_xpath() { return std::string("/domain/devices/channel[target/@type='virtio'][target/@name='") + kChannelName + "']"; }

std::string serialize(xmlDoc* doc) {
    xmlChar* text = nullptr;
    int size = 0;
    xmlDocDumpFormatMemory(doc, &text, &size, 1);
    std::string xml(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
    xmlFree(text);
    return xml;
}

}  // namespace

std::string nic_alias(const std::string& host_if) { return kAliasPrefix + host_if; }

std::string host_if_of_alias(const std::string& alias) { return alias.starts_with(kAliasPrefix) ? alias.substr(kAliasPrefix.size()) : ""; }

std::vector<int> DomainLayout::free_root_ports() const {
    std::vector<int> free;
    for (int port : root_ports)
        if (!used_buses.count(port)) free.push_back(port);
    std::sort(free.begin(), free.end());
    return free;
}

DomainLayout read_layout(const std::string& domain_xml) {
    const Document doc = parse(domain_xml);
    DomainLayout layout;
    for (xmlNode* port : select(doc.get(), "/domain/devices/controller[@type='pci'][@model='pcie-root-port']"))
        layout.root_ports.push_back(number(attribute(port, "index")));
    for (xmlNode* address : select(doc.get(), "/domain/devices/*/address[@type='pci']")) {
        // A root port's own address is on the bus in front of it, not behind it: that counts too
        // (pcie.0 is bus 0, never a root port).
        layout.used_buses.insert(number(attribute(address, "bus")));
    }
    for (xmlNode* interface : select(doc.get(), "/domain/devices/interface[alias][address[@type='pci']]")) {
        std::string alias, bus;
        for (xmlNode* node = interface->children; node; node = node->next) {
            if (node->type != XML_ELEMENT_NODE) continue;
            const std::string name(reinterpret_cast<const char*>(node->name));
            if (name == "alias") alias = attribute(node, "name");
            if (name == "address") bus = attribute(node, "bus");
        }
        layout.interfaces[alias] = number(bus);
    }
    layout.acpi = !select(doc.get(), "/domain/features/acpi").empty();
    for (xmlNode* source : select(doc.get(), (channel_xpath() + "/source").c_str())) layout.channel = attribute(source, "path");
    return layout;
}

std::string interface_xml(const NicDevice& nic, int bus) {
    char bus_text[8];
    std::snprintf(bus_text, sizeof(bus_text), "0x%02x", bus & 0xff);
    return "<interface type='ethernet'>\n"
           "  <mac address='" + nic.mac + "'/>\n"
           "  <target dev='" + nic.host_if + "' managed='no'/>\n"
           "  <model type='virtio'/>\n"
           "  <mtu size='" + std::to_string(nic.mtu) + "'/>\n"
           "  <alias name='" + nic_alias(nic.host_if) + "'/>\n"
           "  <address type='pci' domain='0x0000' bus='" + bus_text + "' slot='0x00' function='0x0'/>\n"
           "</interface>\n";
}

std::string prepare_domain(const std::string& domain_xml, int spare_ports, const std::string& channel_path) {
    const DomainLayout layout = read_layout(domain_xml);
    const Document doc = parse(domain_xml);
    auto devices = select(doc.get(), "/domain/devices");
    xmlNode* parent = devices.empty() ? child(xmlDocGetRootElement(doc.get()), "devices") : devices.front();

    int next_index = 1;  // 0 is pcie-root
    for (xmlNode* controller : select(doc.get(), "/domain/devices/controller[@type='pci']"))
        next_index = std::max(next_index, number(attribute(controller, "index")) + 1);
    for (int missing = spare_ports - static_cast<int>(layout.free_root_ports().size()); missing > 0; --missing)
        child(parent, "controller", {{"type", "pci"}, {"index", std::to_string(next_index++)}, {"model", "pcie-root-port"}});

    const auto sources = select(doc.get(), (channel_xpath() + "/source").c_str());
    if (!sources.empty()) {
        xmlSetProp(sources.front(), reinterpret_cast<const xmlChar*>("path"), reinterpret_cast<const xmlChar*>(channel_path.c_str()));
    } else {
        xmlNode* channel = child(parent, "channel", {{"type", "unix"}});
        xmlNode* source = child(channel, "source", {{"mode", "connect"}, {"path", channel_path}});
        child(source, "reconnect", {{"enabled", "yes"}, {"timeout", "1"}});  // after a shim restart
        child(channel, "target", {{"type", "virtio"}, {"name", kChannelName}});
    }
    return serialize(doc.get());
}

}  // namespace brfusion::shim::libvirt_xml
