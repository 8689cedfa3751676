// The statistics every part of the bench reports: percentiles, means with a confidence interval
// from Student's t. Pure functions, so the report subcommands compute from files of raw numbers
// that the shell scripts measured.
import Foundation
import LockvaultCore

func ms(_ d: Duration) -> Double { d.milliseconds }

/// Linear interpolation between the two nearest ranks (the bench's own timings).
func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let rank = p * Double(sorted.count - 1)
    let lo = Int(rank.rounded(.down)), hi = Int(rank.rounded(.up))
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - Double(lo))
}

/// The value at rank round(n × p) (1-based, at least the first): the daemon's cycle times have
/// always been reported this way, so the figures stay comparable with earlier runs.
func nearestRank(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    let rank = Int(Double(sorted.count) * p + 0.5)
    return sorted[min(max(rank, 1), sorted.count) - 1]
}

/// The lower of the two middle values for an even count (rank (n + 1) / 2, rounded down).
func lowerMedian(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted[(sorted.count + 1) / 2 - 1]
}

func mean(_ xs: [Double]) -> Double { xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count) }

/// Sample standard deviation (n − 1); 0 for a single value.
func sampleSD(_ xs: [Double]) -> Double {
    guard xs.count > 1 else { return 0 }
    let m = mean(xs)
    return (xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1)).squareRoot()
}

/// Mean and the half width of its 95 % confidence interval (NaN for fewer than two values).
func meanCI(_ xs: [Double]) -> (mean: Double, half: Double) {
    guard !xs.isEmpty else { return (.nan, .nan) }
    guard xs.count > 1 else { return (mean(xs), .nan) }
    return (mean(xs), t95(xs.count - 1) * sampleSD(xs) / Double(xs.count).squareRoot())
}

/// Two-sided 95 % Student t for `df` degrees of freedom (NaN below 1).
func t95(_ df: Int) -> Double { df < 1 ? .nan : studentTQuantile(0.975, df: Double(df)) }

/// The regularized incomplete beta function I_x(a, b), by its continued fraction (modified
/// Lentz), on the side of x where that converges quickly.
func incompleteBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
    if x <= 0 { return 0 }
    if x >= 1 { return 1 }
    if x > (a + 1) / (a + b + 2) { return 1 - incompleteBeta(1 - x, b, a) }
    let logFront: Double = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(1 - x)
    let front = exp(logFront)
    let tiny = 1e-300
    var c = 1.0, d = 1 - (a + b) * x / (a + 1)
    if abs(d) < tiny { d = tiny }
    d = 1 / d
    var f = d
    for m in 1...300 {
        let m = Double(m)
        let even: Double = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        let odd: Double = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        for numerator in [even, odd] {
            d = 1 + numerator * d
            if abs(d) < tiny { d = tiny }
            c = 1 + numerator / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            f *= c * d
        }
        if abs(c * d - 1) < 1e-15 { break }
    }
    return front * f / a
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom.
func studentTCDF(_ t: Double, df: Double) -> Double {
    let tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5)
    return t >= 0 ? 1 - tail : tail
}

/// The `p` quantile of Student's t with `df` degrees of freedom: the CDF inverted by bisection
/// (monotone, so this always converges; a hundred halvings of the bracket are ample).
func studentTQuantile(_ p: Double, df: Double) -> Double {
    guard p > 0, p < 1, df > 0 else { return .nan }
    if p == 0.5 { return 0 }
    if p < 0.5 { return -studentTQuantile(1 - p, df: df) }
    var lo = 0.0, hi = 1.0
    while studentTCDF(hi, df: df) < p { lo = hi; hi *= 2 }
    for _ in 0..<100 {
        let mid = (lo + hi) / 2
        if studentTCDF(mid, df: df) < p { lo = mid } else { hi = mid }
    }
    return (lo + hi) / 2
}
