import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A closed-loop HTTP/1.1 load generator for integration tests: a few threads, each sending
/// `GET` requests back to back on its own keep-alive connection and counting every outcome, so a
/// test can assert "zero failed requests" while members are added, drained or killed.
///
/// Plain sockets and threads rather than an event loop, so the counting stays honest even when
/// the code under test wedges its own event loops or the cooperative pool.
public final class LoadGenerator: Sendable {
    /// Everything counted so far.
    public struct Counts: Sendable, Hashable {
        /// Requests started, each counted once whatever became of it.
        public var sent = 0
        /// Requests answered with a complete 2xx response.
        public var succeeded = 0
        /// Requests that got no complete response, or a status other than 2xx.
        public var failed = 0
        /// Complete responses by status code, 2xx or not.
        public var statuses: [Int: Int] = [:]
        /// Failures by kind (`connect: Connection refused`, `read: timed out`,
        /// `closed before response`, `status 503`, ...); the values add up to `failed`.
        public var errors: [String: Int] = [:]
        /// Complete responses by their `X-Shoal-Member` header, `-` when it is absent.
        public var members: [String: Int] = [:]
        /// Connections opened: one per thread, plus one each time the server closed one.
        public var connectionsOpened = 0
        /// Requests sent again on a new connection because the reused one was closed before any
        /// byte of the response came back: the keep-alive race that HTTP clients retry
        /// (RFC 9112 §9.3.1). Not failures, but counted so a test can insist there were none.
        public var staleConnectionRetries = 0

        /// Requests started but not finished (zero once ``LoadGenerator/stop()`` has returned).
        public var inFlight: Int { sent - succeeded - failed }
    }

    /// Latency of the successful requests, in milliseconds, from the start of the request
    /// (including a connect) to the last byte of the body.
    public struct Latencies: Sendable, Hashable {
        public var count: Int
        public var mean: Double
        public var p50: Double
        public var p99: Double
        public var max: Double
    }

    private let core: Core

    private init(core: Core) {
        self.core = core
    }

    /// Starts `connections` threads, each with its own keep-alive connection to `host:port`,
    /// sending `GET path` back to back (waiting `pause` between requests).
    ///
    /// A connection the server closes *between* requests (after a complete response, or while
    /// idle) is simply reopened. A failed connect, a reset or EOF during a response, a request
    /// taking longer than `requestTimeout`, or a status other than 2xx is a failed request.
    /// `headers` go on every request (e.g. a lease's secret, to load a worker directly).
    public static func start(host: String, port: Int, path: String, connections: Int,
                             pause: Duration = .zero, requestTimeout: Duration = .seconds(10),
                             headers: [(name: String, value: String)] = []) -> LoadGenerator {
        let target = Target(host: host, port: port, path: path, pause: pause, requestTimeout: requestTimeout,
                            extraHeaders: headers.map { "\($0.name): \($0.value)\r\n" }.joined())
        let generator = LoadGenerator(core: Core(target: target))
        generator.setConnections(connections)
        return generator
    }

    /// A live snapshot; requests in progress are in ``Counts/sent`` but in neither outcome yet.
    public var counts: Counts { core.state.withLock { $0.counts } }

    /// The most recent failure's kind, for test messages.
    public var lastError: String? { core.state.withLock { $0.lastError } }

    /// Summary of the successful requests' latencies; `nil` before the first success.
    public func latencies() -> Latencies? {
        latencies(after: 0).latencies
    }

    /// Summary of the latencies of the requests that succeeded after the first `mark` ones, and
    /// the mark to pass next time: figures per interval (`nil` if none succeeded in it).
    public func latencies(after mark: Int) -> (latencies: Latencies?, mark: Int) {
        let (recent, next) = core.state.withLock { state in
            (Array(state.latencies[min(mark, state.latencies.count)...]), state.latencies.count)
        }
        return (Self.summary(of: recent.sorted()), next)
    }

    private static func summary(of samples: [Double]) -> Latencies? {
        guard let slowest = samples.last else { return nil }
        func percentile(_ p: Double) -> Double {
            samples[min(samples.count - 1, Int((Double(samples.count) * p).rounded(.up)) - 1)]
        }
        return Latencies(count: samples.count, mean: samples.reduce(0, +) / Double(samples.count),
                         p50: percentile(0.50), p99: percentile(0.99), max: slowest)
    }

