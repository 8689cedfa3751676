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

/// `log_line_prefix` as sites set it: each read by the prefix itself, not by assumption.
@Suite struct LogLinePrefixTests {
    /// One deadlock's ERROR and DETAIL lines, under `prefix`'s rendering `rendered`.
    static func excerpt(_ rendered: String) -> String {
        """
        \(rendered)ERROR:  deadlock detected
        \(rendered)DETAIL:  Process 4242 waits for ShareLock on transaction 750; blocked by process 4343.
        \tProcess 4343 waits for ExclusiveLock on tuple (0,1) of relation 16390 of database 16384; blocked by process 4242.
        \tProcess 4242: UPDATE dl SET v = 1 WHERE id = 2
        \tProcess 4343: UPDATE dl SET v = 2 WHERE id = 1
        \(rendered)HINT:  See server log for query details.
        2026-12-01 10:00:00.000 UTC [99] LOG:  checkpoint starting: time

        """
    }

    static let cases: [(prefix: String, rendered: String, database: String?, user: String?, timed: Bool)] = [
        ("%m [%p] %q%u@%d ", "2026-12-01 10:00:01.250 UTC [4242] app@shop ", "shop", "app", true),
        ("%t [%p]: ", "2026-12-01 10:00:01 UTC [4242]: ", nil, nil, true),
        ("%m [%p] %a ", "2026-12-01 10:00:01.250 UTC [4242] psql ", nil, nil, true),
        ("%m [%p] %a ", "2026-12-01 10:00:01.250 UTC [4242]  ", nil, nil, true),   // empty application_name
        ("%m [%p-%l] %q%v %x user=%u,db=%d ", "2026-12-01 10:00:01.250 UTC [4242-7] 3/12 750 user=app,db=shop ", "shop", "app", true),
        ("%n %e [%p] <%c> %b %i ", "1796119201.250 40P01 [4242] <674c3ad1.1092> client backend UPDATE ", nil, nil, true),
        ("[%p] %-12a|%d|%h ", "[4242] psql        |shop|[local] ", "shop", nil, false),
        ("%%%p%% %s %r ", "%4242% 2026-12-01 09:59:00 UTC [local] ", nil, nil, false),
        ("", "", nil, nil, false),
    ]

    @Test(arguments: 0..<LogLinePrefixTests.cases.count)
    func readsTheDeadlockWhateverThePrefix(_ index: Int) throws {
        let c = Self.cases[index]
        var parser = ServerLogDeadlockParser(format: .stderr, linePrefix: c.prefix)
        let reports = parser.feed(Self.excerpt(c.rendered)) + parser.flush()
        try #require(reports.count == 1, "prefix '\(c.prefix)'")
        let r = reports[0]
        #expect(r.participants.map(\.pid) == [4242, 4343])
        #expect(r.participants[1].query == "UPDATE dl SET v = 2 WHERE id = 1")
        #expect(r.database == c.database)
        #expect(r.user == c.user)
        #expect(r.databaseOID == 16384)
        if c.prefix.contains("%p") { #expect(r.victimPid == 4242) }
        #expect((r.detectedAt != nil) == c.timed, "timestamp of '\(c.prefix)'")
    }

    @Test func aBackgroundProcessLineStopsAtPercentQ() throws {
        let p = LogLinePrefix("%m [%p] %q%u@%d ")
        let line = try #require(p.parse("2026-12-01 10:00:00.000 UTC [99] LOG:  checkpoint starting: time"))
        #expect(line.pid == 99 && line.database == nil && line.severity == "LOG")
        #expect(p.parse("\tProcess 1: select") == nil)
        #expect(p.parse("garbage") == nil)
    }

    @Test func millisecondsAndEpochTimestamps() throws {
        let m = try #require(LogLinePrefix("%m ").parse("2026-11-23 03:28:21.564 UTC LOG:  x").flatMap(\.timestamp))
        #expect(abs(m.timeIntervalSince1970 - 1_795_404_501.564) < 0.001)
        let n = try #require(LogLinePrefix("%n ").parse("1795404501.564 LOG:  x").flatMap(\.timestamp))
        #expect(abs(n.timeIntervalSince1970 - 1_795_404_501.564) < 0.001)
    }

    @Test func databaseOIDFromTheDetail() {
        #expect(DeadlockParticipant.databaseOID(inDetail: "Process 1 waits for AccessExclusiveLock on relation 16390 of database 16384; blocked by process 2.") == 16384)
        #expect(DeadlockParticipant.databaseOID(inDetail: "Process 1 waits for ExclusiveLock on advisory lock [16384,0,42,1]; blocked by process 2.") == 16384)
        #expect(DeadlockParticipant.databaseOID(inDetail: "Process 1 waits for ShareLock on transaction 750; blocked by process 2.") == nil)
    }

    @Test func formatByFileName() {
        #expect(ServerLogFormat(inferredFromPath: "/var/lib/postgresql/15/main/log/postgresql-2026-12-01.csv") == .csvlog)
        #expect(ServerLogFormat(inferredFromPath: "log/postgresql.json") == .jsonlog)
        #expect(ServerLogFormat(inferredFromPath: "/var/log/postgresql/postgresql-15-main.log") == .stderr)
    }
}
