// The raw-measurement files the bench scripts write, read back as the report subcommands read
// them: keys and values, per-table row counts, the daemon's cycle lines, WAL positions.
import Foundation
import Testing
@testable import lockvault_bench

@Suite struct MeasurementsTests {
    func folder(_ files: [String: String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lv-bench-test-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        return dir
    }

    @Test func walPositions() throws {
        #expect(try walBytes(from: "0/16B3740", to: "0/16B3748") == 8)
        #expect(try walBytes(from: "0/FFFFFFFF", to: "1/0") == 1)
        #expect(throws: BenchError.self) { try walBytes(from: "x", to: "0/0") }
    }

    @Test func keysValuesAndFiles() throws {
        let dir = try folder(["measurements": "mode \nrc.hot 10 5.5 14 9.0\nrc.hot 14 9.0 20 20.3\nworst 1 2 3\n",
                              "a": "t_h 10\nt_s 5\n", "b": "t_h 25\nt_s 5\nt_x 3\n",
                              "log": #"{"msg":"cycle","cycle_ms":"2.5"}"# + "\n" + #"{"msg":"other"}"# + "\n" + #"{"msg":"cycle","cycle_ms":"1.25"}"# + "\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let m = try Measurements(dir: dir)
        #expect(try m.string("mode") == "")
        #expect(try m.numbers("worst") == [1, 2, 3])
        #expect(m.all("rc.hot").count == 2)
        let rc = try recordCycleDelta(m, "hot")
        #expect(rc.calls == 10 && abs(rc.ms - 14.8) < 1e-9)   // 3.5 + 11.3 (each window rounded to 0.1 ms, as shown)
        #expect(throws: BenchError.self) { try m.string("absent") }
        let d = try m.rowDeltas("a", "b")
        #expect(d.map(\.table) == ["t_h", "t_s"] && d.map(\.added) == [15, 0])
        #expect(try m.cycleTimes("log") == [2.5, 1.25])
        #expect(try m.firstCycleTime("log") == "2.5")
    }

    /// Part 5's history: 100 rows in 10 s is 864 000 a day; 2 days of that against a cap of 86 400 rows.
    @Test func historyRates() throws {
        let dir = try folder(["measurements": "HISTORY_DAYS 2\nHISTORY_CAP 86400\nwindow.change.begin 0 0/0 0 100.00\nwindow.change.end 0 0/0 0 110.04\n",
                              "rows-before": "t_a 0\nt_b 7\n", "rows-after": "t_a 100\nt_b 7\n", "rows-change-0": "", "rows-change-1": ""])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rates = try HistoryRates(Measurements(dir: dir))
        #expect(rates.seconds == 10)
        #expect(rates.measuredTotal == 1_728_000)
        #expect(rates.scale == 0.05)
        #expect(rates.psqlArguments == "-v t_a=43200 -v t_b=0")
    }
}
