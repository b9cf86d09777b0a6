#pragma once
// Summaries of repeated measurements. Each throws std::invalid_argument on no samples: a benchmark
// that measured nothing says so instead of printing a zero.

#include <vector>

namespace brfusion::bench {

double median(std::vector<double> samples);
// Nearest rank: the smallest sample with at least `fraction` (0-1) of the samples at or below it.
double percentile(std::vector<double> samples, double fraction);
double minimum(const std::vector<double>& samples);

}  // namespace brfusion::bench
