import AsyncHTTPClient
import Foundation
import NIOCore

/// What one attempt to hand an alert to a sink came to.
enum SinkAttempt: Sendable, Equatable {
    case delivered
    /// Worth trying again (timeout, connection refused, HTTP 5xx/408/429, non-zero exit).
    case retryable(String)
    /// Trying again won't help (HTTP 4xx, the program doesn't exist).
    case permanent(String)
}

/// A place alerts go. Implementations must honour `timeout` and never block Swift's
/// cooperative pool.
protocol AlertSink: Sendable {
    var name: String { get }
    func attempt(_ payload: [UInt8], timeout: Duration) async -> SinkAttempt
}

/// Runs a program (argv, no shell) with the alert's JSON on stdin; exit 0 means delivered.
///
/// Spawned through swift-subprocess, which gives the child an empty signal mask and default
/// dispositions (the daemon traps SIGTERM/SIGHUP and ignores SIGPIPE; a mail or pager script must
/// not inherit that). Its stdout and stderr go to the daemon's (so to the journal), and it is
/// killed when it overruns its timeout.
struct CommandSink: AlertSink {
    let name: String
    let argv: [String]

    func attempt(_ payload: [UInt8], timeout: Duration) async -> SinkAttempt {
        await ChildProgram(argv).run(stdin: payload, timeout: timeout).sinkAttempt
    }
}

extension ChildProgram.Outcome {
    /// A program that can't be started won't start on a retry; anything else might.
    var sinkAttempt: SinkAttempt {
        switch self {
        case .exited(0): .delivered
        case .exited(let code): .retryable("exited with status \(code)")
        case .signalled(let signal): .retryable("killed by signal \(signal)")
        case .timedOut(let after): .retryable("timed out after \(after), killed")
        case .cannotStart(let why): .permanent(why)
        }
    }
}

/// POSTs the alert's JSON to a URL; any 2xx means delivered.
///
/// Through async-http-client (swift-nio, TLS by swift-nio-ssl with the system's trust store), not
/// FoundationNetworking: that one links libcurl, which a static release binary cannot carry.
struct WebhookSink: AlertSink {
    let name: String
    let url: URL
    /// Never logged: they may carry tokens.
    let headers: [String: String]
    var client: HTTPClient = .shared

    func attempt(_ payload: [UInt8], timeout: Duration) async -> SinkAttempt {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "lockvault")
        for (k, v) in headers { request.headers.replaceOrAdd(name: k, value: v) }
        request.body = .bytes(ByteBuffer(bytes: payload))
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(nanoseconds))
            // Read (and discard) a bounded body so the connection can be reused.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            switch response.status.code {
            case 200..<300: return .delivered
            case 408, 429, 500...: return .retryable("HTTP \(response.status.code)")
            default: return .permanent("HTTP \(response.status.code)")
            }
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .retryable("timed out after \(timeout)")
        } catch {
            // The error's text names the host and port at most, never the URL's path or query
            // (which may carry a token).
            return .retryable(Self.describe(error))
        }
    }

    /// A failed request as the log and the vault show it: async-http-client's own error by its
    /// case (its description is the case's name), a system call's by errno's reason, anything
    /// else by its type only, since its text could carry the URL and with it a token.
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return error.description }
        if let error = error as? IOError { return "I/O error: \(String(cString: strerror(error.errnoCode)))" }
        return String(describing: type(of: error))
    }
}
