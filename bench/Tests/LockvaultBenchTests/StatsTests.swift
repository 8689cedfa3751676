// The bench's statistics on known inputs: Student's t against published table values and the
// rank conventions of the cycle-time figures.
import Foundation
import Testing
@testable import lockvault_bench

@Suite struct StudentTTests {
    /// Two-sided 95 % (the 0.975 quantile) and 99 % values from the standard t table.
    @Test(arguments: [(1.0, 0.975, 12.7062), (2, 0.975, 4.3027), (5, 0.975, 2.5706), (9, 0.975, 2.2622),
                      (30, 0.975, 2.0423), (100, 0.975, 1.9840), (10, 0.995, 3.1693), (4, 0.95, 2.1318)])
    func quantile(df: Double, p: Double, expected: Double) {
        #expect(abs(studentTQuantile(p, df: df) - expected) < 5e-4)
    }

    @Test func symmetricAndBounded() {
        #expect(studentTQuantile(0.5, df: 7) == 0)
        #expect(abs(studentTQuantile(0.025, df: 7) + studentTQuantile(0.975, df: 7)) < 1e-9)
        #expect(studentTQuantile(0, df: 3).isNaN && studentTQuantile(1, df: 3).isNaN)
        // Many degrees of freedom: the normal quantile.
        #expect(abs(studentTQuantile(0.975, df: 1e6) - 1.95996) < 1e-4)
    }

    @Test func cdfInvertsTheQuantile() {
        for df in [1.0, 3, 12, 40] {
            for p in [0.6, 0.9, 0.99] { #expect(abs(studentTCDF(studentTQuantile(p, df: df), df: df) - p) < 1e-9) }
        }
    }

    /// The table the bench used before (three decimals, df 1–30) agrees with the computed values.
    @Test func agreesWithTheOldTable() {
        let table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
                     2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
        for (i, t) in table.enumerated() { #expect(abs(t95(i + 1) - t) < 6e-4, "df \(i + 1)") }
        #expect(t95(0).isNaN)
    }

    @Test func meanAndConfidenceInterval() {
        let (m, h) = meanCI([0.98, 1.0, 1.02, 0.99, 1.01])
        #expect(abs(m - 1) < 1e-12)
        // sd = 0.0158114, t(4) = 2.7764: half width 0.019632
        #expect(abs(h - 0.019632) < 1e-5)
        #expect(meanCI([1.5]).half.isNaN)
        #expect(abs(sampleSD([2, 4, 4, 4, 5, 5, 7, 9]) - 2.13809) < 1e-5)
    }
}

@Suite struct RankTests {
    @Test func ranks() {
        let v: [Double] = [5, 1, 4, 2, 3, 6]
        #expect(lowerMedian(v) == 3)
        #expect(lowerMedian([7]) == 7)
        #expect(nearestRank(v, 0.99) == 6)
        #expect(nearestRank(v, 0.5) == 3)   // rank round(3.0) = 3
        #expect(nearestRank([1, 2], 0.1) == 1)
        #expect(percentile([1, 2, 3, 4], 0.5) == 2.5)
        #expect(lowerMedian([]).isNaN && nearestRank([], 0.5).isNaN)
    }
}
