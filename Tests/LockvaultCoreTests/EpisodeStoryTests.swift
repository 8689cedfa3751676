import Foundation
import Testing
@testable import LockvaultCore

/// Stories as episode_story returns them: the DDL pile-up (H reads in an open transaction, M's
/// ALTER TABLE queues behind it, R1 and R2 queue behind M, H commits).
enum StoryFixture {
    static let utc = TimeZone(secondsFromGMT: 0)!
    static let t0 = TimeText.parseTimestamp("2025-06-01 03:12:04.25Z", zone: utc)!

    static func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    /// As the vault writes it: to_json(timestamptz) text, nulls, jsonb_agg's null for no rows.
    static let pileUpJSON = """
        {"id": "3f2a9c01d4e5b6a7", "cluster": "main", "startedAt": "2025-06-01T03:12:04.25+00:00", "endedAt": "2025-06-01T03:12:11.45+00:00",
         "durationSeconds": 7.2, "endedBy": "root_finished", "gaps": null,
         "root": {"pid": 4711, "backendStart": "2025-06-01T03:00:00+00:00", "gid": null, "user": "demo_app", "application": "demo-analytics",
                  "client": null, "state": "idle in transaction", "xactStart": "2025-06-01T03:12:03.9+00:00", "query": "SELECT count(*) FROM products",
                  "queryId": null},
         "waiters": [
           {"pid": 4712, "backendStart": null, "user": "demo_app", "application": "demo-deploy", "firstWaitAt": "2025-06-01T03:12:04.25+00:00",
            "lastWaitAt": "2025-06-01T03:12:11.45+00:00", "waitedSeconds": 7.2, "blockedBy": [{"pid": 4711, "kind": "hard"}],
            "lockTarget": "relation public.products", "mode": "AccessExclusiveLock", "query": "ALTER TABLE products ADD COLUMN sku text"},
           {"pid": 4713, "backendStart": null, "user": "demo_app", "application": "demo-shop-1", "firstWaitAt": "2025-06-01T03:12:04.65+00:00",
            "lastWaitAt": "2025-06-01T03:12:11.45+00:00", "waitedSeconds": 6.8, "blockedBy": [{"pid": 4712, "kind": "soft"}],
            "lockTarget": "relation public.products", "mode": "AccessShareLock", "query": "SELECT * FROM products"},
           {"pid": 4714, "backendStart": null, "user": "demo_app", "application": "demo-shop-2", "firstWaitAt": "2025-06-01T03:12:04.75+00:00",
            "lastWaitAt": "2025-06-01T03:12:11.45+00:00", "waitedSeconds": 6.7, "blockedBy": [{"pid": 4712, "kind": "soft"}],
            "lockTarget": "relation public.products", "mode": "AccessShareLock", "query": "SELECT * FROM products"}],
         "peakWaiting": 3, "peakAt": "2025-06-01T03:12:04.75+00:00", "waitSecondsTotal": 20.7, "longestWaitSeconds": 7.2,
         "maxSeverity": "HIGH", "deepestChain": 2, "lockTargets": ["relation public.products"], "queuedRequest": true, "decisions": null}
        """

    static var pileUp: EpisodeStory { try! EpisodeStory.decode(Data(pileUpJSON.utf8)) }

    static func story(root: EpisodeStory.Root, waiters: [EpisodeStory.Waiter], endedBy: String? = "root_finished", duration: Double = 10,
                      targets: [String] = ["relation public.orders"], decisions: [EpisodeStory.Decision] = [], gaps: [EpisodeStory.Gap] = []) -> EpisodeStory {
        EpisodeStory(id: "e1", cluster: "main", startedAt: t0, endedAt: endedBy == nil ? nil : at(duration), durationSeconds: duration, endedBy: endedBy,
                     gaps: gaps, root: root, waiters: waiters, peakWaiting: waiters.count, peakAt: at(1), waitSecondsTotal: waiters.reduce(0) { $0 + ($1.waitedSeconds ?? 0) },
                     longestWaitSeconds: waiters.compactMap(\.waitedSeconds).max() ?? 0, maxSeverity: "MEDIUM", lockTargets: targets, decisions: decisions)
    }

    static func waiter(_ pid: Int32, behind blocker: Int32, _ kind: BlockKind = .hard, from: Double = 0, to: Double = 10, app: String = "web") -> EpisodeStory.Waiter {
        EpisodeStory.Waiter(pid: pid, user: "app", application: app, firstWaitAt: at(from), lastWaitAt: at(to), waitedSeconds: to - from,
                            blockedBy: [.init(pid: blocker, kind: kind)], lockTarget: "relation public.orders", mode: "RowExclusiveLock", query: "UPDATE orders SET …")
    }
}

