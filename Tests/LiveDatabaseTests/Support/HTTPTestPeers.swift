import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A webhook receiver on 127.0.0.1 for tests: records every POST body and answers as told —
/// 200, a given status, or never (holds the connection open until stopped).
final class WebhookReceiver: Sendable {
    enum Behaviour: Sendable { case ok, status(Int), hang }

    let port: UInt16
    private let fd: Int32
    private let behaviour: Behaviour
    private let received = Mutex<[String]>([])
    private let stopping = Atomic<Bool>(false)
    private let held = Mutex<[Int32]>([])

    init(_ behaviour: Behaviour) throws {
        self.behaviour = behaviour
        let (fd, port) = try Self.listenLoopback()
        self.fd = fd
        self.port = port
        let thread = Thread { [self] in self.serve() }
        thread.start()
    }

    var bodies: [String] { received.withLock { $0 } }
    var url: String { "http://127.0.0.1:\(port)/hook" }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        held.withLock { fds in fds.forEach { close($0) }; fds = [] }
    }

    deinit { stop() }

    static func listenLoopback() throws -> (Int32, UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw POSIXError(.EADDRINUSE) }
        return (fd, UInt16(bigEndian: addr.sin_port))
    }

    /// A port that was free a moment ago (for configs that need one up front).
    static func freePort() throws -> UInt16 {
        let (fd, port) = try listenLoopback()
        close(fd)
        return port
    }

    private func serve() {
        defer { close(fd) }
        while !stopping.load(ordering: .relaxed) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            let request = HTTPWire.readRequest(client)
            received.withLock { $0.append(request.body) }
            switch behaviour {
            case .ok: HTTPWire.respond(client, status: "200 OK", body: "ok"); close(client)
            case .status(let code): HTTPWire.respond(client, status: "\(code) Failing", body: "no"); close(client)
            case .hang: held.withLock { $0.append(client) }
            }
        }
    }
}

enum HTTPWire {
    static func readRequest(_ fd: Int32) -> (head: String, body: String) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var headEnd: Int?
        var contentLength = 0
        while true {
            if let end = headEnd, data.count >= end + contentLength { break }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            data += chunk[0..<n]
            if headEnd == nil, let r = String(decoding: data, as: UTF8.self).range(of: "\r\n\r\n") {
                let head = String(decoding: data, as: UTF8.self)[..<r.lowerBound]
                headEnd = head.utf8.count + 4
                for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                    contentLength = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
        }
        guard let end = headEnd else { return (String(decoding: data, as: UTF8.self), "") }
        return (String(decoding: data[..<(end - 4)], as: UTF8.self), String(decoding: data[end...], as: UTF8.self))
    }

    static func respond(_ fd: Int32, status: String, body: String) {
        let text = "HTTP/1.1 \(status)\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        _ = text.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    /// GET http://127.0.0.1:port/path → (status code, body).
    static func get(port: UInt16, path: String) throws -> (Int, String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        let connected = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { throw POSIXError(.ECONNREFUSED) }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            data += chunk[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { return (0, text) }
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, String(text[split.upperBound...]))
    }
}

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
