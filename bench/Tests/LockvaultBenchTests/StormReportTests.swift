// bench/storm.sh's raw readings (clock times and /proc ticks) turned into its report's figures.
import Foundation
import Testing
@testable import lockvault_bench

@Suite struct StormReportTests {
    @Test func worstCase() throws {
        // 30 ticks of the daemon and 20 of its sessions at 100 ticks/s over 60 s: 0.50 % and 0.33 % of a core.
        let text = try stormWorstCase(clk: 100, readings: [100, 130, 50, 70, 0, 60, 59, 1])
        #expect(text.contains("60 s, 59 cycles, 1 of them read pg_locks: the daemon 0.50 % of a core"))
        #expect(text.hasSuffix("0.33 % (target: together ≤ 0.5 %: MISSED)."))
        #expect(throws: BenchError.self) { try stormWorstCase(clk: 100, readings: [1, 2]) }
    }

    @Test func armsAgainstTheirRoundsOff() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("storm-\(UUID()).tsv").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try """
            # round\tarm\ttps\tt0\tt1\tclient_ticks\tserver_ticks\tcycles\tpasses
            1\toff\t1000\t0\t10\t0\t0\t0\t0
            1\tB\t990\t0\t10\t1\t2\t0\t0
            2\toff\t1010\t0\t10\t0\t0\t0\t0
            2\tB\t985\t0\t10\t1\t2\t0\t0
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let runs = try stormRuns(path: path, clk: 100)
        #expect(runs.count == 4 && runs[1].wallSeconds == 10 && runs[1].serverCPU == 0.02)
        // Costs 1 % and 2.475 %: mean 1.74 %, t(1) = 12.706 over the two.
        #expect(try stormReport(path: path, clk: 100).contains("| 2 | 988 | 1.74 % (-7.63 … 11.11) | 0.10 | 0.20 | 0.30 | one per waiter |"))
    }
}
