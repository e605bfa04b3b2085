import ShoalAPI
/// Where the broker listens, from its base URL: `http://HOST[:PORT][/]` or `https://…`, the host
/// a name, an IPv4 address or a bracketed IPv6 one. Without a port, 80 or 443, as in any URL.
struct BrokerEndpoint: Sendable, Hashable {
    var host: String
    var port: Int
    /// `https`: the API is spoken over TLS.
    var tls = false

    /// Returns why the URL won't do, or the endpoint.
    static func parse(_ url: String) -> Result<BrokerEndpoint, BrokerClientError> {
        func invalid(_ reason: String) -> Result<BrokerEndpoint, BrokerClientError> {
            .failure(BrokerClientError(.invalidAddress(reason: reason), broker: url, request: ""))
        }
        let tls = url.lowercased().hasPrefix("https://")
        let scheme = tls ? "https://" : "http://"
        guard url.lowercased().hasPrefix(scheme) else {
            return invalid(url.contains("://") ? "only http:// and https:// are supported" : "no http:// or https:// scheme")
        }
        var authority = url.dropFirst(scheme.count)
        if authority.hasSuffix("/") { authority = authority.dropLast() }
        guard !authority.contains(where: { "/?#@".contains($0) }) else {
            return invalid("no path, query or user name allowed after the host and port")
        }

        let host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return invalid("unclosed [ in IPv6 address") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let rest = authority[authority.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return invalid("unexpected text after the IPv6 address") }
                portText = rest.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { return invalid("no host") }
        guard let portText else { return .success(BrokerEndpoint(host: String(host), port: tls ? 443 : 80, tls: tls)) }
        guard let port = Int(portText), (1...65535).contains(port) else { return invalid("bad port \"\(portText)\"") }
        return .success(BrokerEndpoint(host: String(host), port: port, tls: tls))
    }
}

extension StringProtocol {
    /// Percent-encoded for use as one path segment: anything but RFC 3986's `pchar`s, so `/`,
    /// `?`, `#`, `%`, spaces and non-ASCII, becomes `%XX`.
    var percentEncodedPathSegment: String {
        var encoded = ""
        for byte in utf8 {
            if isPathCharacter(byte) {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return encoded
    }
}

/// Unreserved characters, sub-delimiters, `:` and `@`.
private func isPathCharacter(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        true
    default:
        "-._~!$&'()*+,;=:@".utf8.contains(byte)
    }
}
