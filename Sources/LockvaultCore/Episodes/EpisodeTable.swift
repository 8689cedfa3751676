public import Foundation

/// One row of `lock_monitoring.blocking_episodes_dashboard`, as `lockvault episodes` lists it.
public struct EpisodeListRow: Sendable, Equatable {
    public var episodeID: String
    public var clusterName: String?
    public var startedAt: Date
    public var endedAt: Date?
    public var durationSeconds: Double
    public var rootPid: Int32?
    public var rootUserName: String?
    public var rootApplicationName: String?
    public var rootState: String?
    public var rootQuery: String?
    public var waitingSessions: Int
    public var peakWaiting: Int
    public var waitSecondsTotal: Double
    public var longestWaitSeconds: Double
    public var maxSeverity: String
    public var lockTargets: [String]
    public var endedBy: String?

    public init(episodeID: String, clusterName: String? = nil, startedAt: Date, endedAt: Date? = nil, durationSeconds: Double, rootPid: Int32? = nil,
                rootUserName: String? = nil, rootApplicationName: String? = nil, rootState: String? = nil, rootQuery: String? = nil,
                waitingSessions: Int, peakWaiting: Int, waitSecondsTotal: Double, longestWaitSeconds: Double, maxSeverity: String,
                lockTargets: [String] = [], endedBy: String? = nil) {
        self.episodeID = episodeID
        self.clusterName = clusterName
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.durationSeconds = durationSeconds
        self.rootPid = rootPid
        self.rootUserName = rootUserName
        self.rootApplicationName = rootApplicationName
        self.rootState = rootState
        self.rootQuery = rootQuery
        self.waitingSessions = waitingSessions
        self.peakWaiting = peakWaiting
        self.waitSecondsTotal = waitSecondsTotal
        self.longestWaitSeconds = longestWaitSeconds
        self.maxSeverity = maxSeverity
        self.lockTargets = lockTargets
        self.endedBy = endedBy
    }
}

/// `lockvault episodes`: the episodes as a table, in the order given (newest first), one line
/// each, columns padded to their widest cell; the cluster column only when there are several.
public struct EpisodeTable: Sendable {
    public var zone: TimeZone

    public init(zone: TimeZone) {
        self.zone = zone
    }

    public func render(_ rows: [EpisodeListRow]) -> String {
        guard !rows.isEmpty else { return "no blocking episodes in that time\n" }
        let clusters = Set(rows.map { $0.clusterName ?? "" }).count > 1
        var table: [[String]] = [
            ["started", "duration", "root", "waiters", "peak", "wait-s", "longest", "severity", "ended by", "on", "episode"]
                + (clusters ? ["cluster"] : []),
        ]
        for r in rows {
            let root = (r.rootPid.map { "pid \($0)" } ?? "prepared")
                + (r.rootApplicationName.flatMap { $0.isEmpty ? nil : " " + clean($0, 24) } ?? "")
                + (r.rootState.map { " (\(clean($0, 24)))" } ?? "")
            table.append([
                TimeText.format(r.startedAt, zone: zone), TimeText.seconds(r.durationSeconds), root, String(r.waitingSessions), String(r.peakWaiting),
                String(format: "%.1f", r.waitSecondsTotal), TimeText.seconds(r.longestWaitSeconds), clean(r.maxSeverity, 10),
                r.endedBy.map { clean($0, 20) } ?? "(open)", r.lockTargets.first.map { clean($0, 36) + (r.lockTargets.count > 1 ? " +\(r.lockTargets.count - 1)" : "") } ?? "",
                clean(r.episodeID, 32),
            ] + (clusters ? [clean(r.clusterName ?? "", 24)] : []))
        }
        let widths = (0..<table[0].count).map { c in table.map { $0[c].count }.max() ?? 0 }
        let numeric: Set<Int> = [1, 3, 4, 5, 6]
        return table.map { row in
            row.enumerated().map { c, cell in
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                return numeric.contains(c) ? pad + cell : (c == row.count - 1 ? cell : cell + pad)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    func clean(_ text: String, _ width: Int) -> String { BlockingForestRenderer.clean(text, width) }
}
