import Foundation

// Where things go in the picture: the lanes in order, and the time scale with its ticks.
extension EpisodeTimelineDrawing {
    /// The lanes, top to bottom: the root, then the waiters depth-first under whom they waited for.
    struct Lanes {
        struct Row {
            var pid: Int32
            var gid: String?
            var application: String?
            var detail: String
            var depth: Int
            var waiter: EpisodeStory.Waiter?
            var blocker: Int32
            var kind: BlockKind
        }

        var rows: [Row] = []

        init(_ s: EpisodeStory) {
            let r = s.root
            let tree = EpisodeTree(s, at: nil)
            let rootDetail = ["root", r.state, r.user.map { "user \($0)" }].compactMap { $0 }.joined(separator: " · ")
            rows.append(Row(pid: tree.rootPid, gid: r.gid, application: r.application, detail: rootDetail, depth: 0, waiter: nil, blocker: tree.rootPid, kind: .hard))
            for (w, depth, blocker) in tree.ordered {
                let kind = w.blockedBy.first { $0.pid == blocker }?.kind ?? w.kind
                let whom = blocker == 0 ? "the prepared transaction" : "pid \(blocker)"
                let how = kind == .soft ? "queued behind \(whom) (soft)" : "waits for \(whom) (hard)"
                let others = w.blockedBy.filter { $0.pid != blocker }.map { "pid \($0.pid)" }
                // The target only when the episode has several (the heading names a single one).
                let target = s.lockTargets.count > 1 ? w.lockTarget : nil
                let detail = [how + (others.isEmpty ? "" : " + " + others.joined(separator: ", ")), target].compactMap { $0 }.joined(separator: " · ")
                rows.append(Row(pid: w.pid, gid: nil, application: w.application, detail: detail, depth: min(depth, 6), waiter: w, blocker: blocker, kind: kind))
            }
        }

        func index(of pid: Int32) -> Int? { rows.firstIndex { $0.pid == pid } }
    }

    /// Seconds to x: the episode with a margin on both sides, and round ticks.
    struct TimeScale {
        let start: Date
        let end: Date
        let origin: Date
        let x0: Double
        let x1: Double
        var ticks: [(x: Double, label: String)] = []

        init(_ s: EpisodeStory, x0: Double, x1: Double) {
            var first = s.startedAt, last = s.lastMoment
            for w in s.waiters {
                first = min(first, w.firstWaitAt)
                last = max(last, w.lastWaitAt ?? last)
            }
            for d in s.decisions { last = max(last, d.at) }
            let span = max(last.timeIntervalSince(first), 1)
            let pad = max(span * 0.06, 0.3)
            origin = s.startedAt
            start = first.addingTimeInterval(-pad)
            end = last.addingTimeInterval(pad)
            self.x0 = x0
            self.x1 = x1
            let total = end.timeIntervalSince(start)
            let step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 28_800, 86_400]
                .first { total / $0 <= 10 } ?? 86_400
            let from = (start.timeIntervalSince(origin) / step).rounded(.up), to = (end.timeIntervalSince(origin) / step).rounded(.down)
            if from <= to {
                for k in Int(from)...Int(to) {
                    let t = Double(k) * step
                    ticks.append((x(origin.addingTimeInterval(t)), Self.label(t, step: step)))
                }
            }
        }

        func x(_ date: Date) -> Double {
            let total = end.timeIntervalSince(start)
            return x0 + (x1 - x0) * min(1, max(0, date.timeIntervalSince(start) / total))
        }

        /// Labels near the right edge end there; elsewhere they are centred.
        func anchor(_ x: Double) -> String { x > x1 - 120 ? "end" : (x < x0 + 60 ? "start" : "middle") }

        static func label(_ t: Double, step: Double) -> String {
            if t == 0 { return "0" }
            let sign = t > 0 ? "+" : "−"
            let a = abs(t)
            if step < 1 { return sign + String(format: "%.1f s", a) }
            if step < 60 { return sign + String(format: "%.0f s", a) }
            if step < 1800 { return sign + String(format: "%.0f min", a / 60) }
            return sign + String(format: "%g h", a / 3600)
        }
    }
}
