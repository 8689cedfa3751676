import Foundation
import Logging
import Testing
@testable import SystemdSupport

@Suite struct JSONLogHandlerTests {
    /// Logs into a temporary file and parses every line back.
    func capture(now: Date = Date(timeIntervalSince1970: 1_795_000_000.5), _ body: (inout Logger) -> Void) throws -> [[String: Any]] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lv-log-\(UUID()).jsonl").path
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        #expect(fd >= 0)
        defer { unlink(path) }
        var logger = Logger(label: "lockvault.test") { JSONLogHandler(label: $0, level: .debug, fileDescriptor: fd, now: { now }) }
        body(&logger)
        close(fd)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test func hostileValuesStayOneParseableLineEach() throws {
        let hostile = "quote\" backslash\\ newline\n tab\t nul\u{0} bell\u{7} emoji 👩‍💻 sep\u{2028} '; DROP TABLE x; --"
        let big = String(repeating: "x", count: 1_000_000)
        let lines = try capture { logger in
            logger.info("\(hostile)", metadata: ["application_name": "\(hostile)", "query": "\(big)"])
            logger.warning("second", metadata: ["blocker.pid": "4711"])
        }
        #expect(lines.count == 2)
        #expect(lines[0]["msg"] as? String == hostile)
        #expect(lines[0]["application_name"] as? String == hostile)
        #expect((lines[0]["query"] as? String)?.count == 1_000_000)
        #expect(lines[0]["level"] as? String == "info")
        #expect(lines[1]["blocker.pid"] as? String == "4711")
        let ts = try #require(lines[0]["ts"] as? String)
        #expect(ts == "2026-11-18T11:06:40.500Z", "RFC 3339 UTC with milliseconds, read from the injected clock: \(ts)")
    }

    @Test func levelFilteringDropsBelowTheThreshold() throws {
        let lines = try capture { logger in
            logger.logLevel = .warning
            logger.info("dropped")
            logger.error("kept")
        }
        #expect(lines.map { $0["msg"] as? String } == ["kept"])
    }
}

@Suite struct JournalLogHandlerTests {
    @Test(arguments: [("severity", "LOCKVAULT_SEVERITY"), ("blocker.pid", "LOCKVAULT_BLOCKER_PID"), ("cycle-ms", "LOCKVAULT_CYCLE_MS"),
                      ("ünïcode", "LOCKVAULT__N_CODE"), ("9lives", "LOCKVAULT_9LIVES")])
    func fieldNamesAreJournalSafe(_ key: String, _ expected: String) {
        #expect(JournalLogHandler.fieldName(key) == expected)
    }

    @Test func entriesCarryPriorityMessageIdentifierAndMetadata() {
        let handler = JournalLogHandler(label: "lockvault")
        let fields = handler.fields(level: .critical, message: "CRITICAL blocker\nsecond line", metadata: ["severity": "CRITICAL", "blocker.pid": "4711"])
        #expect(fields.contains { $0 == ("PRIORITY", "2") })
        #expect(fields.contains { $0 == ("MESSAGE", "CRITICAL blocker\nsecond line") })
        #expect(fields.contains { $0 == ("SYSLOG_IDENTIFIER", "lockvault") })
        #expect(fields.contains { $0 == ("LOCKVAULT_SEVERITY", "CRITICAL") })
        #expect(fields.contains { $0 == ("LOCKVAULT_BLOCKER_PID", "4711") })
    }

    @Test func sendingWithoutAJournalReportsInsteadOfCrashing() {
        // No journald runs in CI: sd_journal_sendv returns an error (or 0 if one does).
        let result = JournalLogHandler.send([("MESSAGE", "lockvault test \u{0} with NUL"), ("PRIORITY", "7")])
        #expect(result <= 0)
    }

    @Test func autoPicksJSONOutsideTheJournal() {
        #expect(LogDestination.auto.resolved(environment: [:]) == .json)
        #expect(LogDestination.auto.resolved(environment: ["JOURNAL_STREAM": "0:0"]) == .json)
        #expect(LogDestination.journal.resolved(environment: [:]) == .journal)
    }
}
