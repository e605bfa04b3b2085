import NIOHTTP1

/// Hop-by-hop header handling (RFC 9110 §7.6.1): these headers describe one connection, so a
/// relay drops them on both hops and sets its own.
enum HopByHopHeaders {
    /// The lower-case names `Connection` lists (besides hop-by-hop ones): dropped on forwarding too.
    static func namedByConnection(_ headers: HTTPHeaders) -> [String] {
        var names: [String] = []
        for value in headers["connection"] {
            for token in value.split(separator: ",") {
                let name = token.trimmingASCIISpaces()
                if !name.isEmpty, !isHopByHop(name) { names.append(name.lowercased()) }
            }
        }
        return names
    }

    /// Whether `name` is hop-by-hop: `Connection`, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`,
    /// `Transfer-Encoding`, `Upgrade`.
    @inline(__always)
    static func isHopByHop<S: StringProtocol>(_ name: S) -> Bool {
        if let answer = name.utf8.withContiguousStorageIfAvailable({ isHopByHop(UnsafeRawBufferPointer($0)) }) {
            return answer
        }
        var copy = String(name)
        return copy.withUTF8 { isHopByHop(UnsafeRawBufferPointer($0)) }
    }

    /// The same for a name as bytes (a member's response head, see ``ResponseReader``); by length
    /// first, so most names are ruled out in a compare or two.
    static func isHopByHop(_ name: UnsafeRawBufferPointer) -> Bool {
        let equals = ResponseReader.equalsLowercase
        switch name.count {
        case 2: return equals(name, "te")
        case 7: return equals(name, "trailer") || equals(name, "upgrade") || isProxy(name)
        case 10: return equals(name, "connection") || equals(name, "keep-alive") || isProxy(name)
        case 17: return equals(name, "transfer-encoding") || isProxy(name)
        case 8...: return isProxy(name)
        default: return false
        }
    }

    /// `Proxy-Connection`, `Proxy-Authorization`, `Proxy-Authenticate` and their kin.
    private static func isProxy(_ name: UnsafeRawBufferPointer) -> Bool {
        name.count > 6 && ResponseReader.equalsLowercase(UnsafeRawBufferPointer(rebasing: name[0..<6]), "proxy-")
    }

    /// Case-insensitive equality with a lower-case ASCII literal made of letters and `-`.
    /// (`| 0x20` folds upper to lower case; for `-` it could also match CR, which no decoded name holds.)
    @inline(__always)
    static func equalsLowercase<S: StringProtocol>(_ name: S, _ lowercase: StaticString) -> Bool {
        guard name.utf8.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            var index = 0
            for byte in name.utf8 {
                if byte | 0x20 != expected[index] { return false }
                index += 1
            }
            return true
        }
    }
}

extension StringProtocol {
    /// The characters between leading and trailing spaces and tabs.
    func trimmingASCIISpaces() -> SubSequence {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return self[endIndex...]
        }
        return self[first...last]
    }
}
