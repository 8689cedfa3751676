public import Foundation

/// `lockvault episode ID`: one episode told for the morning after — what happened, who waited
/// from when to when behind whom, the tree at its worst, how it ended, and what to change.
///
/// Pure text; every value from the server goes through ``BlockingForestRenderer/clean(_:_:)``,
/// so hostile application names or queries cannot break the terminal. Times are shown in `zone`.
public struct EpisodeStoryRenderer: Sendable {
    public var zone: TimeZone
    public var queryWidth: Int

    public init(zone: TimeZone, queryWidth: Int = 80) {
        self.zone = zone
        self.queryWidth = queryWidth
    }

    public func render(_ story: EpisodeStory) -> String {
        var out: [String] = []
        out += header(story)
        out.append("")
        out += rootLines(story)
        out.append("")
        out.append("Timeline (+seconds from the first wait):")
        out += timeline(story).map { "  " + $0 }
        out.append("")
        let peak = story.peakAt.map { " (\(TimeText.clock($0, zone: zone)), \(story.peakWaiting) waiting)" } ?? " (\(story.peakWaiting) waiting)"
        out.append("The tree at its peak\(peak):")
        out += peakTree(story).map { "  " + $0 }
        out.append("")
        out.append("How it ended: " + Self.ending(story))
        out.append("")
        out.append("What to change:")
        for advice in EpisodeAdvice.advise(story) {
            out.append("  • " + (advice.setting.map { "\($0): " } ?? "") + advice.why)
            out.append("    " + advice.fix)
        }
        return out.joined(separator: "\n") + "\n"
    }

    func header(_ s: EpisodeStory) -> [String] {
        let end = s.endedAt.map { TimeText.clock($0, zone: zone) } ?? "still open"
        let ended = s.endedBy.map { Self.endingWords($0) } ?? "still open"
        let n = s.waiters.count
        return [
            "Episode \(clean(s.id, 40))\(s.clusterName.map { " on cluster \(clean($0, 40))" } ?? "") — \(ended)",
            "  \(TimeText.format(s.startedAt, zone: zone)) → \(end), \(TimeText.seconds(s.durationSeconds)); "
                + "\(n) session\(n == 1 ? "" : "s") waited \(String(format: "%.1f", s.waitSecondsTotal)) session-seconds in all, "
                + "longest \(TimeText.seconds(s.longestWaitSeconds)); at most \(s.peakWaiting) at once; chain depth \(s.deepestChain); max severity \(clean(s.maxSeverity, 10))",
            "  on " + (s.lockTargets.isEmpty ? "(no target recorded)" : s.lockTargets.map { clean($0, 60) }.joined(separator: ", ")),
        ]
    }

    func rootLines(_ s: EpisodeStory) -> [String] {
        let r = s.root
        var facts: [String] = []
        if let user = r.user { facts.append("user \(clean(user, 32))") }
        if let client = r.client, !client.isEmpty { facts.append("client \(clean(client, 40))") }
        if let state = r.state { facts.append(clean(state, 40)) }
        if let x = r.xactStart { facts.append("transaction open since \(TimeText.clock(x, zone: zone))") }
        if let b = r.backendStart { facts.append("connected since \(TimeText.format(b, zone: zone))") }
        var lines = ["Root: " + Self.who(pid: r.pid, application: r.application, gid: r.gid) + (facts.isEmpty ? "" : ", " + facts.joined(separator: ", "))]
        if let q = r.query, !q.isEmpty { lines.append("  » " + clean(q, queryWidth)) }
        if let id = r.queryId { lines.append("  query_id \(clean(id, 30))") }
        return lines
    }

