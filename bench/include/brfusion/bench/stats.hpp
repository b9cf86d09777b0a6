#pragma once
// Summaries of repeated measurements. Each throws std::invalid_argument on no samples: a benchmark
// that measured nothing says so instead of printing a zero.

#include <vector>

namespace brfusion::bench {

double median(std::vector<double> samples);
// Nearest rank: the smallest sample with at least `fraction` (0-1) of the samples at or below it.
double percentile(std::vector<double> samples, double fraction);
double minimum(const std::vector<double>& samples);

struct Spread {
    double min, median, max;
};
Spread spread(const std::vector<double>& samples);
// numerators[i] / denominators[i]: paired runs' ratios. Throws std::invalid_argument when the
// counts differ or a denominator is not positive.
std::vector<double> ratios(const std::vector<double>& numerators, const std::vector<double>& denominators);

}  // namespace brfusion::bench
