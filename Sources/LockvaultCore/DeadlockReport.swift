public import Foundation

/// A deadlock as PostgreSQL's detector reported it in the server log.
///
/// The detector runs after `deadlock_timeout` and cancels one participant, usually between two
/// 1 s samples; the log's "deadlock detected" entry is then the only place that says who took
/// part and what each ran.
public struct DeadlockReport: Sendable, Hashable, Codable {
    public var detectedAt: Date?
    public var database: String?
    /// The database OID the DETAIL names (`… of database 16384`), when it names one: places
    /// the report when the log line has no database name.
    public var databaseOID: UInt32?
    public var user: String?
    /// The backend that received the 40P01 error (the victim).
    public var victimPid: Int32?
    public var participants: [DeadlockParticipant]
    /// The log's CONTEXT, e.g. `while updating tuple (0,2) in relation "dl"`.
    public var context: String?

    public init(detectedAt: Date?, database: String?, user: String?, victimPid: Int32?, participants: [DeadlockParticipant], context: String?,
                databaseOID: UInt32? = nil) {
        self.detectedAt = detectedAt
        self.database = database
        self.databaseOID = databaseOID
        self.user = user
        self.victimPid = victimPid
        self.participants = participants
        self.context = context
    }

    public var pids: Set<Int32> { Set(participants.map(\.pid)) }
}

public struct DeadlockParticipant: Sendable, Hashable, Codable {
    public var pid: Int32
    /// What it waited for, as the server said it: `ShareLock on transaction 750`.
    public var waitsFor: String
    public var blockedBy: Int32?
    public var query: String?

    public init(pid: Int32, waitsFor: String, blockedBy: Int32?, query: String?) {
        self.pid = pid
        self.waitsFor = waitsFor
        self.blockedBy = blockedBy
        self.query = query
    }

    /// The first `of database N` in a deadlock's DETAIL (relation, tuple, page, object and
    /// advisory locks name it; transaction ids don't).
    public static func databaseOID(inDetail detail: String) -> UInt32? {
        var rest = detail[...]
        while let r = rest.range(of: "of database ") {
            let digits = rest[r.upperBound...].prefix { $0.isNumber }
            if let oid = UInt32(digits) { return oid }
            rest = rest[r.upperBound...]
        }
        if let r = detail.range(of: "advisory lock ["), let end = detail[r.upperBound...].firstIndex(of: ",") {
            return UInt32(detail[r.upperBound..<end])   // [database, classid, objid, objsubid]
        }
        return nil
    }

    /// Parses the DETAIL text of a "deadlock detected" error:
    /// `Process N waits for MODE on TARGET; blocked by process M.` lines, then `Process N: query`.
    public static func parseDetail(_ detail: String) -> [DeadlockParticipant] {
        var participants: [DeadlockParticipant] = []
        var queries: [Int32: String] = [:]
        var lastQueryPid: Int32?
        for raw in detail.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.hasPrefix("\t") ? raw.dropFirst() : raw[...]
            if line.hasPrefix("Process "), let waits = line.range(of: " waits for ") {
                lastQueryPid = nil
                guard let pid = Int32(line[line.index(line.startIndex, offsetBy: 8)..<waits.lowerBound]) else { continue }
                var rest = line[waits.upperBound...]
                var blockedBy: Int32?
                if let blocked = rest.range(of: "; blocked by process ") {
                    blockedBy = Int32(rest[blocked.upperBound...].trimmingCharacters(in: CharacterSet(charactersIn: ".")))
                    rest = rest[..<blocked.lowerBound]
                }
                participants.append(DeadlockParticipant(pid: pid, waitsFor: String(rest), blockedBy: blockedBy, query: nil))
            } else if line.hasPrefix("Process "), let colon = line.range(of: ": "),
                      let pid = Int32(line[line.index(line.startIndex, offsetBy: 8)..<colon.lowerBound]) {
                queries[pid] = String(line[colon.upperBound...])
                lastQueryPid = pid
            } else if let pid = lastQueryPid {
                queries[pid, default: ""] += "\n" + line
            }
        }
        return participants.map { p in
            var p = p
            p.query = queries[p.pid]
            return p
        }
    }
}

