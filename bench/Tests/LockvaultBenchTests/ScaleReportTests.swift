// bench/scale.sh's raw readings (clock times, /proc ticks, RSS) turned into the curve.
import Foundation
import Testing
@testable import lockvault_bench

@Suite struct ScaleReportTests {
    static func file(_ lines: [String]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("scale-\(UUID()).tsv").path
        try (["# locks\twaits\tarm\tt0\tt1\tclient_ticks\tserver_ticks\tclient_rss_kib\tserver_rss_kib\tlocks_in_use"] + lines)
            .joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theCurveAndItsVerdicts() throws {
        // 10 s windows at 100 ticks/s: 10 ticks are 1 % of a core.
        let path = try Self.file([
            "20\t10\toff\t0\t10\t0\t0\t0\t0\t4100",
            "20\t10\tB\t0\t10\t4\t6\t9000\t20480\t4100",
            "20\t10\tL\t0\t10\t5\t15\t9000\t20480\t4100",
            "20\t10\tlockvault\t0\t10\t6\t4\t30720\t10240\t4100",
            "2000\t10\toff\t0\t10\t0\t0\t0\t0\t400300",
            "2000\t10\tB\t0\t10\t4\t6\t9000\t20480\t400300",
            "2000\t10\tL\t0\t10\t5\t295\t9000\t20480\t400300",
            "2000\t10\tlockvault\t0\t10\t6\t14\t32768\t10240\t400300",
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let runs = try scaleRuns(path: path, clk: 100)
        #expect(runs.count == 8 && runs[3].cpuPercent == 1 && runs[3].clientRSSKiB == 30720)
        let report = try scaleReport(path: path, clk: 100)
        #expect(report.contains("| 20 | 4100 | 10 | 0.00 | 1.00 | 2.00 | 1.00 | 1.00× | 30.0 | 10.0 |"), "\(report)")
        #expect(report.contains("| 2000 | 400300 | 10 | 0.00 | 1.00 | 30.00 | 2.00 | 2.00× | 32.0 | 10.0 |"), "\(report)")
        #expect(report.contains("| lockvault ≤ 1.5 × B at 2000 locks per backend, 10 new waits/s | 2.00× | MISSED |"), "\(report)")
        #expect(report.contains("| lockvault flat from 20 to 2000 locks per backend (within 1.5×), 10 new waits/s | 2.00× | MISSED |"), "\(report)")
    }

    @Test func aMissingArmIsADashAndABadLineIsRefused() throws {
        let path = try Self.file(["200\t0\tlockvault\t0\t10\t1\t1\t1024\t1024\t40000"])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let report = try scaleReport(path: path, clk: 100)
        #expect(report.contains("| 200 | 40000 | 0 | — | — | — | 0.20 | — | 1.0 | 1.0 |"), "\(report)")
        #expect(!report.contains("MISSED"), "no verdict without B to compare with: \(report)")
        let bad = try Self.file(["200\t0\tlockvault\t0"])
        defer { try? FileManager.default.removeItem(atPath: bad) }
        #expect(throws: BenchError.self) { try scaleRuns(path: bad, clk: 100) }
    }

    @Test func aStageWithoutLockvaultIsLeftOutOfTheVerdicts() throws {
        let path = try Self.file([
            "20\t0\tB\t0\t10\t4\t6\t9000\t20480\t4100",
            "20\t0\tlockvault\t0\t10\t6\t4\t30720\t10240\t4100",
            "2000\t0\tB\t0\t10\t4\t6\t9000\t20480\t400300",
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let report = try scaleReport(path: path, clk: 100)
        #expect(report.contains("| lockvault ≤ 1.5 × B at 20 locks per backend, 0 new waits/s | 1.00× | met |"), "\(report)")
        #expect(!report.contains("at 2000 locks per backend"), "\(report)")
    }

    @Test func holdersLockTheirOwnRunOfPartitions() {
        #expect(scaleLockStatement(locks: 3, holder: 0, partitions: 2000) == "LOCK TABLE sc_p1, sc_p2, sc_p3 IN ACCESS SHARE MODE")
        // Wraps around the partitions.
        #expect(scaleLockStatement(locks: 2, holder: 1, partitions: 8) == "LOCK TABLE sc_p8, sc_p1 IN ACCESS SHARE MODE")
    }
}
