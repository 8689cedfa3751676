public import Foundation

/// `lockvault episode ID --svg FILE`: one episode as a picture a person understands without the
/// text beside it. One lane per session, the root on top and each waiter under whom it waited
/// for (indented, with an arrow to that lane); the root's hold as a slate bar, each wait as a bar
/// coloured by how it waited: red when it waited for a lock someone held (hard), amber when it
/// was only queued behind someone else's request (soft). The end is a line with how it ended;
/// the peak, gaps in observation and the resolver's decisions are marked; every lane names its
/// pid and application; a time axis, a legend, and the fix to make close it.
///
/// Pure: a string of SVG 1.1, no scripts, no external references; all text from the server is
/// XML-escaped. Sized for a README (1100 px wide, as tall as the lanes need).
public struct EpisodeTimelineDrawing: Sendable {
    public var zone: TimeZone
    public var width: Double = 1100

    public init(zone: TimeZone) {
        self.zone = zone
    }

    static let hard = "#dc2626", soft = "#f59e0b", hold = "#475569", ink = "#111827", muted = "#6b7280", grid = "#e5e7eb"
    static let decision = "#7c3aed", font = "DejaVu Sans, Verdana, Arial, sans-serif"
    let margin = 24.0, labelWidth = 300.0, laneHeight = 46.0, barHeight = 18.0