    /// Every wait's start and end, the resolver's decisions, gaps, the peak and the end, in order.
    func timeline(_ s: EpisodeStory) -> [String] {
        var events: [(at: Date, order: Int, text: String)] = []
        for w in s.waiters {
            let blockers = w.blockedBy.map { "\($0.pid == 0 ? (s.root.gid.map { "'\(clean($0, 30))'" } ?? "a prepared transaction") : "pid \($0.pid)") (\($0.kind))" }
            let how = w.kind == .soft ? "soft: queued behind" : "hard: behind"
            let what = [w.mode, w.lockTarget.map { "on " + clean($0, 60) }].compactMap { $0 }.joined(separator: " ")
            events.append((w.firstWaitAt, 1, "\(Self.who(pid: w.pid, application: w.application)) starts waiting\(what.isEmpty ? "" : " for " + what)"
                           + (blockers.isEmpty ? "" : " — \(how) \(blockers.joined(separator: ", "))")))
            if let last = w.lastWaitAt {
                events.append((last, 0, "\(Self.who(pid: w.pid, application: w.application)) stops waiting (\(s.waited(w)))"))
            } else if !s.isOpen {
                events.append((s.lastMoment, 0, "\(Self.who(pid: w.pid, application: w.application)): end of its wait unknown (lockvault was not watching)"))
            }
        }
        for d in s.decisions {
            let whom = d.pid == 0 ? s.root.gid.map { "prepared transaction '\(clean($0, 40))'" } ?? "a prepared transaction" : "pid \(d.pid)"
            events.append((d.at, 2, "resolver: \(clean(d.action, 30)) \(whom)\(d.executed ? "" : " (not executed)")\(d.outcome.map { " — \(clean($0, 60))" } ?? "")"))
        }
        for g in s.gaps {
            events.append((g.from, 3, "lockvault stops watching (gap until \(TimeText.clock(g.to, zone: zone)), \(TimeText.seconds(g.to.timeIntervalSince(g.from))))"))
        }
        if let peak = s.peakAt { events.append((peak, 4, "peak: \(s.peakWaiting) waiting at once")) }
        if let end = s.endedAt { events.append((end, 5, "ended: \(s.endedBy.map { clean($0, 30) } ?? "?")")) }
        return events.sorted { ($0.at, $0.order) < ($1.at, $1.order) }.map { e in
            String(format: "%+7.1f s  ", e.at.timeIntervalSince(s.startedAt)) + TimeText.clock(e.at, zone: zone) + "  " + e.text
        }
    }

    /// The waiters at the peak, under the root, each under its first blocker that is in the tree.
    func peakTree(_ s: EpisodeStory) -> [String] {
        let tree = EpisodeTree(s, at: s.peakAt)
        var lines = [Self.who(pid: s.root.pid, application: s.root.application, gid: s.root.gid) + "  root" + (s.root.state.map { "  \(clean($0, 30))" } ?? "")
                     + (s.root.query.map { "  » " + clean($0, queryWidth) } ?? "")]
        func walk(_ pid: Int32, prefix: String) {
            let children = tree.children(of: pid)
            for (i, w) in children.enumerated() {
                let last = i == children.count - 1
                let kind = w.blockedBy.first { $0.pid == pid }?.kind ?? w.kind
                let what = [w.mode, w.lockTarget.map { "on " + clean($0, 50) }].compactMap { $0 }.joined(separator: " ")
                lines.append(prefix + (last ? "└─ " : "├─ ") + Self.who(pid: w.pid, application: w.application)
                             + "  \(kind == .soft ? "queued (soft)" : "waits (hard)")\(what.isEmpty ? "" : " for " + what)  \(s.waited(w))"
                             + (w.query.map { "  » " + clean($0, queryWidth) } ?? ""))
                walk(w.pid, prefix: prefix + (last ? "   " : "│  "))
            }
        }
        walk(tree.rootPid, prefix: "")
        return lines
    }

    /// What an `ended_by` means, in a sentence.
    public static func ending(_ s: EpisodeStory) -> String {
        let root = who(pid: s.root.pid, application: s.root.application, gid: s.root.gid)
        let words: String
        switch s.ending {
        case .rootFinished: words = "\(root)'s transaction ended (commit or rollback) and its session lived on; the waiters went on."
        case .rootDisconnected: words = "\(root)'s session ended (disconnected or terminated, not by lockvault), and its locks with it."
        case .rootCancelled: words = "lockvault's resolver cancelled \(root)'s statement, which released what the waiters needed."
        case .rootTerminated: words = "lockvault's resolver terminated \(root)."
        case .queueCancelled: words = "lockvault's resolver cancelled the queued request, and nobody waited any more."
        case .waitersGaveUp: words = "every waiter stopped waiting (lock_timeout, statement_timeout, a cancel or a disconnect) while \(root) still held its locks."
        case .deadlock: words = "PostgreSQL's deadlock detector cancelled one of the sessions."
        case .unobserved: words = "not seen: lockvault was not watching when it ended; the last moment seen is \(s.endedAt.map { TimeText.seconds($0.timeIntervalSince(s.startedAt)) + " after the start" } ?? "unknown")."
        case nil: words = s.endedBy.map { "\(BlockingForestRenderer.clean($0, 40))." } ?? "it is still open."
        }
        return (s.endedBy.map { BlockingForestRenderer.clean($0, 30) + " — " } ?? "") + words
            + (s.gaps.isEmpty ? "" : " lockvault was not watching for \(TimeText.seconds(s.gaps.reduce(0) { $0 + $1.to.timeIntervalSince($1.from) })) inside it.")
    }

