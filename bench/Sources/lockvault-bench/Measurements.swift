// What the shell scripts measured, as they measured it: a file of `key value…` lines (a key may
// repeat, one line per run), files of `table rows` lines (one per vault table), and the daemon's
// own JSON log. The report subcommands compute everything else from these.
import Foundation

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

struct Measurements {
    let dir: String
    private var lines: [(key: String, value: String)] = []

    /// `file` in `dir`: one measurement a line, its key before the first space.
    init(dir: String, file: String = "measurements") throws {
        self.dir = dir
        for line in try String(contentsOfFile: dir + "/" + file, encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            lines.append((String(parts[0]), parts.count > 1 ? String(parts[1]) : ""))
        }
    }

    /// Every value of `key`, in the order they were written.
    func all(_ key: String) -> [String] { lines.filter { $0.key == key }.map(\.value) }
    func optional(_ key: String) -> String? { lines.last { $0.key == key }?.value }
    func string(_ key: String) throws -> String {
        guard let v = optional(key) else { throw BenchError("no measurement '\(key)' in \(dir)") }
        return v
    }
    func double(_ key: String) throws -> Double { try number(string(key), key) }
    func int(_ key: String) throws -> Int {
        guard let v = Int(try string(key)) else { throw BenchError("'\(key)' is not an integer: \(try string(key))") }
        return v
    }
    /// The last value of `key` as numbers (space-separated).
    func numbers(_ key: String) throws -> [Double] { try numbers(of: string(key), key) }
    func numbers(of value: String, _ key: String) throws -> [Double] { try parseNumbers(value, key) }

    /// A file the script left in `dir` (another subcommand's markdown), without its last newline.
    func text(_ file: String) throws -> String {
        var t = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
        while t.hasSuffix("\n") { t.removeLast() }
        return t
    }
    /// A file of `name number` lines (rows or bytes per table), in the file's order.
    func table(_ file: String) throws -> [(name: String, value: Double)] {
        try text(file).split(separator: "\n").compactMap { line -> (name: String, value: Double)? in
            let f = line.split(separator: " ")
            guard f.count == 2 else { return nil }
            return (String(f[0]), try number(String(f[1]), file))
        }
    }
    /// Rows per table from `before` to `after` (every table in both, by name).
    func rowDeltas(_ before: String, _ after: String) throws -> [(table: String, added: Double)] {
        func byName(_ file: String) throws -> [String: Double] {
            Dictionary(try table(file).map { ($0.name, $0.value) }, uniquingKeysWith: { x, _ in x })
        }
        let b = try byName(before), a = try byName(after)
        return b.keys.filter { a[$0] != nil }.sorted().map { ($0, a[$0]! - b[$0]!) }
    }

    /// The `cycle_ms` of every cycle line in a daemon log (debug logging: one JSON line a cycle),
    /// as the daemon wrote them.
    func cycleTimeTexts(_ file: String) throws -> [String] {
        try text(file).split(separator: "\n").compactMap { line -> String? in
            guard line.contains("\"msg\":\"cycle\""), let r = line.range(of: "\"cycle_ms\":\"") else { return nil }
            return String(line[r.upperBound...].prefix { $0 != "\"" })
        }
    }
    func cycleTimes(_ file: String) throws -> [Double] { try cycleTimeTexts(file).compactMap(Double.init) }
    func firstCycleTime(_ file: String) throws -> String { try cycleTimeTexts(file).first ?? "" }
}

/// Space-separated numbers.
func parseNumbers(_ value: String, _ what: String) throws -> [Double] {
    try value.split(separator: " ").map { try number(String($0), what) }
}

func number(_ s: String, _ what: String) throws -> Double {
    guard let v = Double(s.trimmingCharacters(in: .whitespaces)) else { throw BenchError("'\(what)' is not a number: '\(s)'") }
    return v
}

/// Bytes between two WAL positions (`pg_lsn` text, `X/Y` in hex), as pg_wal_lsn_diff.
func walBytes(from a: String, to b: String) throws -> Double {
    func bytes(_ lsn: String) throws -> Double {
        let p = lsn.split(separator: "/")
        guard p.count == 2, let hi = UInt64(p[0], radix: 16), let lo = UInt64(p[1], radix: 16) else { throw BenchError("not an LSN: \(lsn)") }
        return Double(hi << 32 | lo)
    }
    return try bytes(b) - bytes(a)
}

/// printf's `%.Nf`, as the reports have always rounded.
func fixed(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
/// `%.Nf` and back: a figure used further exactly as the report shows it.
func rounded(_ x: Double, _ digits: Int) -> Double { Double(fixed(x, digits))! }
func verdict(_ ok: Bool) -> String { ok ? "met" : "MISSED" }

/// `key value` lines, the format Measurements reads (a value on one line).
func keyValueLines(_ pairs: [(String, String)]) -> String {
    pairs.map { "\($0.0) \($0.1.replacingOccurrences(of: "\n", with: " "))" }.joined(separator: "\n")
}