@Suite struct EpisodeStoryTests {
    @Test func decodesTheVaultsJSONWithNullListsAndFractionalOffsets() throws {
        let s = StoryFixture.pileUp
        #expect(s.id == "3f2a9c01d4e5b6a7")
        #expect(s.ending == .rootFinished)
        #expect(s.gaps.isEmpty && s.decisions.isEmpty)
        #expect(s.root.pid == 4711 && s.root.state == "idle in transaction" && s.root.gid == nil)
        #expect(s.waiters.map(\.pid) == [4712, 4713, 4714])
        #expect(s.waiters[1].kind == .soft && s.waiters[0].kind == .hard)
        #expect(abs(s.endedAt!.timeIntervalSince(s.startedAt) - 7.2) < 0.000_01)
        #expect(s.startedAt == StoryFixture.t0)
    }

    @Test func encodesUnderTheIssuesNamesWithNullsWhileOpen() throws {
        var s = StoryFixture.pileUp
        s.endedAt = nil
        s.endedBy = nil
        let json = try EpisodeStory.json(s)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["endedAt"] is NSNull, "\(json)")
        #expect(object["endedBy"] is NSNull)
        for key in ["id", "startedAt", "durationSeconds", "root", "waiters", "peakWaiting", "waitSecondsTotal", "longestWaitSeconds", "maxSeverity", "lockTargets"] {
            #expect(object[key] != nil, "missing \(key): \(json)")
        }
        let root = try #require(object["root"] as? [String: Any])
        for key in ["pid", "backendStart", "user", "application", "state", "query"] { #expect(root[key] != nil, "root.\(key)") }
        let waiter = try #require((object["waiters"] as? [[String: Any]])?.first)
        #expect(waiter["pid"] as? Int == 4712 && waiter["application"] as? String == "demo-deploy" && waiter["waitedSeconds"] as? Double == 7.2)
        #expect(object["startedAt"] as? String == "2025-06-01T03:12:04.250000Z")
        // And back: the same story.
        #expect(try EpisodeStory.decode(Data(json.utf8)) == s)
    }

    @Test func theTextTellsTimelinePeakTreeEndingAndFix() {
        let text = EpisodeStoryRenderer(zone: StoryFixture.utc).render(StoryFixture.pileUp)
        #expect(text.contains("Episode 3f2a9c01d4e5b6a7 on cluster main — ended: root finished"), "\(text)")
        #expect(text.contains("Root: pid 4711 (demo-analytics), user demo_app, idle in transaction"))
        #expect(text.contains("pid 4713 (demo-shop-1) starts waiting for AccessShareLock on relation public.products — soft: queued behind pid 4712 (soft)"), "\(text)")
        #expect(text.contains("pid 4712 (demo-deploy) starts waiting for AccessExclusiveLock on relation public.products — hard: behind pid 4711 (hard)"))
        #expect(text.contains("pid 4712 (demo-deploy) stops waiting (waited 7.2 s)"))
        // The tree at the peak: M under H, R1 and R2 under M (R2 under M).
        let tree = text.components(separatedBy: "The tree at its peak")[1]
        #expect(tree.contains("└─ pid 4712 (demo-deploy)  waits (hard)"), "\(tree)")
        #expect(tree.contains("   ├─ pid 4713 (demo-shop-1)  queued (soft)"), "\(tree)")
        #expect(tree.contains("   └─ pid 4714 (demo-shop-2)  queued (soft)"), "\(tree)")
        #expect(text.contains("How it ended: root_finished — pid 4711 (demo-analytics)'s transaction ended"))
        #expect(text.contains("lock_timeout: pid 4712 (demo-deploy)"))
        #expect(text.contains("idle_in_transaction_session_timeout"))
        // Timeline in time order.
        let lines = text.split(separator: "\n").filter { $0.contains(" s  03:12:") }
        let offsets = lines.compactMap { Double($0.trimmingCharacters(in: .whitespaces).split(separator: " ")[0]) }
        #expect(offsets == offsets.sorted() && offsets.count >= 7, "\(lines)")
    }

    @Test func hostileTextCannotBreakTheTerminal() {
        var s = StoryFixture.pileUp
        s.root.application = "evil\u{1B}[2J\napp"
        s.waiters[0].query = "SELECT 1;\u{7}\r\nDROP"
        let text = EpisodeStoryRenderer(zone: StoryFixture.utc).render(s)
        #expect(!text.contains("\u{1B}") && !text.contains("\u{7}") && !text.contains("\r"))
        #expect(text.contains("evil\\u{1b}[2J app"))
    }

