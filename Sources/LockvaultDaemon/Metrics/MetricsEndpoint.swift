import Foundation
import Hummingbird
import Logging
import NIOCore
public import ServiceLifecycle

/// `host:port` for a listening socket: `127.0.0.1:9187`, `[::1]:9187`, `localhost:9187`; a bare
/// port (`9187`) means loopback (`127.0.0.1`): exposing the endpoint further must be explicit.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    /// Port 0 is accepted (the kernel picks one; tests use it).
    public init?(_ text: String) {
        let host: Substring, port: Substring
        if !text.isEmpty, text.allSatisfy(\.isNumber) {
            host = "127.0.0.1"
            port = Substring(text)
        } else if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 else { return nil }
            host = parts[0]
            port = parts[1]
        }
        guard !host.isEmpty, let p = UInt16(port) else { return nil }
        self.host = String(host)
        self.port = p
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Why the metrics endpoint could not serve. Its description names the address and the
/// system's reason (an address in use, a host that does not resolve), nothing else.
public struct MetricsServerError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, extensible without breaking a `switch` (postgres-nio's PSQLError style).
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        public var description: String { name }
        /// The address could not be bound.
        public static let cannotListen = Code(name: "cannotListen")
    }

    public var code: Code
    public var description: String
}

/// `GET /metrics` (the Prometheus text exposition) and `GET /` on Hummingbird: the
/// Application, run as a service of the daemon's group.
///
/// A port that cannot be bound ends ``run()`` at once with ``MetricsServerError`` (the group
/// stops, `lockvault run` exits 69) rather than failing silently in the background. It is the
/// last service the group shuts down: metrics are served until everything else has stopped.
public struct MetricsEndpoint: Service {
    private let address: ListenAddress
    private let render: @Sendable () -> [UInt8]
    private let onListening: @Sendable (UInt16) -> Void

    /// `onListening`: told the bound port once the server listens (the kernel's pick for port 0).
    public init(address: ListenAddress, render: @escaping @Sendable () -> [UInt8], onListening: @escaping @Sendable (UInt16) -> Void = { _ in }) {
        self.address = address
        self.render = render
        self.onListening = onListening
    }

    public func run() async throws {
        let render = self.render, onListening = self.onListening
        let router = Router()
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: render())))
        }
        router.get("/") { _, _ in "lockvault: metrics at /metrics\n" }
        var logger = Logger(label: "lockvault.metrics")
        logger.logLevel = .warning
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(address.host, port: Int(address.port)), serverName: nil),
            onServerRunning: { channel in onListening(UInt16(channel.localAddress?.port ?? 0)) },
            logger: logger)
        do {
            try await app.run()
        } catch is CancellationError {
            return
        } catch {
            // The system's reason (address in use, permission denied), never the error's own text.
            let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(type(of: error))"
            throw MetricsServerError(code: .cannotListen, description: "metrics.listen \(address): cannot listen (\(reason))")
        }
    }
}
