import NIOHTTP1

/// The header edits of each hop: the request a member receives and the response a client receives.
enum ForwardedHeaders {
    /// What the request head said that the relay needs after editing it.
    struct RequestFacts {
        /// The body comes chunked (it had `Transfer-Encoding` and, necessarily, no `Content-Length`).
        var isChunked = false
        /// `Content-Length`, if given.
        var contentLength: Int?
        /// The client waits for `100 Continue` before sending its body.
        var expectsContinue = false
        /// The client's `X-Request-Id`, if it sent one.
        var requestID: String?

        var hasBody: Bool { isChunked || (contentLength ?? 0) > 0 }
    }

    /// Turns a client's request head into the head sent to a member: HTTP/1.1 (the pool keeps
    /// connections alive), hop-by-hop headers dropped, `X-Forwarded-For` appended,
    /// `X-Forwarded-Proto` and `Via` set. `Host` is kept as the client sent it. (`X-Request-Id` is
    /// the caller's: it is kept when usable and added when missing.)
    static func prepareRequest(
        _ head: inout HTTPRequestHead,
        clientAddress: String,
        configuration: RelayConfiguration
    ) -> RequestFacts {
        var facts = RequestFacts()
        for (name, value) in head.headers {
            if HopByHopHeaders.equalsLowercase(name, "content-length") {
                facts.contentLength = Int(value)
            } else if HopByHopHeaders.equalsLowercase(name, "transfer-encoding") {
                facts.isChunked = true
            } else if HopByHopHeaders.equalsLowercase(name, "expect") {
                facts.expectsContinue = HopByHopHeaders.equalsLowercase(value, "100-continue")
            } else if HopByHopHeaders.equalsLowercase(name, "x-request-id") {
                facts.requestID = value
            }
        }
        if head.version != .http1_1 { head.version = .http1_1 }
        HopByHopHeaders.strip(&head.headers)
        // The relay answers `100 Continue` itself once a member is ready, so the member never waits for it.
        if facts.expectsContinue { head.headers.remove(name: "expect") }
        if facts.isChunked { head.headers.add(name: "transfer-encoding", value: "chunked") }

        let previous = head.headers["x-forwarded-for"]
        if previous.isEmpty {
            head.headers.add(name: "x-forwarded-for", value: clientAddress)
        } else {
            head.headers.replaceOrAdd(name: "x-forwarded-for", value: (previous + [clientAddress]).joined(separator: ", "))
        }
        if !configuration.trustForwardedProto || !head.headers.contains(name: "x-forwarded-proto") {
            head.headers.replaceOrAdd(name: "x-forwarded-proto", value: configuration.forwardedProto)
        }
        if let via = configuration.via { appendVia(via, to: &head.headers) }
        return facts
    }

    /// Turns a member's response head into the head sent to the client, in the client's HTTP
    /// version and with the relay's own connection headers.
    static func prepareResponse(
        _ head: inout HTTPResponseHead,
        clientVersion: HTTPVersion,
        keepAlive: Bool,
        configuration: RelayConfiguration
    ) {
        HopByHopHeaders.strip(&head.headers)
        if head.version != clientVersion { head.version = clientVersion }
        setConnection(keepAlive: keepAlive, version: clientVersion, headers: &head.headers)
        if let via = configuration.via { appendVia(via, to: &head.headers) }
    }

    /// Whether the client can keep its connection after this response: a response with neither
    /// `Content-Length` nor a bodyless status can only be framed for HTTP/1.0 by closing.
    static func responseCanBeFramed(_ head: HTTPResponseHead, clientVersion: HTTPVersion, requestIsHEAD: Bool) -> Bool {
        if clientVersion.minor >= 1 || requestIsHEAD || !head.status.mayHaveResponseBody { return true }
        return head.headers.contains(name: "content-length")
    }

    static func setConnection(keepAlive: Bool, version: HTTPVersion, headers: inout HTTPHeaders) {
        if version.minor >= 1 {
            if !keepAlive { headers.add(name: "connection", value: "close") }
        } else if keepAlive {
            headers.add(name: "connection", value: "keep-alive")
        }
    }

    private static func appendVia(_ via: String, to headers: inout HTTPHeaders) {
        let previous = headers["via"]
        if previous.isEmpty {
            headers.add(name: "via", value: via)
        } else {
            headers.replaceOrAdd(name: "via", value: (previous + [via]).joined(separator: ", "))
        }
    }
}
