import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import LockvaultCore

@Suite struct EpisodeTimelineDrawingTests {
    typealias F = StoryFixture

    static func draw(_ s: EpisodeStory) -> String { EpisodeTimelineDrawing(zone: F.utc).svg(s) }

    /// The picture parses as XML (an SVG a browser shows, not a blank page).
    static func parses(_ svg: String) -> Bool {
        let parser = XMLParser(data: Data(svg.utf8))
        return parser.parse()
    }

    @Test func everySessionIsNamedInItsLaneRootFirst() throws {
        let svg = Self.draw(F.pileUp)
        #expect(Self.parses(svg), "\(svg)")
        let labels = ["pid 4711 · demo-analytics", "pid 4712 · demo-deploy", "pid 4713 · demo-shop-1", "pid 4714 · demo-shop-2"]
        let positions = try labels.map { label in try #require(svg.range(of: ">\(label)</text>"), "no lane label \(label)").lowerBound }
        #expect(positions == positions.sorted(), "root on top, then the waiters in tree order")
        #expect(svg.contains("waits for pid 4711 (hard)") && svg.contains("queued behind pid 4712 (soft)"))
    }

    @Test func waitsAreColouredByKindAndTheEndIsMarked() {
        let svg = Self.draw(F.pileUp)
        let bars = svg.split(separator: "\n").filter { $0.hasPrefix("<rect") && $0.contains("rx=\"3\"") }
        #expect(bars.filter { $0.contains(EpisodeTimelineDrawing.hard) }.count == 1, "one hard wait (M behind H)")
        #expect(bars.filter { $0.contains(EpisodeTimelineDrawing.soft) }.count == 2, "two soft waits (R1, R2 behind M)")
        #expect(bars.filter { $0.contains(EpisodeTimelineDrawing.hold) }.count == 1, "the root's hold")
        #expect(svg.contains(">ended: root finished · 03:12:11</text>"))
        #expect(svg.contains("peak: 3 waiting"))
        // Legend and axis.
        #expect(svg.contains("waits for a lock someone holds (hard)") && svg.contains("queued behind another") && svg.contains("seconds from the first wait"))
        #expect(svg.contains(">+2 s</text>") && svg.contains(">0</text>"))
        // The fix, in the picture too.
        #expect(svg.contains("lock_timeout:") && svg.contains("idle_in_transaction_session_timeout:"))
    }

    @Test func theWaitBarsSpanTheirWaits() throws {
        let svg = Self.draw(F.pileUp)
        // The hard bar (M) starts at the episode's start and is the longest; R2's starts 0.5 s later.
        func bar(_ colour: String) -> [(x: Double, w: Double)] {
            svg.split(separator: "\n").filter { $0.hasPrefix("<rect") && $0.contains(colour) && $0.contains("rx=\"3\"") }.map { line in
                func attr(_ n: String) -> Double { Double(line.components(separatedBy: "\(n)=\"")[1].split(separator: "\"")[0])! }
                return (attr("x"), attr("width"))
            }
        }
        let hard = try #require(bar(EpisodeTimelineDrawing.hard).first)
        let soft = bar(EpisodeTimelineDrawing.soft)
        #expect(soft.count == 2 && soft.allSatisfy { $0.x > hard.x && $0.x + $0.w <= hard.x + hard.w + 0.2 }, "\(hard) \(soft)")
        let pxPerSecond = hard.w / 7.2
        #expect(abs((soft[1].x - hard.x) / pxPerSecond - 0.5) < 0.05)
    }

    @Test func gapsDecisionsAndAPreparedRootAreDrawn() {
        let s = F.story(root: .init(pid: 0, gid: "tx-<42>", user: "app"), waiters: [F.waiter(2, behind: 0, app: "a&b")], endedBy: "unobserved",
                        decisions: [.init(at: F.at(4), action: "recommend_only", pid: 0, executed: false)],
                        gaps: [.init(from: F.at(6), to: F.at(8))])
        let svg = Self.draw(s)
        #expect(Self.parses(svg), "\(svg)")
        #expect(svg.contains("prepared &apos;tx-&lt;42&gt;&apos;"), "escaped")
        #expect(svg.contains("pid 2 · a&amp;b"))
        #expect(svg.contains(">not watching</text>") && svg.contains("url(#gap)"))
        #expect(svg.contains("lockvault: recommend_only"))
        #expect(svg.contains("stroke-dasharray=\"6,4\""), "an unobserved end is dashed")
    }

    @Test func hostileNamesStayText() {
        var s = F.pileUp
        s.root.application = "</text><script>alert(1)</script>"
        let svg = Self.draw(s)
        #expect(!svg.contains("<script>") && Self.parses(svg))
    }

    @Test func ticksAreRoundForShortAndLongEpisodes() {
        for (duration, expected) in [(2.0, "+0.5 s"), (7.2, "+2 s"), (400.0, "+1 min"), (3 * 3600.0, "+1 h")] {
            let s = F.story(root: .init(pid: 1, state: "active"), waiters: [F.waiter(2, behind: 1, to: duration)], duration: duration)
            let scale = EpisodeTimelineDrawing.TimeScale(s, x0: 0, x1: 700)
            #expect(scale.ticks.count <= 11 && scale.ticks.count >= 3, "\(duration): \(scale.ticks.map(\.label))")
            #expect(scale.ticks.contains { $0.label == expected }, "\(duration): \(scale.ticks.map(\.label))")
        }
    }
}