/// The server log formats lockvault can read deadlock details from (`log_destination`).
public enum ServerLogFormat: String, Sendable, Codable, CaseIterable {
    case stderr, csvlog, jsonlog

    /// The format of a log file by its name, as PostgreSQL's logging collector names them
    /// (`.csv` for csvlog, `.json` for jsonlog, anything else stderr).
    public init(inferredFromPath path: String) {
        if path.hasSuffix(".csv") { self = .csvlog } else if path.hasSuffix(".json") { self = .jsonlog } else { self = .stderr }
    }
}

/// Finds "deadlock detected" reports in server log text fed to it in chunks, as a file tailer
/// reads them. Pure: no file access, so every format is unit-tested on real log excerpts.
///
/// stderr: lines are read with the server's own `log_line_prefix` (``LogLinePrefix``), so
/// time, pid, user and database are found wherever that prefix puts them (or not at all, when
/// it lacks them: then the tracker places the report by the DETAIL's database OID or its
/// participants).
public struct ServerLogDeadlockParser: Sendable {
    public let format: ServerLogFormat
    public let linePrefix: LogLinePrefix
    private var pending = ""
    // stderr: an entry (line plus tab-indented continuations) is complete once the next starts.
    private var entry: (line: LogLinePrefix.Line, continuation: [Substring])?
    private var awaitingDetail: LogLinePrefix.Line?

    public init(format: ServerLogFormat, linePrefix: String = LogLinePrefix.debianDefault) {
        self.format = format
        self.linePrefix = LogLinePrefix(linePrefix)
    }

    /// Feeds more log text; returns the reports completed by it.
    public mutating func feed(_ text: String) -> [DeadlockReport] {
        pending += text
        guard let lastNewline = pending.lastIndex(of: "\n") else { return [] }
        let complete = String(pending[...lastNewline])
        pending = String(pending[pending.index(after: lastNewline)...])
        switch format {
        case .jsonlog: return complete.split(separator: "\n").compactMap(Self.jsonReport)
        case .csvlog: return csvReports(complete)
        case .stderr: return stderrLines(complete.split(separator: "\n", omittingEmptySubsequences: false).dropLast())
        }
    }

    /// Call when the log has been quiet for a moment: completes a buffered stderr entry that
    /// no following line has closed yet.
    public mutating func flush() -> [DeadlockReport] {
        guard format == .stderr else { return [] }
        return finishEntry()
    }

    // MARK: jsonlog

    static func jsonReport(_ line: Substring) -> DeadlockReport? {
        guard line.contains("\"40P01\""),
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              object["state_code"] as? String == "40P01",
              let detail = object["detail"] as? String
        else { return nil }
        return DeadlockReport(
            detectedAt: (object["timestamp"] as? String).flatMap { LogTimestamp.parse($0) },
            database: object["dbname"] as? String,
            user: object["user"] as? String,
            victimPid: (object["pid"] as? Int).map { Int32($0) },
            participants: DeadlockParticipant.parseDetail(detail),
            context: object["context"] as? String,
            databaseOID: DeadlockParticipant.databaseOID(inDetail: detail)
        )
    }

    // MARK: csvlog

    private var csvCarry = ""

    private mutating func csvReports(_ text: String) -> [DeadlockReport] {
        // A quoted field may span lines: keep an unbalanced tail for the next chunk.
        let input = csvCarry + text
        let (records, rest) = CSV.records(input)
        csvCarry = rest
        return records.compactMap { f in
            guard f.count > 19, f[12] == "40P01" else { return nil }
            return DeadlockReport(
                detectedAt: LogTimestamp.parse(f[0]),
                database: f[2].isEmpty ? nil : f[2],
                user: f[1].isEmpty ? nil : f[1],
                victimPid: Int32(f[3]),
                participants: DeadlockParticipant.parseDetail(f[14]),
                context: f[18].isEmpty ? nil : f[18],
                databaseOID: DeadlockParticipant.databaseOID(inDetail: f[14])
            )
        }
    }

    // MARK: stderr

