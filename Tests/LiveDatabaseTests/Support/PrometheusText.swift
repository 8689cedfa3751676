/// The Prometheus text exposition format (0.0.4), parsed strictly enough to catch what a
/// scraper would reject: metric and label names, quoting, values, TYPE before samples.
struct PrometheusText {
    struct Sample: Hashable { var name: String; var labels: [String: String]; var value: Double }
    var samples: [Sample] = []
    var types: [String: String] = [:]

    struct Invalid: Error, CustomStringConvertible { var description: String }

    init(_ text: String) throws {
        let name = try Regex(#"^[a-zA-Z_:][a-zA-Z0-9_:]*$"#)
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = String(raw)
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else { throw Invalid(description: "bad TYPE line: \(line)") }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            var rest = Substring(line)
            let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " } ?? rest.endIndex
            let metric = String(rest[..<nameEnd])
            guard metric.wholeMatch(of: name) != nil else { throw Invalid(description: "bad metric name in: \(line)") }
            rest = rest[nameEnd...]
            var labels: [String: String] = [:]
            if rest.first == "{" {
                rest = rest.dropFirst()
                while rest.first != "}" {
                    guard let eq = rest.firstIndex(of: "=") else { throw Invalid(description: "bad labels in: \(line)") }
                    let key = String(rest[..<eq])
                    guard key.wholeMatch(of: name) != nil, rest[rest.index(after: eq)...].first == "\"" else { throw Invalid(description: "bad label in: \(line)") }
                    rest = rest[rest.index(eq, offsetBy: 2)...]
                    var value = ""
                    while let c = rest.first, c != "\"" {
                        if c == "\\" { rest = rest.dropFirst(); value.append(rest.first ?? "\\") } else { value.append(c) }
                        rest = rest.dropFirst()
                    }
                    guard rest.first == "\"" else { throw Invalid(description: "unterminated label value in: \(line)") }
                    rest = rest.dropFirst()
                    labels[key] = value
                    if rest.first == "," { rest = rest.dropFirst() }
                }
                rest = rest.dropFirst()
            }
            let fields = rest.split(separator: " ")
            guard (1...2).contains(fields.count), let value = Double(fields[0]) ?? (fields[0] == "+Inf" ? .infinity : nil) else {
                throw Invalid(description: "bad value in: \(line)")
            }
            let base = ["_bucket", "_sum", "_count"].first { metric.hasSuffix($0) && types[String(metric.dropLast($0.count))] == "histogram" }
                .map { String(metric.dropLast($0.count)) } ?? metric
            guard types[base] != nil else { throw Invalid(description: "sample before its TYPE: \(line)") }
            samples.append(Sample(name: metric, labels: labels, value: value))
        }
    }

    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }
}
