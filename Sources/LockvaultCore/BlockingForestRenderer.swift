import Foundation

/// Renders the blocking forest as the tree a DBA wants first at 3 a.m.:
///
///     pid 4711  CRITICAL blocking 2 for 312 s  idle in transaction  alice/billing  holds AccessExclusiveLock on relation public.orders
///     │         UPDATE orders SET …
///     ├─ pid 4712  waiting 300 s  active  bob/web  wants AccessShareLock  SELECT * FROM orders
///     └─ pid 4713  waiting 12 s …
///
/// Pure text; every value from the server is made single-line and stripped of control
/// characters, so hostile application names or queries cannot break the terminal.
public struct BlockingForestRenderer: Sendable {
    public var queryWidth: Int

    public init(queryWidth: Int = 80) {
        self.queryWidth = queryWidth
    }

    public func render(_ snapshot: LockSnapshot, forest: [BlockingTree], assessments: [BlockerAssessment]) -> String {
        guard !forest.isEmpty else { return "no blocking: nobody waits for a lock held by another session\n" }
        let byParticipant = Dictionary(assessments.map { ($0.participant, $0) }, uniquingKeysWith: { a, _ in a })
        var lines: [String] = []
        for tree in forest {
            render(tree, snapshot: snapshot, assessments: byParticipant, prefix: "", childPrefix: "", into: &lines)
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    private func render(_ node: BlockingTree, snapshot: LockSnapshot, assessments: [Participant: BlockerAssessment],
                        prefix: String, childPrefix: String, into lines: inout [String]) {
        lines.append(prefix + describe(node.participant, snapshot: snapshot, assessment: assessments[node.participant]))
        // A waiter that waits for several blockers is drawn once, under the first; the text tree
        // leaves out the repeats (queues would repeat each waiter for everyone ahead of it).
        let shown = node.waiters.filter { !$0.expandedElsewhere }
        for (i, child) in shown.enumerated() {
            let last = i == shown.count - 1
            render(child, snapshot: snapshot, assessments: assessments,
                   prefix: childPrefix + (last ? "└─ " : "├─ "), childPrefix: childPrefix + (last ? "   " : "│  "), into: &lines)
        }
    }

    func describe(_ participant: Participant, snapshot: LockSnapshot, assessment: BlockerAssessment?) -> String {
        var parts: [String] = []
        switch participant {
        case .session(let pid):
            parts.append("pid \(pid)")
            let backend = snapshot.backend(pid)
            if let assessment {
                parts.append("\(assessment.severity) blocking \(assessment.blockedCount) for \(Int(assessment.blockingDurationSeconds)) s")
            }
            if let wait = snapshot.locks.filter({ $0.pid == pid && !$0.granted }).first {
                let waited = wait.waitStart.map { " \(Int(max(0, snapshot.capturedAt.timeIntervalSince($0)))) s" } ?? ""
                parts.append(wait.isUnread ? "waiting\(waited) for a \(Self.clean(wait.targetDescription, 60))"
                                           : "waiting\(waited) for \(wait.mode) on \(Self.clean(wait.targetDescription, 60))")
            }
            if let held = snapshot.heldLockCounts[pid] { parts.append("holds \(held) locks (the strongest recorded)") }
            if let backend {
                parts.append(backend.state.description)
                parts.append("\(Self.clean(backend.user ?? "?", 32))/\(Self.clean(backend.applicationName.isEmpty ? "-" : backend.applicationName, 32))")
                if let db = backend.database { parts.append("db \(Self.clean(db, 32))") }
            }
            if let assessment { parts.append(contentsOf: Self.howItBlocks(assessment)) }
            if let query = backend?.query, !query.isEmpty { parts.append("» " + Self.clean(query, queryWidth)) }
        case .prepared(let gid):
            parts.append("prepared transaction '\(Self.clean(gid, 64))'")
            if let assessment {
                parts.append("\(assessment.severity) blocking \(assessment.blockedCount) for \(Int(assessment.blockingDurationSeconds)) s")
                parts.append(contentsOf: Self.howItBlocks(assessment))
            }
            parts.append("→ COMMIT PREPARED or ROLLBACK PREPARED")
        }
        return parts.joined(separator: "  ")
    }

    /// "holds <mode> on <target>" only for a lock it really holds; a session that blocks by its
    /// place in a queue is "queued ahead of N for <mode> on <target>".
    static func howItBlocks(_ a: BlockerAssessment) -> [String] {
        var parts: [String] = []
        if let mode = a.heldMode, let target = a.contendedTarget, !a.isQueuedRequest || a.blocksAs.holds {
            parts.append("holds \(mode) on \(clean(target, 60))")
        }
        if a.isQueuedRequest {
            let mode = a.queuedForMode.map { " for \($0)" } ?? ""
            let target = a.blocksAs == .queued ? a.contendedTarget.map { " on \(clean($0, 60))" } ?? "" : ""
            parts.append("queued ahead of \(a.blockedCount)\(mode)\(target)")
        }
        return parts
    }

    /// One line, printable, at most `width` characters.
    public static func clean(_ text: String, _ width: Int) -> String {
        var out = ""
        var lastWasSpace = false
        for scalar in text.unicodeScalars {
            let isSpace = scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r"
            if isSpace {
                if !lastWasSpace { out.unicodeScalars.append(" ") }
                lastWasSpace = true
                continue
            }
            lastWasSpace = false
            if scalar.value < 0x20 || scalar.value == 0x7f || (0x80..<0xa0).contains(scalar.value) {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        out = out.trimmingCharacters(in: .whitespaces)
        return out.count > width ? String(out.prefix(max(0, width - 1))) + "…" : out
    }
}