    private mutating func stderrLines(_ lines: ArraySlice<Substring>) -> [DeadlockReport] {
        var reports: [DeadlockReport] = []
        for line in lines {
            if line.hasPrefix("\t") {
                entry?.continuation.append(line.dropFirst())
            } else {
                reports += finishEntry()
                // Only an ERROR and the DETAIL after it matter: other lines are not matched
                // against the prefix at all, so a busy log (log_statement = all) stays cheap.
                guard line.contains("ERROR:  ") || line.contains("DETAIL:  ") else { continue }
                if let parsed = linePrefix.parse(line) { entry = (parsed, []) }
            }
        }
        return reports
    }

    private mutating func finishEntry() -> [DeadlockReport] {
        guard let (line, continuation) = entry else { return [] }
        entry = nil
        if line.severity == "ERROR", line.sqlState == "40P01" || line.message == "deadlock detected" || line.message.hasPrefix("40P01: ") {
            awaitingDetail = line
            return []
        }
        guard let error = awaitingDetail, line.pid == error.pid else { return [] }
        guard line.severity == "DETAIL" else {
            if !["HINT", "CONTEXT", "STATEMENT", "LOCATION"].contains(line.severity) { awaitingDetail = nil }
            return []
        }
        awaitingDetail = nil
        let detail = ([line.message] + continuation.map(String.init)).joined(separator: "\n")
        return [DeadlockReport(
            detectedAt: error.timestamp,
            database: error.database,
            user: error.user,
            victimPid: error.pid,
            participants: DeadlockParticipant.parseDetail(detail),
            context: nil,
            databaseOID: DeadlockParticipant.databaseOID(inDetail: detail)
        )]
    }
}

/// Minimal RFC 4180 reader for csvlog.
enum CSV {
    /// Complete records, and the unfinished tail (inside an open quote) to carry over.
    static func records(_ text: String) -> ([[String]], String) {
        var records: [[String]] = []
        var fields: [String] = []
        var field = ""
        var quoted = false
        var recordStart = text.startIndex
        var i = text.startIndex
        while i < text.endIndex {
            let ch = text[i]
            if quoted {
                if ch == "\"" {
                    let next = text.index(after: i)
                    if next < text.endIndex, text[next] == "\"" { field.append("\""); i = next } else { quoted = false }
                } else {
                    field.append(ch)
                }
            } else {
                switch ch {
                case "\"": quoted = true
                case ",": fields.append(field); field = ""
                case "\n":
                    fields.append(field); field = ""
                    records.append(fields); fields = []
                    recordStart = text.index(after: i)
                default: field.append(ch)
                }
            }
            i = text.index(after: i)
        }
        return (records, String(text[recordStart...]))
    }
}

/// Server log timestamps: `2026-11-23 03:28:47.194 UTC` (%m), `2026-11-23 03:28:47 UTC` (%t),
/// or with a numeric offset.
enum LogTimestamp {
    static func parse(prefixTimestamp prefix: String) -> Date? {
        let tokens = prefix.split(separator: " ")
        guard tokens.count >= 3 else { return nil }
        return parse(tokens[0...2].joined(separator: " "))
    }

    static func parse(_ text: String) -> Date? {
        let tokens = text.split(separator: " ")
        guard tokens.count == 3 else { return nil }
        let dateParts = tokens[0].split(separator: "-").compactMap { Int($0) }
        let timeParts = tokens[1].split(separator: ":")
        guard dateParts.count == 3, timeParts.count == 3,
              let hour = Int(timeParts[0]), let minute = Int(timeParts[1]), let seconds = Double(timeParts[2])
        else { return nil }
        let zoneName = String(tokens[2])
        let zone: TimeZone?
        if let sign = zoneName.first, sign == "+" || sign == "-", let hours = Int(zoneName.dropFirst()) {
            zone = TimeZone(secondsFromGMT: (sign == "-" ? -1 : 1) * hours * 3600)
        } else {
            zone = TimeZone(abbreviation: zoneName) ?? TimeZone(identifier: zoneName)
        }
        guard let zone else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let whole = Int(seconds)
        guard let base = calendar.date(from: DateComponents(year: dateParts[0], month: dateParts[1], day: dateParts[2], hour: hour, minute: minute, second: whole)) else { return nil }
        return base.addingTimeInterval(seconds - Double(whole))
    }
}
