#include "brfusion/bench/stats.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace brfusion::bench {

namespace {
void require_samples(const std::vector<double>& samples) {
    if (samples.empty()) throw std::invalid_argument("no samples to summarise");
}
}  // namespace

double median(std::vector<double> samples) {
    require_samples(samples);
    std::sort(samples.begin(), samples.end());
    const std::size_t middle = samples.size() / 2;
    return samples.size() % 2 ? samples[middle] : (samples[middle - 1] + samples[middle]) / 2;
}

double percentile(std::vector<double> samples, double fraction) {
    require_samples(samples);
    if (fraction < 0 || fraction > 1) throw std::invalid_argument("a percentile's fraction lies in 0-1");
    std::sort(samples.begin(), samples.end());
    const auto rank = static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(samples.size())));
    return samples[rank == 0 ? 0 : rank - 1];
}

double minimum(const std::vector<double>& samples) {
    require_samples(samples);
    return *std::min_element(samples.begin(), samples.end());
}

Spread spread(const std::vector<double>& samples) {
    require_samples(samples);
    const auto [low, high] = std::minmax_element(samples.begin(), samples.end());
    return {*low, median(samples), *high};
}

std::vector<double> ratios(const std::vector<double>& numerators, const std::vector<double>& denominators) {
    if (numerators.size() != denominators.size()) throw std::invalid_argument("ratios of unpaired runs");
    std::vector<double> result;
    for (std::size_t i = 0; i < numerators.size(); ++i) {
        if (!(denominators[i] > 0)) throw std::invalid_argument("a ratio to a figure that is not positive");
        result.push_back(numerators[i] / denominators[i]);
    }
    return result;
}

}  // namespace brfusion::bench
