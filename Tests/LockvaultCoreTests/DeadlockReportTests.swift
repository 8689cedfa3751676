import Foundation
import Testing
@testable import LockvaultCore

/// Log excerpts captured from PostgreSQL 15.18 on this project's test cluster.
@Suite struct ServerLogDeadlockParserTests {
    static let stderrExcerpt = """
        2026-11-23 03:28:21.564 UTC [10191] postgres@postgres LOG:  process 10191 detected deadlock while waiting for ShareLock on transaction 750 after 1000.096 ms
        2026-11-23 03:28:21.564 UTC [10191] postgres@postgres DETAIL:  Process holding the lock: 10193. Wait queue: .
        2026-11-23 03:28:21.564 UTC [10191] postgres@postgres STATEMENT:  begin; update dl set v=1 where id=1;
        2026-11-23 03:28:21.564 UTC [10191] postgres@postgres ERROR:  deadlock detected
        2026-11-23 03:28:21.564 UTC [10191] postgres@postgres DETAIL:  Process 10191 waits for ShareLock on transaction 750; blocked by process 10193.
        \tProcess 10193 waits for ShareLock on transaction 749; blocked by process 10191.
        \tProcess 10191: update dl set v=1 where id=2;
        \tProcess 10193: update dl set v=2
        \t  where id=1;
        2026-11-23 03:28:21.564 UTC [10191] postgres@postgres HINT:  See server log for query details.
        2026-11-23 03:28:21.564 UTC [10191] postgres@postgres CONTEXT:  while updating tuple (0,2) in relation "dl"

        """

    @Test func stderrReportWithParticipantsAndMultiLineQuery() throws {
        var parser = ServerLogDeadlockParser(format: .stderr)
        let reports = parser.feed(Self.stderrExcerpt) + parser.flush()
        let report = try #require(reports.first)
        #expect(reports.count == 1)
        #expect(report.victimPid == 10191)
        #expect(report.database == "postgres")
        #expect(report.user == "postgres")
        #expect(report.pids == [10191, 10193])
        #expect(report.participants[0] == DeadlockParticipant(pid: 10191, waitsFor: "ShareLock on transaction 750", blockedBy: 10193, query: "update dl set v=1 where id=2;"))
        #expect(report.participants[1].query == "update dl set v=2\n  where id=1;")
        #expect(abs((report.detectedAt?.timeIntervalSince1970 ?? 0) - 1_795_404_501.564) < 0.001)
    }

    @Test func stderrSplitAtAnyByteStillYieldsOneReport() {
        let text = Self.stderrExcerpt
        for cut in stride(from: 1, to: text.count, by: 37) {
            var parser = ServerLogDeadlockParser(format: .stderr)
            let index = text.index(text.startIndex, offsetBy: cut)
            let reports = parser.feed(String(text[..<index])) + parser.feed(String(text[index...])) + parser.flush()
            #expect(reports.count == 1, "cut at \(cut)")
            #expect(reports.first?.participants.count == 2, "cut at \(cut)")
        }
    }

    @Test func csvlogRecordSpanningLines() throws {
        let csv = #"""
            2026-11-23 03:28:47.194 UTC,"postgres","appdb",10305,"[local]",6b03b2ed.2841,2,"UPDATE",2026-11-23 03:28:45 UTC,3/3,752,ERROR,40P01,"deadlock detected","Process 10305 waits for ShareLock on transaction 753; blocked by process 10307.
            Process 10307 waits for ShareLock on transaction 752; blocked by process 10305.
            Process 10305: begin; update dl set v=1 where id=1;
            Process 10307: update ""dl"" set v=2 where id=1;","See server log for query details.",,,"while updating tuple (0,6) in relation ""dl""","begin;",,,"psql","client backend",,0
            2026-11-23 03:28:48.000 UTC,"postgres","appdb",10306,"[local]",6b03b2ed.2842,1,"SELECT",2026-11-23 03:28:45 UTC,3/4,0,LOG,00000,"unrelated",,,,,,,,,"psql","client backend",,0

            """#
        var parser = ServerLogDeadlockParser(format: .csvlog)
        let half = csv.index(csv.startIndex, offsetBy: 200)
        let reports = parser.feed(String(csv[..<half])) + parser.feed(String(csv[half...]))
        let report = try #require(reports.first)
        #expect(reports.count == 1)
        #expect(report.database == "appdb")
        #expect(report.victimPid == 10305)
        #expect(report.participants.map(\.pid) == [10305, 10307])
        #expect(report.participants[1].query == #"update "dl" set v=2 where id=1;"#)
        #expect(report.context == #"while updating tuple (0,6) in relation "dl""#)
    }

    @Test func jsonlogLine() throws {
        let line = #"{"timestamp":"2026-11-23 03:28:47.194 UTC","user":"postgres","dbname":"postgres","pid":10305,"error_severity":"ERROR","state_code":"40P01","message":"deadlock detected","detail":"Process 10305 waits for ShareLock on transaction 753; blocked by process 10307.\nProcess 10307 waits for ExclusiveLock on advisory lock [5,0,42,1]; blocked by process 10305.\nProcess 10305: select 1;\nProcess 10307: select 2;","context":"while updating tuple (0,6) in relation \"dl\""}"# + "\n"
        var parser = ServerLogDeadlockParser(format: .jsonlog)
        let report = try #require(parser.feed(line).first)
        #expect(report.participants[1].waitsFor == "ExclusiveLock on advisory lock [5,0,42,1]")
        #expect(report.participants[1].query == "select 2;")
        #expect(report.detectedAt != nil)
    }

    @Test func linesWithoutDeadlocksYieldNothing() {
        var parser = ServerLogDeadlockParser(format: .stderr)
        let noise = "2026-11-23 03:24:45.808 UTC [7046] postgres@postgres ERROR:  boom\n2026-11-23 03:24:45.808 UTC [7046] postgres@postgres DETAIL:  Process 1 waits for x; blocked by process 2.\n"
        #expect((parser.feed(noise) + parser.flush()).isEmpty)
    }
}