    public func svg(_ story: EpisodeStory) -> String {
        let (head, headerHeight) = header(story)
        let lanes = Lanes(story)
        let scale = TimeScale(story, x0: margin + labelWidth + 14, x1: width - margin - 12)
        let laneTop = headerHeight + 30
        var body = head + chart(story, lanes: lanes, scale: scale, top: laneTop, headerHeight: headerHeight)

        var y = laneTop + Double(lanes.rows.count) * laneHeight + 10
        body += axis(scale, story: story, y: y)
        y += 52
        let (legendLines, legendHeight) = legend(story, lanes: lanes, y: y)
        body += legendLines
        y += legendHeight + 20
        let (caption, captionHeight) = self.caption(story, y: y)
        body += caption
        let height = (y + captionHeight + margin).rounded()

        let title = "Blocking episode \(story.id): \(EpisodeStoryRenderer.who(pid: story.root.pid, application: story.root.application, gid: story.root.gid)) held up \(story.waiters.count) sessions"
        let fades = [("hard", Self.hard), ("soft", Self.soft)].map { id, colour in
            "<linearGradient id=\"fade-\(id)\"><stop offset=\"0\" stop-color=\"\(colour)\"/><stop offset=\"1\" stop-color=\"\(colour)\" stop-opacity=\"0.15\"/></linearGradient>"
        }.joined()
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" role="img" aria-label="\(Self.escape(title))" font-family="\(Self.font)">
            <title>\(Self.escape(title))</title>
            <defs>\(fades)<pattern id="gap" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="8" stroke="#6b7280" stroke-width="1.5"/></pattern></defs>
            <rect width="100%" height="100%" fill="#ffffff"/>
            \(body.joined(separator: "\n"))
            </svg>

            """
    }

    /// The lanes and everything on them, bottom layer first: bands and labels, the time grid, the
    /// peak, the arrows from each wait to the lane it waited for (under the bars, so they never
    /// cross their words), the bars, the gaps in observation (over the bars: nothing is known
    /// there), the resolver's decisions, the end.
    func chart(_ story: EpisodeStory, lanes: Lanes, scale: TimeScale, top: Double, headerHeight: Double) -> [String] {
        var body: [String] = []
        let bottom = top + Double(lanes.rows.count) * laneHeight
        func barTop(_ lane: Int) -> Double { top + Double(lane) * laneHeight + 14 }
        for (i, row) in lanes.rows.enumerated() {
            let y = top + Double(i) * laneHeight
            if i % 2 == 0 { body.append(rect(margin, y, width - 2 * margin, laneHeight, fill: "#f8fafc")) }
            body += label(row, y: y)
        }
        for tick in scale.ticks {
            body.append(line(tick.x, top - 4, tick.x, bottom, stroke: Self.grid, width: 1))
        }
        if let peak = story.peakAt {
            let x = scale.x(peak)
            body.append(line(x, top - 14, x, bottom, stroke: Self.muted, width: 1.2, dash: "2,3"))
            body.append(text(x, top - 18, "peak: \(story.peakWaiting) waiting", size: 11, fill: Self.muted, anchor: scale.anchor(x)))
        }
        for (i, row) in lanes.rows.enumerated() {
            guard let w = row.waiter, let target = lanes.index(of: row.blocker) else { continue }
            let x = scale.x(w.firstWaitAt), to = barTop(target) + barHeight
            let colour = row.kind == .soft ? Self.soft : Self.hard
            body.append(line(x, barTop(i), x, to + 5, stroke: colour, width: 1.5))
            body.append("<path d=\"M \(f(x - 4)) \(f(to + 6)) L \(f(x)) \(f(to)) L \(f(x + 4)) \(f(to + 6)) Z\" fill=\"\(colour)\"/>")
        }
        for (i, row) in lanes.rows.enumerated() {
            body += bar(row, story: story, scale: scale, y: barTop(i))
        }
        for gap in story.gaps {
            let x0 = scale.x(gap.from), w = max(2, scale.x(gap.to) - x0)
            body.append(rect(x0, top, w, bottom - top, fill: "#ffffff", opacity: 0.6))
            body.append(rect(x0, top, w, bottom - top, fill: "url(#gap)", stroke: Self.muted, dash: "3,3"))
            body.append(text(x0 + w / 2, bottom + 14, "not watching", size: 10, fill: Self.muted, anchor: "middle"))
        }
        for d in story.decisions {
            guard let lane = lanes.index(of: d.pid) else { continue }
            let x = scale.x(d.at), y = barTop(lane) + barHeight / 2
            body.append("<path d=\"M \(f(x)) \(f(y - 8)) L \(f(x + 8)) \(f(y)) L \(f(x)) \(f(y + 8)) L \(f(x - 8)) \(f(y)) Z\" fill=\"\(Self.decision)\" stroke=\"#fff\" stroke-width=\"1.5\"/>")
            body.append(text(x, y - 11, "lockvault: \(d.action)", size: 11, fill: Self.decision, anchor: scale.anchor(x), weight: "bold"))
        }
        let endX = scale.x(story.lastMoment)
        let endLabel = story.endedBy.map { EpisodeStoryRenderer.endingWords($0) } ?? "still open (last seen)"
        body.append(line(endX, headerHeight + 2, endX, bottom + 4, stroke: Self.ink, width: 2, dash: story.ending == .unobserved || story.isOpen ? "6,4" : nil))
        body.append(text(endX, headerHeight - 2, endLabel + " · " + TimeText.clock(story.lastMoment, zone: zone), size: 12, fill: Self.ink,
                         anchor: scale.anchor(endX), weight: "bold"))
        return body
    }

    // MARK: parts

    /// Title, what it cost (wrapped to at most two lines), on what; and how tall that is.
    func header(_ s: EpisodeStory) -> ([String], Double) {
        let root = EpisodeStoryRenderer.who(pid: s.root.pid, application: s.root.application, gid: s.root.gid)
        let n = s.waiters.count
        let title = "Blocking episode \(s.id)" + (s.clusterName.map { " · cluster \($0)" } ?? "") + " · " + TimeText.format(s.startedAt, zone: zone)
        let summary = "\(root) held up \(n) session\(n == 1 ? "" : "s") for \(TimeText.seconds(s.durationSeconds)): \(String(format: "%.1f", s.waitSecondsTotal)) session-seconds lost, "
            + "longest wait \(TimeText.seconds(s.longestWaitSeconds)), \(s.peakWaiting) waiting at most, severity \(s.maxSeverity)"
        let on = "on " + (s.lockTargets.isEmpty ? "(no target recorded)" : s.lockTargets.joined(separator: ", "))
            + (s.root.query.map { " · root's query: " + $0 } ?? "")
        var out = [text(margin, 32, fit(title, width - 2 * margin, size: 18, bold: true), size: 18, fill: Self.ink, weight: "bold")]
        var y = 56.0
        for line in Self.wrap(summary, width: width - 2 * margin, size: 13).prefix(2) {
            out.append(text(margin, y, line, size: 13, fill: Self.ink))
            y += 18
        }
        out.append(text(margin, y + 2, fit(on, width - 2 * margin, size: 12), size: 12, fill: Self.muted))
        return (out, y + 28)
    }

    func label(_ row: Lanes.Row, y: Double) -> [String] {
        let indent = Double(row.depth) * 14
        let x = margin + 8 + indent
        let room = labelWidth - 8 - indent
        var first = "pid \(row.pid)"
        if let gid = row.gid { first = "prepared '\(gid)'" }
        if let app = row.application, !app.isEmpty { first += " · " + app }
        var lines = [String]()
        if row.depth > 0 { lines.append(text(x - 12, y + 21, "↳", size: 13, fill: Self.muted)) }
        lines.append(text(x, y + 21, fit(first, room, size: 13, bold: true), size: 13, fill: Self.ink, weight: "bold"))
        lines.append(text(x, y + 37, fit(row.detail, room, size: 11), size: 11, fill: Self.muted))
        return lines
    }

    func bar(_ row: Lanes.Row, story: EpisodeStory, scale: TimeScale, y: Double) -> [String] {
        var out: [String] = []
        if let w = row.waiter {
            let x0 = scale.x(w.firstWaitAt), x1 = max(scale.x(story.waitEnd(w)), x0 + 2)
            // A wait whose end is not known fades out where the story stops.
            let fill = row.kind == .soft ? Self.soft : Self.hard
            out.append(rect(x0, y, x1 - x0, barHeight, fill: w.lastWaitAt == nil ? "url(#fade-\(row.kind))" : fill, radius: 3))
            let words = (w.waitedSeconds == nil ? (story.isOpen ? "still waiting" : "end unknown") : story.waited(w)) + (w.mode.map { " for \($0)" } ?? "")
            out.append(barText([w.query.map { words + " · " + $0 }, words].compactMap { $0 }, x0: x0, x1: x1, y: y, limit: scale.x1))
        } else {
            // The root holds from before the first wait (its transaction's start, when within view) to the end.
            let since = story.root.xactStart.map { max($0, scale.start) } ?? scale.start
            let x0 = scale.x(since)
            let holdsOn = story.ending == .waitersGaveUp
            let x1 = holdsOn ? scale.x1 : max(scale.x(story.lastMoment), x0 + 2)
            out.append(rect(x0, y, x1 - x0, barHeight, fill: Self.hold, radius: 3))
            let earlier = story.root.xactStart.map { $0 < scale.start } ?? false
            if let x = story.root.xactStart, earlier {
                out.append(text(x0 + 4, y + 13, "◀ since \(TimeText.clock(x, zone: zone))", size: 11, fill: "#ffffff"))
            }
            let what = (story.root.gid != nil ? "prepared, holding its locks" : "holds the lock" + (story.root.state.map { " · \($0)" } ?? ""))
                + (holdsOn ? " · still holding ▶" : "")
            out.append(barText([story.root.query.map { what + " · " + $0 }, what].compactMap { $0 }, x0: x0 + (earlier ? 110 : 0), x1: x1, y: y,
                               limit: scale.x1, inside: true))
        }
        return out
    }

    /// A bar's words, the longest of `choices` that fits: inside it (white) when asked, else after
    /// it, else inside it, else before it.
    func barText(_ choices: [String], x0: Double, x1: Double, y: Double, limit: Double, inside: Bool = false) -> String {
        let room = limit + 10
        for words in choices.map({ BlockingForestRenderer.clean($0, 120) }) {
            let w = Self.textWidth(words, size: 11)
            if inside && x1 - x0 >= w + 10 { return text(x0 + 6, y + 13, words, size: 11, fill: "#ffffff") }
            if !inside && x1 + 6 + w <= room { return text(x1 + 6, y + 13, words, size: 11, fill: Self.ink) }
            if x1 - x0 >= w + 10 { return text(x0 + 6, y + 13, words, size: 11, fill: "#ffffff") }
            if x1 + 6 + w <= room { return text(x1 + 6, y + 13, words, size: 11, fill: Self.ink) }
        }
        let words = choices.last ?? ""
        return text(x0 - 6, y + 13, words, size: 11, fill: Self.ink, anchor: "end")
    }

    func axis(_ scale: TimeScale, story: EpisodeStory, y: Double) -> [String] {
        var out = [line(scale.x0, y, scale.x1, y, stroke: Self.muted, width: 1)]
        for tick in scale.ticks {
            out.append(line(tick.x, y, tick.x, y + 5, stroke: Self.muted, width: 1))
            out.append(text(tick.x, y + 18, tick.label, size: 11, fill: Self.muted, anchor: "middle"))
        }
        let note = "seconds from the first wait, t = 0 at \(TimeText.format(story.startedAt, zone: zone))"
        out.append(text(scale.x0, y + 36, note, size: 11, fill: Self.muted))
        return out
    }

    /// What the picture's marks mean: only those it shows.
    func legend(_ s: EpisodeStory, lanes: Lanes, y: Double) -> ([String], Double) {
        let kinds = Set(lanes.rows.dropFirst().map(\.kind))
        var items: [(String, String)] = [("swatch:" + Self.hold, s.root.gid == nil ? "root: holds what the others wait for" : "root: a prepared transaction's locks")]
        if kinds.contains(.hard) { items.append(("swatch:" + Self.hard, "waits for a lock someone holds (hard)")) }
        if kinds.contains(.soft) { items.append(("swatch:" + Self.soft, "queued behind another's request (soft)")) }
        if !s.gaps.isEmpty { items.append(("gap", "lockvault not watching")) }
        if !s.decisions.isEmpty { items.append(("diamond", "lockvault's resolver decided")) }
        items.append(("end", s.isOpen ? "last seen (still open)" : "end of the episode"))
        var out: [String] = [], x = margin, row = 0.0
        for (kind, words) in items {
            let w = 22 + Self.textWidth(words, size: 11) + 22
            if x + w > width - margin { x = margin; row += 20 }
            let cy = y + row
            switch kind {
            case "gap": out.append(rect(x, cy - 10, 16, 12, fill: "url(#gap)", stroke: Self.muted))
            case "diamond": out.append("<path d=\"M \(f(x + 8)) \(f(cy - 11)) L \(f(x + 14)) \(f(cy - 4)) L \(f(x + 8)) \(f(cy + 3)) L \(f(x + 2)) \(f(cy - 4)) Z\" fill=\"\(Self.decision)\"/>")
            case "end": out.append(line(x + 8, cy - 12, x + 8, cy + 4, stroke: Self.ink, width: 2))
            default: out.append(rect(x, cy - 10, 16, 12, fill: String(kind.dropFirst(7)), radius: 2))
            }
            out.append(text(x + 22, cy, words, size: 11, fill: Self.ink))
            x += w
        }
        return (out, row + 8)
    }

    func caption(_ s: EpisodeStory, y: Double) -> ([String], Double) {
        var out: [String] = [], dy = 0.0
        let room = width - 2 * margin
        func paragraph(_ words: String, size: Double, fill: String, weight: String? = nil) {
            for line in Self.wrap(words, width: room, size: size) {
                out.append(text(margin, y + dy, line, size: size, fill: fill, weight: weight))
                dy += size + 5
            }
        }
        paragraph("How it ended: " + EpisodeStoryRenderer.ending(s), size: 12, fill: Self.ink)
        dy += 4
        paragraph("What to change:", size: 12, fill: Self.ink, weight: "bold")
        for advice in EpisodeAdvice.advise(s).prefix(3) {
            paragraph("• " + (advice.setting.map { "\($0): " } ?? "") + advice.fix, size: 12, fill: Self.ink)
        }
        return (out, dy)
    }

    // MARK: drawing primitives

    func text(_ x: Double, _ y: Double, _ words: String, size: Double, fill: String, anchor: String? = nil, weight: String? = nil) -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(f(size))\" fill=\"\(fill)\"" + (anchor.map { " text-anchor=\"\($0)\"" } ?? "")
            + (weight.map { " font-weight=\"\($0)\"" } ?? "") + ">\(Self.escape(words))</text>"
    }

    func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String? = nil, dash: String? = nil, radius: Double = 0,
              opacity: Double? = nil) -> String {
        "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(max(0, w)))\" height=\"\(f(h))\"" + (radius > 0 ? " rx=\"\(f(radius))\"" : "")
            + " fill=\"\(fill)\"" + (opacity.map { " fill-opacity=\"\(f($0))\"" } ?? "") + (stroke.map { " stroke=\"\($0)\"" } ?? "") + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") + "/>"
    }

    func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, stroke: String, width: Double, dash: String? = nil) -> String {
        "<line x1=\"\(f(x0))\" y1=\"\(f(y0))\" x2=\"\(f(x1))\" y2=\"\(f(y1))\" stroke=\"\(stroke)\" stroke-width=\"\(f(width))\""
            + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") + "/>"
    }

    func f(_ v: Double) -> String {
        let r = (v * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(format: "%.1f", r)
    }

    func fit(_ words: String, _ room: Double, size: Double, bold: Bool = false) -> String {
        let clean = BlockingForestRenderer.clean(words, 400)
        let chars = max(4, Int(room / (size * (bold ? Self.boldCharWidth : Self.charWidth))))
        return BlockingForestRenderer.clean(clean, chars)
    }

    /// Average advance of DejaVu Sans in ems (mixed text, measured in Chromium): text is measured
    /// by it, not laid out; a little generous, so that a line fits rather than spills.
    static let charWidth = 0.56, boldCharWidth = 0.63

    static func textWidth(_ words: String, size: Double, bold: Bool = false) -> Double {
        Double(words.count) * size * (bold ? boldCharWidth : charWidth)
    }

    static func wrap(_ words: String, width: Double, size: Double) -> [String] {
        let chars = max(10, Int(width / (size * charWidth)))
        var lines: [String] = [], current = ""
        for word in BlockingForestRenderer.clean(words, 2000).split(separator: " ") {
            if current.isEmpty {
                current = String(word)
            } else if current.count + 1 + word.count <= chars {
                current += " " + word
            } else {
                lines.append(current)
                current = String(word)
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines.map { BlockingForestRenderer.clean($0, chars) }
    }

    /// Text for SVG: XML-escaped, control characters shown as escapes, one line.
    static func escape(_ words: String) -> String {
        var out = ""
        for ch in BlockingForestRenderer.clean(words, 4000) {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(ch)
            }
        }
        return out
    }
}