    /// `ended_by` as a short phrase for headings.
    public static func endingWords(_ endedBy: String) -> String {
        switch EpisodeStory.Ending(rawValue: endedBy) {
        case .rootFinished: "ended: root finished"
        case .rootDisconnected: "ended: root disconnected"
        case .rootCancelled: "ended: root cancelled by lockvault"
        case .rootTerminated: "ended: root terminated by lockvault"
        case .queueCancelled: "ended: queued request cancelled by lockvault"
        case .waitersGaveUp: "ended: waiters gave up"
        case .deadlock: "ended: deadlock"
        case .unobserved: "ended: unobserved"
        case nil: "ended: \(BlockingForestRenderer.clean(endedBy, 30))"
        }
    }

    static func who(pid: Int32, application: String?, gid: String? = nil) -> String {
        if let gid { return "prepared transaction '\(BlockingForestRenderer.clean(gid, 40))'" }
        let app = application.flatMap { $0.isEmpty ? nil : BlockingForestRenderer.clean($0, 32) }
        return "pid \(pid)" + (app.map { " (\($0))" } ?? "")
    }

    func clean(_ text: String, _ width: Int) -> String { BlockingForestRenderer.clean(text, width) }
}

/// Who waited behind whom in an episode, for the tree and the picture: each waiter under its
/// first direct blocker that is itself in the episode (else under the root), children in the
/// order they started waiting.
public struct EpisodeTree: Sendable {
    public let rootPid: Int32
    private let childrenOf: [Int32: [EpisodeStory.Waiter]]

    /// `at`: only the waiters waiting at that moment (nil: every waiter of the episode).
    public init(_ story: EpisodeStory, at moment: Date?) {
        rootPid = story.root.gid == nil ? story.root.pid : 0
        let waiters = story.waiters.filter { w in
            guard let moment else { return true }
            return w.firstWaitAt <= moment.addingTimeInterval(0.0005) && story.waitEnd(w) >= moment.addingTimeInterval(-0.0005)
        }
        let present = Set(waiters.map(\.pid))
        var children: [Int32: [EpisodeStory.Waiter]] = [:]
        for w in waiters.sorted(by: { ($0.firstWaitAt, $0.pid) < ($1.firstWaitAt, $1.pid) }) {
            let parent = w.blockedBy.first { $0.pid != w.pid && (present.contains($0.pid) || $0.pid == Int32(0) && story.root.gid != nil || $0.pid == story.root.pid) }?.pid
            children[parent ?? rootPid, default: []].append(w)
        }
        // A waiter reachable only through a cycle among waiters would be lost: hang it under the root.
        var reached: Set<Int32> = []
        var stack = [rootPid]
        while let p = stack.popLast() {
            for c in children[p] ?? [] where reached.insert(c.pid).inserted { stack.append(c.pid) }
        }
        for w in waiters where !reached.contains(w.pid) {
            for key in children.keys { children[key]?.removeAll { $0.pid == w.pid } }
            children[rootPid, default: []].append(w)
        }
        childrenOf = children
    }

    public func children(of pid: Int32) -> [EpisodeStory.Waiter] { childrenOf[pid] ?? [] }

    /// Depth-first from the root: each waiter with its depth (1 = waits directly for the root).
    public var ordered: [(waiter: EpisodeStory.Waiter, depth: Int, blocker: Int32)] {
        var out: [(EpisodeStory.Waiter, Int, Int32)] = []
        var seen: Set<Int32> = [rootPid]
        func walk(_ pid: Int32, depth: Int) {
            for c in children(of: pid) where seen.insert(c.pid).inserted {
                out.append((c, depth, pid))
                walk(c.pid, depth: depth + 1)
            }
        }
        walk(rootPid, depth: 1)
        return out
    }
}