    /// Grows or shrinks the number of connections; a thread told to go finishes its current
    /// request first. Ignored once stopped.
    public func setConnections(_ connections: Int) {
        let started: [Int] = core.state.withLock { state in
            guard !state.stopping else { return [] }
            if state.active.count > connections {
                for id in state.active.sorted().suffix(state.active.count - connections) { state.active.remove(id) }
                return []
            }
            let ids = (0..<(connections - state.active.count)).map { state.nextWorker + $0 }
            state.nextWorker += ids.count
            state.active.formUnion(ids)
            state.running += ids.count
            return ids
        }
        for id in started {
            let core = self.core
            let thread = Thread { core.run(worker: id) }
            thread.name = "LoadGenerator \(id)"
            thread.start()
        }
    }

    /// Stops sending, waits until every thread has finished its current request, and returns
    /// the final counts (in which `sent == succeeded + failed`).
    @discardableResult
    public func stop() -> Counts {
        core.state.withLock { state in
            state.stopping = true
            state.active.removeAll()
        }
        while core.state.withLock({ $0.running > 0 }) { usleep(1_000) }
        return counts
    }

    /// Waits (blocking) until `succeeded` requests have succeeded; whether they did in time.
    public func waitUntil(succeeded: Int, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while counts.succeeded < succeeded {
            guard ContinuousClock.now < deadline else { return false }
            usleep(5_000)
        }
        return true
    }