    @Test func everyEndingIsSaidInWords() {
        for ending in EpisodeStory.Ending.allCases {
            let s = StoryFixture.story(root: .init(pid: 1, application: "job", state: "active"), waiters: [StoryFixture.waiter(2, behind: 1)],
                                       endedBy: ending.rawValue)
            let words = EpisodeStoryRenderer.ending(s)
            #expect(words.hasPrefix(ending.rawValue + " — ") && words.count > 30, "\(ending): \(words)")
            #expect(!EpisodeStoryRenderer.endingWords(ending.rawValue).contains("_"), "\(ending)")
        }
        let open = StoryFixture.story(root: .init(pid: 1), waiters: [StoryFixture.waiter(2, behind: 1)], endedBy: nil)
        #expect(EpisodeStoryRenderer.ending(open) == "it is still open.")
        #expect(EpisodeStoryRenderer(zone: StoryFixture.utc).render(open).contains("still open"))
    }

    @Test func aGapInsideIsNamed() {
        let s = StoryFixture.story(root: .init(pid: 1, state: "active"), waiters: [StoryFixture.waiter(2, behind: 1)],
                                   gaps: [.init(from: StoryFixture.at(3), to: StoryFixture.at(5))])
        let text = EpisodeStoryRenderer(zone: StoryFixture.utc).render(s)
        #expect(text.contains("lockvault stops watching (gap until 03:12:09, 2.0 s)"), "\(text)")
        #expect(text.contains("lockvault was not watching for 2.0 s inside it."))
    }

    /// A waiter that stopped waiting while lockvault was down has no end (episode_story gives null);
    /// an open episode's waiters are known only by when they joined.
    @Test func unknownEndsAreSaidNotGuessed() throws {
        var w = StoryFixture.waiter(3, behind: 1, from: 1, to: 4)
        w.lastWaitAt = nil
        w.waitedSeconds = nil
        let closed = StoryFixture.story(root: .init(pid: 1, state: "active"), waiters: [StoryFixture.waiter(2, behind: 1), w])
        let text = EpisodeStoryRenderer(zone: StoryFixture.utc).render(closed)
        #expect(text.contains("pid 3 (web): end of its wait unknown (lockvault was not watching)"), "\(text)")
        #expect(text.contains("└─ pid 3 (web)  waits (hard) for RowExclusiveLock on relation public.orders  end of its wait unknown"), "\(text)")
        let json = try EpisodeStory.json(closed)
        #expect(json.contains("\"waitedSeconds\" : null") && json.contains("\"lastWaitAt\" : null"), "\(json)")

        let openJSON = """
            {"id": "o1", "cluster": "-", "startedAt": "2025-06-01T03:12:04+00:00", "endedAt": null, "durationSeconds": 3.5, "endedBy": null,
             "gaps": [], "root": {"pid": 1, "backendStart": null, "gid": null, "user": "app", "application": "job", "client": null, "state": "active",
             "xactStart": null, "query": "UPDATE t SET x = 1", "queryId": "-123"},
             "waiters": [{"pid": 2, "backendStart": "2025-06-01T03:00:00+00:00", "user": null, "application": null, "firstWaitAt": "2025-06-01T03:12:04+00:00",
                          "lastWaitAt": null, "waitedSeconds": null, "blockedBy": [], "lockTarget": null, "mode": null, "query": null}],
             "peakWaiting": 1, "peakAt": "2025-06-01T03:12:04+00:00", "waitSecondsTotal": 0.6, "longestWaitSeconds": 0.6, "maxSeverity": "LOW",
             "deepestChain": 1, "lockTargets": ["relation public.t"], "queuedRequest": false, "decisions": []}
            """
        let open = try EpisodeStory.decode(Data(openJSON.utf8))
        #expect(open.isOpen && open.waiters[0].lastWaitAt == nil)
        let openText = EpisodeStoryRenderer(zone: StoryFixture.utc).render(open)
        #expect(openText.contains("still open") && openText.contains("└─ pid 2  waits (hard)  still waiting"), "\(openText)")
        let svg = EpisodeTimelineDrawing(zone: StoryFixture.utc).svg(open)
        #expect(svg.contains("url(#fade-hard)") && svg.contains("still waiting") && svg.contains("still open (last seen)"), "\(svg)")
    }

    @Test func theTreeHangsAWaiterWhoseBlockerIsNotInItUnderTheRoot() {
        // 3 waits for 9, which is in no lane (it never waited long enough to be in the episode).
        let s = StoryFixture.story(root: .init(pid: 1), waiters: [StoryFixture.waiter(2, behind: 1), StoryFixture.waiter(3, behind: 9)])
        let tree = EpisodeTree(s, at: nil)
        #expect(tree.children(of: 1).map(\.pid) == [2, 3])
        #expect(tree.ordered.map(\.depth) == [1, 1])
    }
}