    /// The same, without blocking a concurrency thread.
    public func waitUntil(succeeded: Int, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while counts.succeeded < succeeded {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    /// A generator nobody stopped still lets its threads go (without waiting for them).
    deinit {
        core.state.withLock { state in
            state.stopping = true
            state.active.removeAll()
        }
    }
}

// MARK: - Workers

extension LoadGenerator {
    fileprivate struct Target: Sendable {
        var host: String
        var port: Int
        var path: String
        var pause: Duration
        var requestTimeout: Duration
        /// Header lines, each ending in CRLF.
        var extraHeaders = ""

        var request: [UInt8] {
            let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            return Array("GET \(path) HTTP/1.1\r\nHost: \(authority)\r\nUser-Agent: shoal-load-generator\r\nAccept: */*\r\n\(extraHeaders)\r\n".utf8)
        }
    }

    fileprivate struct State: Sendable {
        var counts = Counts()
        var latencies: [Double] = []
        var lastError: String?
        var stopping = false
        /// Workers that should keep sending.
        var active: Set<Int> = []
        var nextWorker = 0
        /// Worker threads not yet finished.
        var running = 0
    }

    /// What the threads share; it doesn't hold the generator, so dropping the generator stops them.
    fileprivate final class Core: Sendable {
        let target: Target
        let state = Mutex(State())

        init(target: Target) {
            self.target = target
        }

        /// One worker's loop: a request at a time on one connection, reopened as needed.
        func run(worker id: Int) {
            let request = target.request
            var connection: HTTPConnection?
            while begin(worker: id) {
                let started = ContinuousClock.now
                let outcome = exchange(request, on: &connection, deadline: started + target.requestTimeout)
                finish(outcome, latency: ContinuousClock.now - started)
                pause(worker: id)
            }
            connection = nil
            state.withLock { $0.running -= 1 }
        }

        /// Counts a request as sent, unless this worker should stop.
        private func begin(worker id: Int) -> Bool {
            state.withLock { state in
                guard state.active.contains(id) else { return false }
                state.counts.sent += 1
                return true
            }
        }

        private func finish(_ outcome: Result<HTTPResponse, LoadFailure>, latency: Duration) {
            state.withLock { state in
                switch outcome {
                case .success(let response):
                    state.counts.statuses[response.status, default: 0] += 1
                    state.counts.members[response.member ?? "-", default: 0] += 1
                    if (200..<300).contains(response.status) {
                        state.counts.succeeded += 1
                        state.latencies.append(latency.milliseconds)
                    } else {
                        state.counts.failed += 1
                        let error = "status \(response.status)" + (response.relayError.map { " (\($0))" } ?? "")
                        state.counts.errors[error, default: 0] += 1
                        state.lastError = error
                    }
                case .failure(let failure):
                    state.counts.failed += 1
                    state.counts.errors[failure.description, default: 0] += 1
                    state.lastError = failure.description
                }
            }
        }

        /// Sleeps `pause` in short steps, so a stop doesn't wait for it.
        private func pause(worker id: Int) {
            let end = ContinuousClock.now + target.pause
            while ContinuousClock.now < end, state.withLock({ $0.active.contains(id) }) {
                usleep(UInt32(min(10_000, max(1, (end - ContinuousClock.now).microseconds))))
            }
        }

        /// One request on `connection` if it is still open, or on a new one. When a reused
        /// connection turns out closed before any response byte, the request goes once more on
        /// a new connection.
        private func exchange(_ request: [UInt8], on connection: inout HTTPConnection?,
                              deadline: ContinuousClock.Instant) -> Result<HTTPResponse, LoadFailure> {
            if connection?.isIdleAndOpen == false { connection = nil }
            while true {
                let reused = connection != nil
                do throws(LoadFailure) {
                    let open: HTTPConnection
                    if let connection { open = connection } else { open = try opened(deadline: deadline) }
                    connection = open
                    let response = try open.exchange(request, deadline: deadline)
                    if response.closesConnection { connection = nil }
                    return .success(response)
                } catch {
                    let stale = reused && connection?.receivedResponseBytes == false && error.mayBeStaleConnection
                    connection = nil
                    guard stale else { return .failure(error) }
                    state.withLock { $0.counts.staleConnectionRetries += 1 }
                }
            }
        }

        private func opened(deadline: ContinuousClock.Instant) throws(LoadFailure) -> HTTPConnection {
            let connection = try HTTPConnection.open(host: target.host, port: target.port, deadline: deadline)
            state.withLock { $0.counts.connectionsOpened += 1 }
            return connection
        }
    }
}

// MARK: - HTTP/1.1 over a socket

/// Why a request got no complete response.
private enum LoadFailure: Error, CustomStringConvertible {
    case resolve(String)
    case system(String, errno: Int32)
    case timedOut(String)
    case closedBeforeResponse
    case closedMidResponse
    case badResponse(String)

    var description: String {
        switch self {
        case .resolve(let reason): "resolve: \(reason)"
        case .system(let call, let code): "\(call): \(String(cString: strerror(code)))"
        case .timedOut(let phase): "\(phase): timed out"
        case .closedBeforeResponse: "closed before response"
        case .closedMidResponse: "closed mid-response"
        case .badResponse(let reason): "bad response: \(reason)"
        }
    }

    /// Failures that a server closing an idle connection just as the request went out causes.
    var mayBeStaleConnection: Bool {
        switch self {
        case .closedBeforeResponse: true
        case .system(let call, let code): (call == "write" || call == "read") && (code == EPIPE || code == ECONNRESET)
        default: false
        }
    }
}

/// What the generator keeps of a response.
private struct HTTPResponse {
    var status: Int
    var member: String?
    /// A Shoal relay's own error code (`X-Shoal-Error`), for telling its answers from the service's.
    var relayError: String?
    var closesConnection: Bool
}

/// One client connection, used by one thread. Non-blocking underneath, with `poll` enforcing the
/// request's deadline; the socket closes when this is dropped.
private final class HTTPConnection {
    private let fd: Int32
    /// Received bytes not yet parsed, from `unread` on.
    private var buffer: [UInt8] = []
    private var unread = 0
    private var scratch = [UInt8](repeating: 0, count: 64 * 1024)
    /// Whether any byte of the current response has arrived (telling a stale connection from a
    /// broken response).
    private(set) var receivedResponseBytes = false

    private static let maxLine = 64 * 1024
    private static let maxHeaders = 256

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit { close(fd) }

    /// Connects to the first address of `host` that accepts, with `TCP_NODELAY`.
    static func open(host: String, port: Int, deadline: ContinuousClock.Instant) throws(LoadFailure) -> HTTPConnection {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host, String(port), &hints, &list)
        guard code == 0, let first = list else { throw .resolve(String(cString: gai_strerror(code))) }
        defer { freeaddrinfo(first) }
        var failure = LoadFailure.resolve("no address for \(host)")
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let address = entry?.pointee {
            do throws(LoadFailure) {
                return try connect(to: address, deadline: deadline)
            } catch {
                failure = error
            }
            entry = address.ai_next
        }
        throw failure
    }

    private static func connect(to address: addrinfo, deadline: ContinuousClock.Instant) throws(LoadFailure) -> HTTPConnection {
        let flags = Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        let fd = socket(address.ai_family, address.ai_socktype | flags, address.ai_protocol)
        guard fd >= 0 else { throw .system("socket", errno: errno) }
        let connection = HTTPConnection(fd: fd)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if Glibc.connect(fd, address.ai_addr, address.ai_addrlen) != 0 {
            guard errno == EINPROGRESS || errno == EINTR else { throw .system("connect", errno: errno) }
            try connection.wait(for: POLLOUT, until: deadline, phase: "connect")
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { throw .system("connect", errno: error) }
        }
        return connection
    }

    /// Whether the connection can take another request: nothing left over, and the server has
    /// neither closed it nor sent anything unasked.
    var isIdleAndOpen: Bool {
        guard unread == buffer.count else { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, 0) == 0
    }

    /// Sends `request` and reads the whole response, discarding its body.
    func exchange(_ request: [UInt8], deadline: ContinuousClock.Instant) throws(LoadFailure) -> HTTPResponse {
        receivedResponseBytes = false
        try send(request, deadline: deadline)
        while true {
            let head = try readHead(deadline: deadline)
            // Interim responses (100 Continue, 103 Early Hints) precede the real one.
            if (100..<200).contains(head.status) && head.status != 101 { continue }
            try readBody(of: head, deadline: deadline)
            return HTTPResponse(status: head.status, member: head.member, relayError: head.relayError,
                                closesConnection: head.closesConnection || head.bodyUntilClose || unread != buffer.count)
        }
    }

    // MARK: Parsing

    private struct Head {
        var status = 0
        var member: String?
        var relayError: String?
        var closesConnection = false
        var contentLength: Int?
        var chunked = false
        var bodyUntilClose = false
        var noBody = false
    }

    private func readHead(deadline: ContinuousClock.Instant) throws(LoadFailure) -> Head {
        var head = Head()
        let statusLine = try readLine(deadline: deadline)
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3, let status = Int(parts[1]) else {
            throw .badResponse("status line \(statusLine.prefix(80).debugDescription)")
        }
        head.status = status
        let isHTTP10 = parts[0] == "HTTP/1.0"
        var keepAlive = !isHTTP10
        var transferEncoding: String?
        for count in 0... {
            let line = try readLine(deadline: deadline)
            if line.isEmpty { break }
            guard count < Self.maxHeaders else { throw .badResponse("too many headers") }
            guard let colon = line.firstIndex(of: ":") else { throw .badResponse("header \(line.prefix(80).debugDescription)") }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch name {
            case "content-length":
                guard let length = Int(value), length >= 0, head.contentLength == nil || head.contentLength == length else {
                    throw .badResponse("content-length \(value.debugDescription)")
                }
                head.contentLength = length
            case "transfer-encoding":
                transferEncoding = [transferEncoding, value].compactMap { $0 }.joined(separator: ",")
            case "connection":
                let tokens = value.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                if tokens.contains("close") { keepAlive = false }
                if tokens.contains("keep-alive") && isHTTP10 { keepAlive = true }
            case "x-shoal-member":
                head.member = value
            case "x-shoal-error":
                head.relayError = value
            default:
                break
            }
        }
        head.closesConnection = !keepAlive
        if (100..<200).contains(status) || status == 204 || status == 304 {
            head.noBody = true
        } else if let transferEncoding {
            let last = transferEncoding.lowercased().split(separator: ",").last?.trimmingCharacters(in: .whitespaces)
            if last == "chunked" { head.chunked = true } else { head.bodyUntilClose = true }
        } else if head.contentLength == nil {
            head.bodyUntilClose = true
        }
        return head
    }

    private func readBody(of head: Head, deadline: ContinuousClock.Instant) throws(LoadFailure) {
        if head.noBody { return }
        if head.chunked {
            while true {
                let sizeLine = try readLine(deadline: deadline)
                let digits = sizeLine.split(separator: ";", maxSplits: 1).first?.trimmingCharacters(in: .whitespaces) ?? ""
                guard let size = Int(digits, radix: 16), size >= 0 else {
                    throw .badResponse("chunk size \(sizeLine.prefix(80).debugDescription)")
                }
                if size == 0 { break }
                try discard(size, deadline: deadline)
                guard try readLine(deadline: deadline).isEmpty else { throw .badResponse("no CRLF after chunk") }
            }
            // Trailer fields, up to the empty line.
            while try !readLine(deadline: deadline).isEmpty {}
        } else if let length = head.contentLength, !head.bodyUntilClose {
            try discard(length, deadline: deadline)
        } else {
            unread = buffer.count
            while try receive(deadline: deadline) > 0 {}
        }
    }

    /// The next line, without its CRLF (a bare LF is accepted too).
    private func readLine(deadline: ContinuousClock.Instant) throws(LoadFailure) -> String {
        var searched = unread
        while true {
            if let newline = buffer[searched...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = newline
                if end > unread && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = String(decoding: buffer[unread..<end], as: UTF8.self)
                unread = newline + 1
                return line
            }
            guard buffer.count - unread <= Self.maxLine else { throw .badResponse("line longer than \(Self.maxLine) bytes") }
            searched = buffer.count
            let before = unread
            guard try fill(deadline: deadline) else {
                throw receivedResponseBytes ? .closedMidResponse : .closedBeforeResponse
            }
            searched -= before - unread  // `fill` may have moved the unread bytes to the front.
        }
    }

    /// Skips `count` body bytes: first those already buffered, then straight from the socket.
    private func discard(_ count: Int, deadline: ContinuousClock.Instant) throws(LoadFailure) {
        let buffered = min(count, buffer.count - unread)
        unread += buffered
        var remaining = count - buffered
        while remaining > 0 {
            let received = try receive(deadline: deadline, limit: remaining)
            guard received > 0 else { throw .closedMidResponse }
            remaining -= received
        }
    }

    /// Appends what the socket has to `buffer`; false at EOF.
    private func fill(deadline: ContinuousClock.Instant) throws(LoadFailure) -> Bool {
        if unread > 0 {
            buffer.removeFirst(unread)
            unread = 0
        }
        let received = try receive(deadline: deadline)
        buffer.append(contentsOf: scratch[..<received])
        return received > 0
    }

    /// Receives up to `limit` bytes into `scratch`; 0 at EOF.
    private func receive(deadline: ContinuousClock.Instant, limit: Int = .max) throws(LoadFailure) -> Int {
        while true {
            try wait(for: POLLIN, until: deadline, phase: "read")
            let count = min(limit, scratch.count)
            let received = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, count, 0) }
            if received > 0 { receivedResponseBytes = true }
            if received >= 0 { return received }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
            throw .system("read", errno: errno)
        }
    }

    private func send(_ bytes: [UInt8], deadline: ContinuousClock.Instant) throws(LoadFailure) {
        var offset = 0
        while offset < bytes.count {
            try wait(for: POLLOUT, until: deadline, phase: "write")
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent >= 0 {
                offset += sent
            } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                throw .system("write", errno: errno)
            }
        }
    }

    /// Waits until the socket is ready for `events` (or has an error or hang-up for the next
    /// call to report), or throws a timeout at `deadline`.
    private func wait(for events: Int32, until deadline: ContinuousClock.Instant, phase: String) throws(LoadFailure) {
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw .timedOut(phase) }
            var poller = pollfd(fd: fd, events: Int16(events), revents: 0)
            let ready = poll(&poller, 1, Int32(clamping: left.microseconds / 1000 + 1))
            if ready > 0 { return }
            if ready < 0 && errno != EINTR { throw .system("poll", errno: errno) }
        }
    }
}

extension Duration {
    fileprivate var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }

    fileprivate var microseconds: Int {
        Int(components.seconds) * 1_000_000 + Int(components.attoseconds / 1_000_000_000_000)
    }
}
